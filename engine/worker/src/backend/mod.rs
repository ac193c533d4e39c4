//! Backends: the libraries that run a model. Each loads `.onnx` files into [`Model`]s that report
//! their signature and run one batch at a time.

use std::path::Path;
use std::sync::Arc;

use isotach_proto::{DataType, Tensor};

use crate::config::{BackendKind, Device, WorkerConfig};
use crate::error::Result;

mod ort_backend;
mod tract_backend;

/// A tensor of a model's signature: name, datatype and shape, `-1` for a dynamic dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name, as the ONNX graph has it.
    pub name: String,
    /// The element datatype.
    pub datatype: DataType,
    /// The shape; `-1` marks a dimension fixed only at run time (an ONNX `dim_param`).
    pub shape: Vec<i64>,
}

/// A model's inputs and outputs, in the graph's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSignature {
    /// The inputs.
    pub inputs: Vec<TensorSpec>,
    /// The outputs.
    pub outputs: Vec<TensorSpec>,
}

impl ModelSignature {
    /// Whether requests can be merged along dim 0: every input and output has a dynamic first
    /// dimension.
    pub fn batchable(&self) -> bool {
        self.inputs
            .iter()
            .chain(&self.outputs)
            .all(|t| t.shape.first() == Some(&-1))
    }
}

/// A library that loads models.
pub trait Backend: Send + Sync {
    /// Its name, as `--backend` takes it.
    fn kind(&self) -> BackendKind;
    /// The device it runs on.
    fn device(&self) -> Device;
    /// Loads and prepares the model at `path`, to be served as `name`.
    fn load(&self, name: &str, path: &Path) -> Result<Box<dyn Model>>;
}

/// A loaded model.
pub trait Model: Send + Sync {
    /// Its inputs and outputs.
    fn signature(&self) -> &ModelSignature;
    /// Runs one batch. `inputs` are in signature order with the signature's datatypes and
    /// concrete shapes; the outputs come back in signature order.
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>>;
}

/// Opens the backend `config` asks for.
pub fn open_backend(config: &WorkerConfig) -> Result<Arc<dyn Backend>> {
    match config.backend {
        BackendKind::Tract => Ok(Arc::new(tract_backend::TractBackend)),
        BackendKind::Ort => Ok(Arc::new(ort_backend::OrtBackend::open(
            config.ort_library.as_deref(),
            config.device,
            config.intra_op_threads,
        )?)),
    }
}
