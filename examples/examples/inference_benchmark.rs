//! Inference benchmark: the same model, the same patches, three ways in one run.
//!
//! 1. **compute**: the worker's backend alone (`Worker::run_direct`, no queue, no gRPC), a batch
//!    of `B` patches at a time.
//! 2. **worker**: `isotach worker`'s service on 127.0.0.1, called by a bare KServe client that
//!    sends requests of `B` patches as raw bytes, two outstanding at a time.
//! 3. **engine**: the `infer` step's client (`InferenceClient`): whole fields cut into patches
//!    with their halo, batched by `B`, sent, and stitched back, two batches in flight.
//!
//! For each batch size it prints patches/s for each path, `engine / worker` (goal ≥ 0.9) and the
//! transport share, `(worker round trip − compute) / compute` per batch (goal < 10 % for
//! 4 × 256 × 256 FP32 patches). With `--ort-library PATH` it also times ONNX Runtime's CPU backend
//! on the same batches and prints `ort / tract`.
//!
//! ```text
//! cargo run --release -p isotach-examples --example inference_benchmark -- \
//!     [--model examples/models/ar_unet.onnx] [--name ar_unet] [--patches 32] \
//!     [--batch-sizes 1,4,8] [--ort-library .venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.xx]
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use isotach_engine::inference::{InferOptions, InferenceClient};
use isotach_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use isotach_proto::tensor::{Tensor, infer_request};
use isotach_worker::{BackendKind, ModelConfig, Worker, WorkerConfig};

const PATCH: usize = 256;
const HALO: usize = 16;

struct Args {
    model: PathBuf,
    name: String,
    patches: usize,
    batch_sizes: Vec<usize>,
    ort_library: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut args = Args {
        model: root.join("examples/models/ar_unet.onnx"),
        name: "ar_unet".into(),
        patches: 32,
        batch_sizes: vec![1, 4, 8],
        ort_library: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = value()?.into(),
            "--name" => args.name = value()?,
            "--patches" => args.patches = value()?.parse().context("--patches")?,
            "--batch-sizes" => {
                args.batch_sizes = value()?
                    .split(',')
                    .map(|b| b.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--batch-sizes")?
            }
            "--ort-library" => args.ort_library = Some(value()?.into()),
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(args)
}

/// Patch values like IVT: smooth bands of 0..900 kg m-1 s-1.
fn patch_values(count: usize, seed: usize) -> Vec<f32> {
    (0..count * PATCH * PATCH)
        .map(|i| {
            let (r, c) = ((i / PATCH) % PATCH, i % PATCH);
            let x = (r as f32 * 0.05 + c as f32 * 0.02 + seed as f32).sin();
            450.0 + 450.0 * x
        })
        .collect()
}

fn load(args: &Args, backend: BackendKind, batch: usize) -> Result<Worker> {
    let mut config = WorkerConfig::new(vec![ModelConfig {
        name: args.name.clone(),
        path: args.model.clone(),
    }]);
    config.backend = backend;
    config.ort_library = args.ort_library.clone();
    config.max_batch_size = batch;
    config.max_queue_delay_ms = 1;
    Worker::load(&config).with_context(|| format!("loading {}", args.model.display()))
}

/// Patches per second through the backend alone, and seconds per batch.
fn compute(worker: &Worker, args: &Args, input: &str, batch: usize) -> Result<(f64, f64)> {
    let rounds = args.patches.div_ceil(batch);
    let values = patch_values(batch, 1);
    let tensor = Tensor::from_f32(
        input,
        [batch as i64, 1, PATCH as i64, PATCH as i64],
        &values,
    )?;
    worker.run_direct(&args.name, vec![tensor.clone()])?; // warm-up: plans and caches
    let started = Instant::now();
    for _ in 0..rounds {
        worker.run_direct(&args.name, vec![tensor.clone()])?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(((rounds * batch) as f64 / seconds, seconds / rounds as f64))
}

/// Patches per second through the served worker, two requests outstanding, and the mean round
/// trip of one request alone.
async fn served(url: &str, args: &Args, input: &str, batch: usize) -> Result<(f64, f64)> {
    let client = GrpcInferenceServiceClient::connect(url.to_owned())
        .await?
        .max_decoding_message_size(1 << 30)
        .max_encoding_message_size(1 << 30);
    let values = patch_values(batch, 1);
    let tensor = Tensor::from_f32(
        input,
        [batch as i64, 1, PATCH as i64, PATCH as i64],
        &values,
    )?;
    let request = infer_request(args.name.clone(), vec![tensor])?;
    client.clone().model_infer(request.clone()).await?; // warm-up
    let rounds = args.patches.div_ceil(batch);
    let started = Instant::now();
    for _ in 0..rounds {
        client.clone().model_infer(request.clone()).await?;
    }
    let alone = started.elapsed().as_secs_f64() / rounds as f64;
    let started = Instant::now();
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..rounds {
        if pending.len() == 2 {
            pending.join_next().await.transpose()?.transpose()?;
        }
        let (mut client, request) = (client.clone(), request.clone());
        pending.spawn(async move { client.model_infer(request).await.map(|_| ()) });
    }
    while let Some(done) = pending.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(((rounds * batch) as f64 / seconds, alone))
}

/// Patches per second through the infer step's client: fields of 2 × 4 patches, cut, batched,
/// sent and stitched.
fn engine(url: &str, args: &Args, batch: usize) -> Result<f64> {
    let client = InferenceClient::connect(
        &[url.to_owned()],
        InferOptions {
            model: args.name.clone(),
            model_output: None,
            channels: 1,
            patch_size: PATCH,
            halo: HALO,
            batch_size: batch,
            max_batch_delay: Duration::from_millis(2),
            max_batches_in_flight: 2,
            timeout: Duration::from_secs(120),
        },
    )
    .map_err(|e| anyhow!(e))?;
    let centre = PATCH - 2 * HALO;
    let shape = (2 * centre, 4 * centre);
    let per_field = 8;
    let fields = args.patches.div_ceil(per_field).max(1);
    let values: Vec<f32> = patch_values(1, 2)
        .into_iter()
        .cycle()
        .take(shape.0 * shape.1)
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let run = |count: usize| -> Result<f64> {
        let started = Instant::now();
        for _ in 0..count {
            let tx = tx.clone();
            client.infer_field(&[&values], shape, false, move |r| {
                let _ = tx.send(r.map(|v| v.len()));
            });
        }
        for _ in 0..count {
            let cells = rx
                .recv()
                .context("client stopped")?
                .map_err(|e| anyhow!(e))?;
            if cells != shape.0 * shape.1 {
                bail!("a field came back with {cells} cells");
            }
        }
        Ok(started.elapsed().as_secs_f64())
    };
    run(1)?; // warm-up
    let seconds = run(fields)?;
    Ok((fields * per_field) as f64 / seconds)
}

fn main() -> Result<()> {
    let args = args()?;
    println!(
        "model {} ({} × 1 × {PATCH} × {PATCH} FP32 patches per measurement)",
        args.model.display(),
        args.patches
    );
    println!(
        "{:>5} {:>12} {:>12} {:>12} {:>15} {:>11} {:>10}",
        "batch",
        "compute p/s",
        "worker p/s",
        "engine p/s",
        "engine/worker",
        "transport",
        "ort/tract"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    for &batch in &args.batch_sizes {
        let worker = load(&args, BackendKind::Tract, batch)?;
        let input = worker
            .signature(&args.name)
            .and_then(|s| s.inputs.first().map(|i| i.name.clone()))
            .context("the model has no input")?;
        let (compute_rate, compute_batch_s) = compute(&worker, &args, &input, batch)?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = {
            let worker = worker.clone();
            runtime.spawn(async move {
                worker
                    .serve(listener, async {
                        let _ = stopped.await;
                    })
                    .await
            })
        };
        let (worker_rate, round_trip_s) = runtime.block_on(served(&url, &args, &input, batch))?;
        let engine_rate = engine(&url, &args, batch)?;
        let _ = stop.send(());
        runtime.block_on(serving)??;
        let ort = match &args.ort_library {
            Some(_) => {
                let ort = load(&args, BackendKind::Ort, batch)?;
                let (rate, _) = compute(&ort, &args, &input, batch)?;
                format!("{:.2}", rate / compute_rate)
            }
            None => "-".into(),
        };
        println!(
            "{batch:>5} {compute_rate:>12.1} {worker_rate:>12.1} {engine_rate:>12.1} {:>15.2} {:>10.1}% {ort:>10}",
            engine_rate / worker_rate,
            100.0 * (round_trip_s - compute_batch_s) / compute_batch_s,
        );
    }
    Ok(())
}
