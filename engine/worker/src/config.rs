//! The worker's configuration: which models, which backend, how to batch.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Result, WorkerError};

/// Everything a worker needs to start. Deserializes from TOML or JSON; unknown fields are refused.
///
/// ```
/// let config: isotach_worker::WorkerConfig = serde_json::from_str(r#"{
///     "models": [{ "name": "ar_unet", "path": "examples/models/ar_unet.onnx" }],
///     "max_batch_size": 16
/// }"#).unwrap();
/// assert_eq!(config.backend, isotach_worker::BackendKind::Tract);
/// assert_eq!(config.max_queue_delay_ms, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// The models to serve, each under its own name. At least one.
    pub models: Vec<ModelConfig>,
    /// The inference backend. Default: `tract` (pure Rust, CPU).
    #[serde(default)]
    pub backend: BackendKind,
    /// The device the backend runs on. Default: `cpu`. `cuda` needs the `ort` backend and an
    /// ONNX Runtime build with the CUDA execution provider.
    #[serde(default)]
    pub device: Device,
    /// `libonnxruntime.so` for the `ort` backend. Default: the `ORT_DYLIB_PATH` environment
    /// variable. Ignored by `tract`.
    #[serde(default)]
    pub ort_library: Option<PathBuf>,
    /// Most rows (dim 0 entries) merged into one backend run. Default: 8. 1 turns batching off.
    #[serde(default = "default_max_batch_size")]
    pub max_batch_size: usize,
    /// How long the first request of a batch waits for others before the batch runs anyway.
    /// Default: 5 ms.
    #[serde(default = "default_max_queue_delay_ms")]
    pub max_queue_delay_ms: u64,
    /// Most requests waiting per model; beyond it a request is refused with RESOURCE_EXHAUSTED.
    /// Default: 256.
    #[serde(default = "default_max_queued_requests")]
    pub max_queued_requests: usize,
    /// Largest gRPC message accepted or sent. Default: 256 MiB.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Threads one model run may use (ONNX Runtime's intra-op threads; tract runs on one).
    /// Default: 0, the backend's own choice.
    #[serde(default)]
    pub intra_op_threads: usize,
}

/// One model to serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients use (`model_name` in `ModelInfer`).
    pub name: String,
    /// The `.onnx` file.
    pub path: PathBuf,
}

fn default_max_batch_size() -> usize {
    8
}
fn default_max_queue_delay_ms() -> u64 {
    5
}
fn default_max_queued_requests() -> usize {
    256
}
fn default_max_message_bytes() -> usize {
    256 * 1024 * 1024
}

impl WorkerConfig {
    /// A configuration serving `models` with every other field at its default.
    pub fn new(models: Vec<ModelConfig>) -> Self {
        Self {
            models,
            backend: BackendKind::default(),
            device: Device::default(),
            ort_library: None,
            max_batch_size: default_max_batch_size(),
            max_queue_delay_ms: default_max_queue_delay_ms(),
            max_queued_requests: default_max_queued_requests(),
            max_message_bytes: default_max_message_bytes(),
            intra_op_threads: 0,
        }
    }

    /// Checks what serde cannot: at least one model, unique non-empty names, non-zero limits,
    /// and a device the backend supports.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(WorkerError::Config { message });
        if self.models.is_empty() {
            return invalid("no models to serve; give at least one (--model NAME=PATH)".into());
        }
        let mut seen = std::collections::HashSet::new();
        for model in &self.models {
            if model.name.is_empty() {
                return invalid(format!(
                    "model at {} has an empty name",
                    model.path.display()
                ));
            }
            if !seen.insert(model.name.as_str()) {
                return invalid(format!(
                    "model name {:?} is given more than once; names must be unique",
                    model.name
                ));
            }
        }
        if self.max_batch_size == 0 {
            return invalid("max_batch_size must be at least 1 (1 turns batching off)".into());
        }
        if self.max_queued_requests == 0 {
            return invalid("max_queued_requests must be at least 1".into());
        }
        if self.max_message_bytes == 0 {
            return invalid("max_message_bytes must be at least 1".into());
        }
        if self.backend == BackendKind::Tract && self.device != Device::Cpu {
            return invalid(format!(
                "the tract backend runs on the CPU only; --device {} needs --backend ort",
                self.device
            ));
        }
        Ok(())
    }
}

/// Which library runs the models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `tract`: pure Rust, CPU, no system library.
    #[default]
    Tract,
    /// `ort`: ONNX Runtime, loaded at run time from `libonnxruntime.so`; CPU or CUDA.
    Ort,
}

/// Where a backend runs the models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The CPU.
    #[default]
    Cpu,
    /// The first CUDA GPU (ONNX Runtime's CUDA execution provider).
    Cuda,
}

impl BackendKind {
    /// The name used in flags, configs and server metadata.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Tract => "tract",
            BackendKind::Ort => "ort",
        }
    }
}

impl Device {
    /// The name used in flags, configs and server metadata.
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = WorkerError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "tract" => Ok(BackendKind::Tract),
            "ort" => Ok(BackendKind::Ort),
            other => Err(WorkerError::Config {
                message: format!("unknown backend {other:?} (known: tract, ort)"),
            }),
        }
    }
}

impl FromStr for Device {
    type Err = WorkerError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            other => Err(WorkerError::Config {
                message: format!("unknown device {other:?} (known: cpu, cuda)"),
            }),
        }
    }
}

impl FromStr for ModelConfig {
    type Err = WorkerError;
    /// Parses `NAME=PATH`, as `--model` takes it.
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once('=') {
            Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(ModelConfig {
                name: name.to_owned(),
                path: PathBuf::from(path),
            }),
            _ => Err(WorkerError::Config {
                message: format!(
                    "model {s:?} is not NAME=PATH (for example ar_unet=models/ar_unet.onnx)"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let m: ModelConfig = "ar_unet=models/a=b.onnx".parse().unwrap();
        assert_eq!(m.name, "ar_unet");
        assert_eq!(m.path, PathBuf::from("models/a=b.onnx"));
        for bad in ["ar_unet", "=x.onnx", "ar_unet="] {
            let err = bad.parse::<ModelConfig>().unwrap_err().to_string();
            assert!(err.contains("is not NAME=PATH"), "{err}");
        }
        assert_eq!("ort".parse::<BackendKind>().unwrap(), BackendKind::Ort);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda);
        assert_eq!(
            "gpu".parse::<Device>().unwrap_err().to_string(),
            "invalid worker configuration: unknown device \"gpu\" (known: cpu, cuda)"
        );
    }

    #[test]
    fn validation() {
        let model = ModelConfig {
            name: "m".into(),
            path: "m.onnx".into(),
        };
        assert!(WorkerConfig::new(vec![model.clone()]).validate().is_ok());
        let err = WorkerConfig::new(vec![])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("no models to serve"), "{err}");
        let mut config = WorkerConfig::new(vec![model]);
        config.max_batch_size = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("max_batch_size must be at least 1"), "{err}");
    }
}
