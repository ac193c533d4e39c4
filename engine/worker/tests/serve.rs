//! The worker served on 127.0.0.1:0 with the tract backend, called over TCP with tonic: health and
//! metadata, values against a Rust reference, datatype conversions, dynamic batching, and every
//! refusal with its code and message.

mod common;

use std::time::Duration;

use common::{conv_sigmoid, max_abs_diff, start, values};
use isotach_proto::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use isotach_proto::inference::{
    InferTensorContents, ModelInferRequest, ModelMetadataRequest, ModelReadyRequest,
    ServerLiveRequest, ServerMetadataRequest, ServerReadyRequest,
};
use isotach_proto::tensor::{infer_request, response_tensors};
use isotach_proto::{DataType, Tensor};
use tonic::Code;

fn ivt(n: i64, h: i64, w: i64, seed: u64) -> (Tensor, Vec<f32>) {
    let v = values((n * h * w) as usize, seed);
    (
        Tensor::from_f32("ivt", [n, 1, h, w], &v).expect("ivt tensor"),
        v,
    )
}

fn f16_tensor(name: &str, shape: &[i64], v: &[f32]) -> Tensor {
    let data = v
        .iter()
        .flat_map(|&x| half::f16::from_f32(x).to_bits().to_le_bytes())
        .collect();
    Tensor::new(name, DataType::Fp16, shape.to_vec(), data).expect("FP16 tensor")
}

fn i64_tensor(name: &str, shape: &[i64], v: &[i64]) -> Tensor {
    let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Tensor::new(name, DataType::Int64, shape.to_vec(), data).expect("INT64 tensor")
}

#[tokio::test]
async fn health_and_metadata() {
    let mut w = start(common::config()).await;
    let c = &mut w.client;
    assert!(
        c.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        c.server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let meta = c
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.name, "isotach-worker");
    assert_eq!(meta.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(meta.extensions, vec!["backend:tract", "device:cpu"]);

    let ready = |name: &str, version: &str| ModelReadyRequest {
        name: name.into(),
        version: version.into(),
    };
    assert!(
        c.model_ready(ready("conv_sigmoid", ""))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    assert!(
        c.model_ready(ready("conv_sigmoid", "1"))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    assert!(
        !c.model_ready(ready("conv_sigmoid", "2"))
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    assert!(
        !c.model_ready(ready("nope", ""))
            .await
            .unwrap()
            .into_inner()
            .ready
    );

    let md = c
        .model_metadata(ModelMetadataRequest {
            name: "conv_sigmoid".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(md.name, "conv_sigmoid");
    assert_eq!(md.versions, vec!["1"]);
    assert_eq!(md.platform, "onnx");
    let t = |m: &isotach_proto::inference::model_metadata_response::TensorMetadata| {
        (m.name.clone(), m.datatype.clone(), m.shape.clone())
    };
    assert_eq!(
        md.inputs.iter().map(t).collect::<Vec<_>>(),
        vec![("ivt".into(), "FP32".into(), vec![-1, 1, -1, -1])]
    );
    assert_eq!(
        md.outputs.iter().map(t).collect::<Vec<_>>(),
        vec![("ar_prob".into(), "FP32".into(), vec![-1, 1, -1, -1])]
    );

    let md = c
        .model_metadata(ModelMetadataRequest {
            name: "scale_int".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        md.inputs.iter().map(t).collect::<Vec<_>>(),
        vec![
            ("counts".into(), "INT64".into(), vec![-1, 4]),
            ("scale".into(), "FP16".into(), vec![-1, 1])
        ]
    );
    assert_eq!(
        md.outputs.iter().map(t).collect::<Vec<_>>(),
        vec![("scaled".into(), "FP32".into(), vec![-1, 4])]
    );

    let err = c
        .model_metadata(ModelMetadataRequest {
            name: "nope".into(),
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.message(),
        "model \"nope\" is not loaded on this worker (loaded: conv_sigmoid, scale_int)"
    );
    w.stop().await;
}

#[tokio::test]
async fn fp32_values_for_varying_shapes_raw_and_typed() {
    let mut w = start(common::config()).await;
    for (n, h, wd, seed) in [(2, 5, 7, 1), (1, 16, 9, 2), (3, 3, 3, 3), (1, 32, 32, 4)] {
        let (input, v) = ivt(n, h, wd, seed);
        let mut request = infer_request("conv_sigmoid", vec![input]).unwrap();
        request.id = format!("req-{seed}");
        let response = w.client.model_infer(request).await.unwrap().into_inner();
        assert_eq!(response.id, format!("req-{seed}"));
        assert_eq!(response.model_name, "conv_sigmoid");
        assert_eq!(response.model_version, "1");
        assert_eq!(
            response.raw_output_contents.len(),
            1,
            "answers carry raw contents"
        );
        let out = response_tensors(response).unwrap();
        assert_eq!(out[0].name, "ar_prob");
        assert_eq!(out[0].shape, vec![n, 1, h, wd]);
        let expected = conv_sigmoid(&v, n as usize, h as usize, wd as usize);
        let diff = max_abs_diff(&out[0].to_f32().unwrap(), &expected);
        assert!(diff <= 1e-6, "{n}x{h}x{wd}: max diff {diff}");
    }

    // Typed contents (fp32_contents) instead of raw bytes.
    let v = values(2 * 4 * 6, 9);
    let request = ModelInferRequest {
        model_name: "conv_sigmoid".into(),
        inputs: vec![InferInputTensor {
            name: "ivt".into(),
            datatype: "FP32".into(),
            shape: vec![2, 1, 4, 6],
            contents: Some(InferTensorContents {
                fp32_contents: v.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let out = response_tensors(w.client.model_infer(request).await.unwrap().into_inner()).unwrap();
    let diff = max_abs_diff(&out[0].to_f32().unwrap(), &conv_sigmoid(&v, 2, 4, 6));
    assert!(diff <= 1e-6, "typed: max diff {diff}");
    w.stop().await;
}

#[tokio::test]
async fn fp16_and_integer_inputs_are_converted() {
    let mut w = start(common::config()).await;
    // FP16 into the FP32 conv: the reference sees the same (rounded) values.
    let v: Vec<f32> = values(36, 5)
        .iter()
        .map(|&x| half::f16::from_f32(x).to_f32())
        .collect();
    let request =
        infer_request("conv_sigmoid", vec![f16_tensor("ivt", &[1, 1, 6, 6], &v)]).unwrap();
    let out = response_tensors(w.client.model_infer(request).await.unwrap().into_inner()).unwrap();
    assert_eq!(out[0].datatype, DataType::Fp32);
    assert!(max_abs_diff(&out[0].to_f32().unwrap(), &conv_sigmoid(&v, 1, 6, 6)) <= 1e-6);

    // INT64 + FP16 model, raw bytes.
    let counts = [1, 2, 3, 4, 10, 20, 30, 40];
    let request = infer_request(
        "scale_int",
        vec![
            i64_tensor("counts", &[2, 4], &counts),
            f16_tensor("scale", &[2, 1], &[0.5, 2.0]),
        ],
    )
    .unwrap();
    let out = response_tensors(w.client.model_infer(request).await.unwrap().into_inner()).unwrap();
    assert_eq!(out[0].name, "scaled");
    assert_eq!(out[0].shape, vec![2, 4]);
    assert_eq!(
        out[0].to_f32().unwrap(),
        vec![0.5, 1.0, 1.5, 2.0, 20.0, 40.0, 60.0, 80.0]
    );

    // Typed INT32 counts (widened to INT64) and FP32 scale as raw... typed too: FP32 narrowed to FP16.
    let request = ModelInferRequest {
        model_name: "scale_int".into(),
        inputs: vec![
            InferInputTensor {
                name: "scale".into(),
                datatype: "FP32".into(),
                shape: vec![1, 1],
                contents: Some(InferTensorContents {
                    fp32_contents: vec![0.25],
                    ..Default::default()
                }),
                ..Default::default()
            },
            InferInputTensor {
                name: "counts".into(),
                datatype: "INT32".into(),
                shape: vec![1, 4],
                contents: Some(InferTensorContents {
                    int_contents: vec![4, 8, -12, 16],
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let out = response_tensors(w.client.model_infer(request).await.unwrap().into_inner()).unwrap();
    assert_eq!(out[0].to_f32().unwrap(), vec![1.0, 2.0, -3.0, 4.0]);

    // FP32 into the INT64 input: refused, naming both.
    let request = infer_request(
        "scale_int",
        vec![
            Tensor::from_f32("counts", [1, 4], &[1.0; 4]).unwrap(),
            f16_tensor("scale", &[1, 1], &[1.0]),
        ],
    )
    .unwrap();
    let err = w.client.model_infer(request).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().starts_with(
            "input \"counts\" of model \"scale_int\" is INT64; got FP32 (accepted: any integer type"
        ),
        "{}",
        err.message()
    );
    w.stop().await;
}

#[tokio::test]
async fn concurrent_requests_merge_into_batches() {
    let mut config = common::config();
    config.max_batch_size = 4;
    config.max_queue_delay_ms = 2_000;
    let w = start(config).await;
    let started = std::time::Instant::now();
    let calls = (0..8u64).map(|i| {
        let mut client = w.client.clone();
        async move {
            let (input, v) = ivt(1, 8, 8, 100 + i);
            let request = infer_request("conv_sigmoid", vec![input]).unwrap();
            let out =
                response_tensors(client.model_infer(request).await.unwrap().into_inner()).unwrap();
            max_abs_diff(&out[0].to_f32().unwrap(), &conv_sigmoid(&v, 1, 8, 8))
        }
    });
    let diffs = futures_join(calls).await;
    assert!(
        diffs.iter().all(|&d| d <= 1e-6),
        "each caller gets its own rows back: {diffs:?}"
    );
    // Two full batches run at once, without waiting for the 2 s delay.
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    let stats = w.worker.stats("conv_sigmoid").unwrap();
    assert_eq!(
        (
            stats.requests,
            stats.batches,
            stats.rows,
            stats.largest_batch_requests
        ),
        (8, 2, 8, 4),
        "{stats:?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn different_tile_sizes_are_not_merged() {
    let mut config = common::config();
    config.max_batch_size = 8;
    config.max_queue_delay_ms = 300;
    let w = start(config).await;
    let calls = [(8, 8), (6, 10), (8, 8), (6, 10), (8, 8)]
        .into_iter()
        .enumerate()
        .map(|(i, (h, wd))| {
            let mut client = w.client.clone();
            async move {
                let (input, v) = ivt(1, h, wd, 200 + i as u64);
                let request = infer_request("conv_sigmoid", vec![input]).unwrap();
                let out = response_tensors(client.model_infer(request).await.unwrap().into_inner())
                    .unwrap();
                assert_eq!(out[0].shape, vec![1, 1, h, wd]);
                max_abs_diff(
                    &out[0].to_f32().unwrap(),
                    &conv_sigmoid(&v, 1, h as usize, wd as usize),
                )
            }
        });
    let diffs = futures_join(calls).await;
    assert!(diffs.iter().all(|&d| d <= 1e-6), "{diffs:?}");
    let stats = w.worker.stats("conv_sigmoid").unwrap();
    assert_eq!(
        (stats.requests, stats.batches, stats.largest_batch_requests),
        (5, 2, 3),
        "{stats:?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_full_queue_is_resource_exhausted() {
    let mut config = common::config();
    config.max_batch_size = 8;
    config.max_queue_delay_ms = 1_000;
    config.max_queued_requests = 2;
    let w = start(config).await;
    let waiting: Vec<_> = (0..2)
        .map(|i| {
            let mut client = w.client.clone();
            tokio::spawn(async move {
                let request = infer_request("conv_sigmoid", vec![ivt(1, 4, 4, i).0]).unwrap();
                client.model_infer(request).await.map(|_| ())
            })
        })
        .collect();
    let waited = std::time::Instant::now();
    while w.worker.stats("conv_sigmoid").unwrap().queued < 2 {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the two requests never queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut client = w.client.clone();
    let request = infer_request("conv_sigmoid", vec![ivt(1, 4, 4, 9).0]).unwrap();
    let err = client.model_infer(request).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(
        err.message(),
        "model \"conv_sigmoid\" has 2 requests queued, its limit (max_queued_requests); retry later"
    );
    for call in waiting {
        call.await.unwrap().expect("queued requests are served");
    }
    let stats = w.worker.stats("conv_sigmoid").unwrap();
    assert_eq!(
        (stats.batches, stats.requests, stats.queued),
        (1, 2, 0),
        "{stats:?}"
    );
    w.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_what_was_expected() {
    let mut w = start(common::config()).await;
    let cases: Vec<(ModelInferRequest, Code, &str)> = vec![
        (
            infer_request("nope", vec![ivt(1, 4, 4, 1).0]).unwrap(),
            Code::NotFound,
            "model \"nope\" is not loaded on this worker (loaded: conv_sigmoid, scale_int)",
        ),
        (
            {
                let mut r = infer_request("conv_sigmoid", vec![ivt(1, 4, 4, 1).0]).unwrap();
                r.model_version = "7".into();
                r
            },
            Code::NotFound,
            "model \"conv_sigmoid\" has no version \"7\" (versions: 1)",
        ),
        (
            infer_request(
                "conv_sigmoid",
                vec![Tensor::from_f32("x", [1, 1, 4, 4], &[0.0; 16]).unwrap()],
            )
            .unwrap(),
            Code::InvalidArgument,
            "model \"conv_sigmoid\" has no input \"x\" (inputs: ivt FP32 [-1, 1, -1, -1])",
        ),
        (
            infer_request(
                "conv_sigmoid",
                vec![
                    ivt(1, 4, 4, 1).0,
                    Tensor::from_f32("extra", [1], &[0.0]).unwrap(),
                ],
            )
            .unwrap(),
            Code::InvalidArgument,
            "model \"conv_sigmoid\" takes 1 input(s) (ivt FP32 [-1, 1, -1, -1]); got 2 (ivt, extra)",
        ),
        (
            infer_request(
                "conv_sigmoid",
                vec![Tensor::from_f32("ivt", [1, 4, 4], &[0.0; 16]).unwrap()],
            )
            .unwrap(),
            Code::InvalidArgument,
            "input \"ivt\" of model \"conv_sigmoid\" has shape [-1, 1, -1, -1] (-1: any size); got [1, 4, 4]: 3 dimensions, expected 4",
        ),
        (
            infer_request(
                "conv_sigmoid",
                vec![Tensor::from_f32("ivt", [1, 2, 4, 4], &[0.0; 32]).unwrap()],
            )
            .unwrap(),
            Code::InvalidArgument,
            "input \"ivt\" of model \"conv_sigmoid\" has shape [-1, 1, -1, -1] (-1: any size); got [1, 2, 4, 4]: dimension 1 must be 1",
        ),
        (
            {
                let mut r = infer_request("conv_sigmoid", vec![ivt(1, 4, 4, 1).0]).unwrap();
                r.raw_input_contents[0].truncate(60);
                r
            },
            Code::InvalidArgument,
            "tensor \"ivt\" (FP32, shape [1, 1, 4, 4]) needs 64 bytes, got 60",
        ),
        (
            {
                let mut r = infer_request("conv_sigmoid", vec![ivt(1, 4, 4, 1).0]).unwrap();
                r.inputs[0].datatype = "FP8".into();
                r
            },
            Code::InvalidArgument,
            "tensor \"ivt\": unknown datatype \"FP8\" (known: BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64)",
        ),
        (
            {
                let mut r = infer_request("conv_sigmoid", vec![ivt(1, 4, 4, 1).0]).unwrap();
                r.inputs[0].datatype = "BOOL".into();
                r.inputs[0].shape = vec![4, 1, 4, 4];
                r
            },
            Code::InvalidArgument,
            "input \"ivt\" of model \"conv_sigmoid\" is FP32; got BOOL (accepted: FP16, FP32, FP64 or any integer type (converted to the input's float type))",
        ),
        (
            infer_request(
                "scale_int",
                vec![
                    i64_tensor("counts", &[2, 4], &[0; 8]),
                    f16_tensor("scale", &[1, 1], &[1.0]),
                ],
            )
            .unwrap(),
            Code::InvalidArgument,
            "inputs disagree on the batch dimension (dim 0): \"counts\" has 2, \"scale\" has 1",
        ),
        (
            infer_request(
                "scale_int",
                vec![
                    Tensor::new(
                        "counts",
                        DataType::Uint64,
                        vec![1, 4],
                        [u64::MAX.to_le_bytes(), [0; 8], [0; 8], [0; 8]].concat(),
                    )
                    .unwrap(),
                    f16_tensor("scale", &[1, 1], &[1.0]),
                ],
            )
            .unwrap(),
            Code::InvalidArgument,
            "input \"counts\" of model \"scale_int\" is INT64; value 18446744073709551615 at index 0 of the UINT64 tensor does not fit",
        ),
        (
            infer_request("scale_int", vec![i64_tensor("counts", &[1, 4], &[0; 4])]).unwrap(),
            Code::InvalidArgument,
            "model \"scale_int\" takes 2 input(s) (counts INT64 [-1, 4], scale FP16 [-1, 1]); got 1 (counts)",
        ),
        (
            {
                let mut r = infer_request("conv_sigmoid", vec![ivt(1, 4, 4, 1).0]).unwrap();
                r.outputs = vec![InferRequestedOutputTensor {
                    name: "logits".into(),
                    ..Default::default()
                }];
                r
            },
            Code::InvalidArgument,
            "model \"conv_sigmoid\" has no output \"logits\" (outputs: ar_prob FP32 [-1, 1, -1, -1])",
        ),
    ];
    for (request, code, message) in cases {
        let err = w.client.model_infer(request).await.unwrap_err();
        assert_eq!((err.code(), err.message()), (code, message));
    }
    // Nothing refused reached the model.
    assert_eq!(w.worker.stats("conv_sigmoid").unwrap().requests, 0);
    // Requested outputs by name are honoured.
    let mut r = infer_request("conv_sigmoid", vec![ivt(1, 4, 4, 1).0]).unwrap();
    r.outputs = vec![InferRequestedOutputTensor {
        name: "ar_prob".into(),
        ..Default::default()
    }];
    let out = response_tensors(w.client.model_infer(r).await.unwrap().into_inner()).unwrap();
    assert_eq!(out.len(), 1);
    w.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let mut config = common::config();
    config.max_message_bytes = 64 * 1024;
    let mut w = start(config).await;
    let request = infer_request("conv_sigmoid", vec![ivt(1, 128, 160, 1).0]).unwrap();
    let err = w.client.model_infer(request).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(
        err.message().contains("the limit is: 65536 bytes"),
        "{}",
        err.message()
    );
    // Below the limit it serves.
    let request = infer_request("conv_sigmoid", vec![ivt(1, 64, 64, 1).0]).unwrap();
    w.client.model_infer(request).await.unwrap();
    w.stop().await;
}

#[test]
fn bad_configurations_are_refused() {
    let mut config = common::config();
    config.models[1].name = "conv_sigmoid".into();
    let err = isotach_worker::Worker::load(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid worker configuration: model name \"conv_sigmoid\" is given more than once; names must be unique"
    );
    let mut config = common::config();
    config.device = isotach_worker::Device::Cuda;
    let err = isotach_worker::Worker::load(&config).unwrap_err();
    assert!(
        err.to_string()
            .contains("the tract backend runs on the CPU only"),
        "{err}"
    );
    let mut config = common::config();
    config.models[0].path = common::fixture("missing.onnx");
    let err = isotach_worker::Worker::load(&config).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot load model \"conv_sigmoid\" from "),
        "{err}"
    );
    let err: Result<isotach_worker::WorkerConfig, _> =
        serde_json::from_str(r#"{"models": [], "max_batch": 3}"#);
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("unknown field `max_batch`")
    );
}

/// Runs futures concurrently on this task, returning their outputs in order.
async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
