//! Throughput of the worker over loopback gRPC against the backend's own compute time, per batch
//! size, for tract and (when ONNX Runtime is found) ort.
//!
//! ```text
//! cargo run --release -p isotach-worker --example worker_throughput -- \
//!     [--model PATH] [--tile 256] [--batch-sizes 1,4,8,16] [--seconds 2] [--ort-library PATH]
//! ```
//!
//! For each backend and batch size B it measures, in one run:
//! - **compute**: the model run alone on a [B, C, tile, tile] FP32 tensor (no queue, no gRPC);
//! - **served**: one client sending [B, C, tile, tile] requests one after another over gRPC;
//! - **merged**: B clients each sending [1, C, tile, tile] requests at once, which the worker's
//!   dynamic batching merges (max_batch_size B).
//!
//! and prints requests/s and tiles/s, the transport overhead ratio (served − compute) / compute,
//! and ort's speed relative to tract. The model's first input must be [N, C, H, W] FP32 with a
//! dynamic N (the default is the test fixture conv_sigmoid.onnx; pass
//! `--model examples/models/ar_unet.onnx` for the real one).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use isotach_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use isotach_proto::tensor::infer_request;
use isotach_proto::{DataType, Tensor};
use isotach_worker::{BackendKind, ModelConfig, Worker, WorkerConfig};

struct Args {
    model: PathBuf,
    tile: i64,
    batch_sizes: Vec<i64>,
    seconds: f64,
    ort_library: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conv_sigmoid.onnx"),
        tile: 256,
        batch_sizes: vec![1, 4, 8, 16],
        seconds: 2.0,
        ort_library: std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .or_else(find_venv_ort),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = PathBuf::from(value()?),
            "--tile" => args.tile = value()?.parse().map_err(|e| format!("--tile: {e}"))?,
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--ort-library" => args.ort_library = Some(PathBuf::from(value()?)),
            "--batch-sizes" => {
                args.batch_sizes = value()?
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<i64>()
                            .map_err(|e| format!("--batch-sizes: {e}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// The test environment's onnxruntime wheel, if built.
fn find_venv_ort() -> Option<PathBuf> {
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/lib");
    for entry in std::fs::read_dir(lib).ok()?.flatten() {
        let capi = entry.path().join("site-packages/onnxruntime/capi");
        for file in std::fs::read_dir(capi).ok()?.flatten() {
            if file
                .file_name()
                .to_string_lossy()
                .starts_with("libonnxruntime.so.")
            {
                return Some(file.path());
            }
        }
    }
    None
}

#[derive(Clone, Copy, Default)]
struct Row {
    compute_s: f64,
    served_s: f64,
    merged_s: f64,
}

fn tile_tensor(name: &str, b: i64, c: i64, tile: i64) -> Tensor {
    let count = (b * c * tile * tile) as usize;
    let values: Vec<f32> = (0..count)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    Tensor::from_f32(name, [b, c, tile, tile], &values).expect("tensor")
}

/// Repeats `f` for about `seconds` (at least 3 times, after one warm-up); seconds per call.
async fn time_async<F, Fut>(seconds: f64, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await;
    let start = Instant::now();
    let mut n = 0u32;
    while n < 3 || start.elapsed() < Duration::from_secs_f64(seconds) {
        f().await;
        n += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

async fn bench_backend(args: &Args, backend: BackendKind) -> Result<Vec<(i64, Row)>, String> {
    let mut rows = Vec::new();
    for &b in &args.batch_sizes {
        let mut config = WorkerConfig::new(vec![ModelConfig {
            name: "model".into(),
            path: args.model.clone(),
        }]);
        config.backend = backend;
        config.ort_library = args.ort_library.clone();
        config.intra_op_threads = 1;
        config.max_batch_size = usize::try_from(b).map_err(|e| e.to_string())?;
        config.max_queue_delay_ms = 20;
        let worker = tokio::task::spawn_blocking(move || Worker::load(&config))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let signature = worker.signature("model").ok_or("no signature")?;
        let input = signature.inputs.first().ok_or("the model has no input")?;
        if input.datatype != DataType::Fp32 || input.shape.len() != 4 {
            return Err(format!(
                "input {:?} is {} {:?}; need FP32 [N, C, H, W]",
                input.name, input.datatype, input.shape
            ));
        }
        let c = input.shape[1].max(1);
        let name = input.name.clone();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = worker.clone();
        let server = tokio::spawn(async move {
            serving
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        let client = GrpcInferenceServiceClient::connect(format!("http://{address}"))
            .await
            .map_err(|e| e.to_string())?
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);

        // Compute alone, on a blocking thread like the worker's own runs.
        let batch = tile_tensor(&name, b, c, args.tile);
        let direct = worker.clone();
        let seconds = args.seconds;
        let compute_s = tokio::task::spawn_blocking(move || {
            let run = || direct.run_direct("model", vec![batch.clone()]).map(|_| ());
            run().map_err(|e| e.to_string())?;
            let start = Instant::now();
            let mut n = 0u32;
            while n < 3 || start.elapsed() < Duration::from_secs_f64(seconds) {
                run().map_err(|e| e.to_string())?;
                n += 1;
            }
            Ok::<f64, String>(start.elapsed().as_secs_f64() / f64::from(n))
        })
        .await
        .map_err(|e| e.to_string())??;

        // One client, one [B, ...] request at a time.
        let request = infer_request("model", vec![tile_tensor(&name, b, c, args.tile)])
            .map_err(|e| e.to_string())?;
        let served_s = time_async(args.seconds, || {
            let mut client = client.clone();
            let request = request.clone();
            async move {
                client.model_infer(request).await.expect("served request");
            }
        })
        .await;

        // B clients, one tile each, merged by the worker.
        let single = infer_request("model", vec![tile_tensor(&name, 1, c, args.tile)])
            .map_err(|e| e.to_string())?;
        let merged_s = time_async(args.seconds, || {
            let calls: Vec<_> = (0..b)
                .map(|_| {
                    let mut client = client.clone();
                    let request = single.clone();
                    tokio::spawn(async move { client.model_infer(request).await.map(|_| ()) })
                })
                .collect();
            async move {
                for call in calls {
                    call.await.expect("task").expect("merged request");
                }
            }
        })
        .await;
        let stats = worker.stats("model").unwrap_or_default();
        eprintln!(
            "  {backend} B={b}: {} requests in {} runs (largest merge {})",
            stats.requests, stats.batches, stats.largest_batch_requests
        );
        let _ = stop.send(());
        server
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        rows.push((
            b,
            Row {
                compute_s,
                served_s,
                merged_s,
            },
        ));
    }
    Ok(rows)
}

fn print_table(backend: BackendKind, tile: i64, rows: &[(i64, Row)]) {
    println!("\n{backend}: [B, C, {tile}, {tile}] FP32 over loopback gRPC");
    println!(
        "{:>4} {:>11} {:>11} {:>11} {:>11} {:>13} {:>11} {:>10}",
        "B",
        "compute ms",
        "served ms",
        "req/s",
        "tiles/s",
        "transport/cmp",
        "merged ms",
        "tiles/s(m)"
    );
    for (b, r) in rows {
        let overhead = (r.served_s - r.compute_s).max(0.0) / r.compute_s;
        println!(
            "{:>4} {:>11.2} {:>11.2} {:>11.1} {:>11.1} {:>13.2} {:>11.2} {:>10.1}",
            b,
            r.compute_s * 1e3,
            r.served_s * 1e3,
            1.0 / r.served_s,
            *b as f64 / r.served_s,
            overhead,
            r.merged_s * 1e3,
            *b as f64 / r.merged_s,
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    println!("model {}", args.model.display());
    let tract = bench_backend(&args, BackendKind::Tract).await?;
    print_table(BackendKind::Tract, args.tile, &tract);
    match &args.ort_library {
        Some(lib) => {
            println!("\nONNX Runtime: {}", lib.display());
            let ort = bench_backend(&args, BackendKind::Ort).await?;
            print_table(BackendKind::Ort, args.tile, &ort);
            println!("\nort vs tract (tract time / ort time; > 1: ort faster)");
            println!(
                "{:>4} {:>10} {:>10} {:>10}",
                "B", "compute", "served", "merged"
            );
            for ((b, t), (_, o)) in tract.iter().zip(&ort) {
                println!(
                    "{:>4} {:>10.2} {:>10.2} {:>10.2}",
                    b,
                    t.compute_s / o.compute_s,
                    t.served_s / o.served_s,
                    t.merged_s / o.merged_s
                );
            }
        }
        None => println!(
            "\nort: no ONNX Runtime library (--ort-library, ORT_DYLIB_PATH or .venv); skipped"
        ),
    }
    Ok(())
}
