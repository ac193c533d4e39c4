//! `isotach worker`: serve ONNX models over the Open Inference Protocol.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use isotach_worker::{BackendKind, Device, ModelConfig, WorkerConfig};

#[derive(clap::Args)]
pub(crate) struct WorkerArgs {
    /// A model to serve, as NAME=PATH (an .onnx file); repeat for several.
    #[arg(long = "model", value_name = "NAME=PATH", required = true)]
    models: Vec<ModelConfig>,
    /// Address to serve gRPC on; port 0 picks a free port. Once bound, `listening on ADDR` is
    /// printed on stdout.
    #[arg(long, default_value = "127.0.0.1:8001")]
    listen: String,
    /// Inference backend: tract (pure Rust, CPU) or ort (ONNX Runtime, CPU or CUDA).
    #[arg(long, default_value = "tract")]
    backend: BackendKind,
    /// libonnxruntime.so for --backend ort (default: $ORT_DYLIB_PATH).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_library: Option<PathBuf>,
    /// Device: cpu, or cuda (--backend ort with ONNX Runtime's CUDA execution provider).
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Most rows (dim 0) merged into one model run; 1 turns batching off.
    #[arg(long, default_value_t = 8)]
    max_batch_size: usize,
    /// Longest wait, in milliseconds, of a batch's first request for others.
    #[arg(long, default_value_t = 5)]
    max_queue_delay_ms: u64,
    /// Most requests queued per model; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 256)]
    max_queued_requests: usize,
    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    max_message_bytes: usize,
    /// Threads per model run (ONNX Runtime intra-op threads); 0: the backend's choice.
    #[arg(long, default_value_t = 0)]
    intra_op_threads: usize,
}

pub(crate) fn worker(args: &WorkerArgs) -> Result<()> {
    let config = WorkerConfig {
        models: args.models.clone(),
        backend: args.backend,
        device: args.device,
        ort_library: args.ort_library.clone(),
        max_batch_size: args.max_batch_size,
        max_queue_delay_ms: args.max_queue_delay_ms,
        max_queued_requests: args.max_queued_requests,
        max_message_bytes: args.max_message_bytes,
        intra_op_threads: args.intra_op_threads,
    };
    let worker = isotach_worker::Worker::load(&config).context("starting the inference worker")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr().context("the listen address")?;
        println!("listening on {address}");
        std::io::stdout().flush().context("stdout")?;
        tracing::info!(
            %address,
            backend = %worker.backend(),
            device = %worker.device(),
            models = %worker.models().join(", "),
            "serving"
        );
        worker
            .serve(listener, crate::service::shutdown_signal())
            .await?;
        for model in worker.models() {
            if let Some(stats) = worker.stats(&model) {
                tracing::info!(
                    %model,
                    requests = stats.requests,
                    batches = stats.batches,
                    rows = stats.rows,
                    "stopped"
                );
            }
        }
        Ok(())
    })
}
