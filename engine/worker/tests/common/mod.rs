//! Shared by the worker's tests: start a real worker on 127.0.0.1:0, connect a tonic client over
//! TCP, and recompute the fixture models' outputs in Rust.
#![allow(dead_code)]

use std::path::PathBuf;

use isotach_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use isotach_worker::{ModelConfig, Worker, WorkerConfig};
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// The 3×3 filter and bias of `conv_sigmoid.onnx` (as in fixtures/make_models.py).
pub const KERNEL: [f32; 9] = [0.05, 0.10, 0.05, 0.10, 0.40, 0.10, 0.05, 0.10, 0.05];
pub const BIAS: f32 = -0.2;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Both fixture models, every other setting at its default.
pub fn config() -> WorkerConfig {
    WorkerConfig::new(vec![
        ModelConfig {
            name: "conv_sigmoid".into(),
            path: fixture("conv_sigmoid.onnx"),
        },
        ModelConfig {
            name: "scale_int".into(),
            path: fixture("scale_int.onnx"),
        },
    ])
}

pub struct Running {
    pub worker: Worker,
    pub client: GrpcInferenceServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<isotach_worker::Result<()>>>,
}

impl Running {
    /// Stops the server and waits for it; fails on a serve error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server");
        }
    }
}

/// Loads `config`, serves it on 127.0.0.1:0 and connects a client.
pub async fn start(config: WorkerConfig) -> Running {
    let worker = tokio::task::spawn_blocking(move || Worker::load(&config))
        .await
        .expect("load task")
        .expect("load");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = worker.clone();
    let task = tokio::spawn(async move {
        serving
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    let client = GrpcInferenceServiceClient::connect(format!("http://{address}"))
        .await
        .expect("connect")
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    Running {
        worker,
        client,
        stop: Some(stop),
        task: Some(task),
    }
}

/// `conv_sigmoid` computed directly: 3×3 correlation with zero padding, bias, sigmoid.
pub fn conv_sigmoid(input: &[f32], n: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n * h * w];
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                let mut acc = BIAS;
                for ky in 0..3 {
                    for kx in 0..3 {
                        let (yy, xx) = (y as i64 + ky as i64 - 1, x as i64 + kx as i64 - 1);
                        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                            acc += KERNEL[ky * 3 + kx]
                                * input[b * h * w + yy as usize * w + xx as usize];
                        }
                    }
                }
                out[b * h * w + y * w + x] = 1.0 / (1.0 + (-acc).exp());
            }
        }
    }
    out
}

/// Deterministic test values in [-2, 2).
pub fn values(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`, which the test command
/// builds from tests/python/requirements.txt. Panics, saying how to build it, when missing.
pub fn onnxruntime_library() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lib = root.join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        let mut candidates = Vec::new();
        for entry in entries.flatten() {
            let capi = entry.path().join("site-packages/onnxruntime/capi");
            if let Ok(files) = std::fs::read_dir(&capi) {
                for file in files.flatten() {
                    let name = file.file_name().to_string_lossy().into_owned();
                    if name.starts_with("libonnxruntime.so") {
                        candidates.push(file.path());
                    }
                }
            }
        }
        candidates.sort();
        candidates.pop()
    });
    found.unwrap_or_else(|| {
        panic!(
            "no libonnxruntime.so under {}/python3*/site-packages/onnxruntime/capi: build the test \
             environment first (scripts/test.sh does; or python3 -m venv .venv && .venv/bin/pip \
             install -r tests/python/requirements.txt)",
            lib.display()
        )
    })
}
