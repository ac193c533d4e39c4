//! The ort backend (ONNX Runtime loaded from the test environment's onnxruntime wheel): served
//! over gRPC, and giving the same outputs as tract.

mod common;

use common::{conv_sigmoid, max_abs_diff, start, values};
use isotach_proto::inference::ServerMetadataRequest;
use isotach_proto::tensor::{infer_request, response_tensors};
use isotach_proto::{DataType, Tensor};
use isotach_worker::{BackendKind, Device, Worker, WorkerConfig};

fn ort_config() -> WorkerConfig {
    let mut config = common::config();
    config.backend = BackendKind::Ort;
    config.ort_library = Some(common::onnxruntime_library());
    config.intra_op_threads = 1;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ort_serves_and_matches_tract() {
    let mut w = start(ort_config()).await;
    let meta = w
        .client
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.extensions, vec!["backend:ort", "device:cpu"]);
    assert_eq!(
        w.worker.signature("conv_sigmoid").unwrap(),
        tokio::task::spawn_blocking(|| Worker::load(&common::config())
            .unwrap()
            .signature("conv_sigmoid")
            .unwrap())
        .await
        .unwrap(),
        "both backends read the same signature"
    );

    let tract = tokio::task::spawn_blocking(|| Worker::load(&common::config()).unwrap())
        .await
        .unwrap();
    for (n, h, wd, seed) in [(1, 16, 16, 1), (3, 7, 11, 2), (2, 64, 48, 3)] {
        let v = values(n * h * wd, seed);
        let shape = [n as i64, 1, h as i64, wd as i64];
        let input = Tensor::from_f32("ivt", shape, &v).unwrap();
        let request = infer_request("conv_sigmoid", vec![input.clone()]).unwrap();
        let served =
            response_tensors(w.client.model_infer(request).await.unwrap().into_inner()).unwrap();
        let from_ort = served[0].to_f32().unwrap();
        let from_tract = tract.run_direct("conv_sigmoid", vec![input]).unwrap()[0]
            .to_f32()
            .unwrap();
        let diff = max_abs_diff(&from_ort, &from_tract);
        assert!(diff <= 1e-5, "{shape:?}: ort vs tract max diff {diff}");
        assert!(max_abs_diff(&from_ort, &conv_sigmoid(&v, n, h, wd)) <= 1e-5);
    }

    // INT64 and FP16 inputs through ONNX Runtime.
    let counts = Tensor::new(
        "counts",
        DataType::Int64,
        vec![1, 4],
        [3i64, 6, 9, 12]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
    )
    .unwrap();
    let scale = Tensor::new(
        "scale",
        DataType::Fp16,
        vec![1, 1],
        half::f16::from_f32(0.5).to_bits().to_le_bytes().to_vec(),
    )
    .unwrap();
    let request = infer_request("scale_int", vec![counts, scale]).unwrap();
    let out = response_tensors(w.client.model_infer(request).await.unwrap().into_inner()).unwrap();
    assert_eq!(out[0].to_f32().unwrap(), vec![1.5, 3.0, 4.5, 6.0]);
    w.stop().await;
}

#[test]
fn ort_reports_a_missing_library_and_cuda() {
    let mut config = ort_config();
    config.ort_library = Some("/nonexistent/libonnxruntime.so".into());
    let err = Worker::load(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "backend ort is unavailable: ONNX Runtime library /nonexistent/libonnxruntime.so does not exist"
    );
    // The CPU wheel has no CUDA execution provider: a clear error, not a silent CPU fallback.
    let mut config = ort_config();
    config.device = Device::Cuda;
    let err = Worker::load(&config).unwrap_err().to_string();
    assert!(
        err.contains("--device cuda needs ONNX Runtime's CUDAExecutionProvider"),
        "{err}"
    );
}
