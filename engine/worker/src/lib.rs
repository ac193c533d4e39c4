//! `isotach-worker`: Isotach's inference worker. It serves ONNX models over the Open Inference
//! Protocol (KServe v2 gRPC, `inference.GRPCInferenceService`): `ServerLive`, `ServerReady`,
//! `ModelReady`, `ServerMetadata`, `ModelMetadata` and `ModelInfer` with typed or raw tensor
//! contents (answers carry `raw_output_contents`).
//!
//! - **Backends** ([`Backend`], [`Model`]): `tract` (pure Rust, CPU, the default) and `ort`
//!   (ONNX Runtime loaded at run time from `libonnxruntime.so`; CPU or CUDA).
//! - **Dynamic batching**: requests for one model with the same shape past dim 0 merge along dim 0
//!   up to `max_batch_size` rows or `max_queue_delay_ms`, run once, and split back. The queue is
//!   bounded (`max_queued_requests`); beyond it, `RESOURCE_EXHAUSTED`.
//! - **Validation at the edge**: an unknown model is `NOT_FOUND` (listing the loaded ones); a wrong
//!   input name, count, shape, datatype or byte count is `INVALID_ARGUMENT`, naming what was
//!   expected and what came. FP16, FP64 and integer inputs are converted to a float input's type,
//!   integers to an integer input's type when every value fits.
//!
//! ```no_run
//! # async fn example() -> isotach_worker::Result<()> {
//! use isotach_worker::{ModelConfig, WorkerConfig};
//!
//! let config = WorkerConfig::new(vec![ModelConfig {
//!     name: "ar_unet".into(),
//!     path: "examples/models/ar_unet.onnx".into(),
//! }]);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8001").await.unwrap();
//! isotach_worker::serve(config, listener, async { /* a shutdown signal */ }).await
//! # }
//! ```

mod backend;
mod batcher;
mod config;
mod convert;
mod error;
mod service;

pub use backend::{Backend, Model, ModelSignature, TensorSpec, open_backend};
pub use batcher::ModelStats;
pub use config::{BackendKind, Device, ModelConfig, WorkerConfig};
pub use error::{Result, WorkerError};
pub use service::{MODEL_VERSION, SERVER_NAME, Worker, serve};
