//! The ONNX Runtime backend (`ort`), loading `libonnxruntime.so` at run time from a path; on the
//! CPU or, with `--device cuda`, on ONNX Runtime's CUDA execution provider.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use isotach_proto::{DataType, Tensor};
use ort::ep::{self, ExecutionProvider};
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, TensorElementType, ValueType};

use super::{Backend, Model, ModelSignature, TensorSpec};
use crate::config::{BackendKind, Device};
use crate::error::{Result, WorkerError};

pub(super) struct OrtBackend {
    environment: ort::environment::Environment,
    device: Device,
    intra_op_threads: usize,
}

/// ONNX Runtime allows one environment per process, ever: the first one opened is kept, with the
/// library it came from.
static ENVIRONMENT: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();
static OPENING: Mutex<()> = Mutex::new(());

/// The process's ONNX Runtime environment, loading `library` the first time.
fn environment(library: &Path) -> Result<ort::environment::Environment> {
    let _opening = OPENING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((loaded, environment)) = ENVIRONMENT.get() {
        if loaded != library {
            return Err(unavailable(format!(
                "ONNX Runtime was loaded from {} in this process; it cannot also load {}",
                loaded.display(),
                library.display()
            )));
        }
        return Ok(environment.clone());
    }
    let environment = ort::init_from(library)
        .map_err(|e| unavailable(format!("loading {}: {e}", library.display())))?
        .with_name("isotach-worker")
        .build()
        .map_err(|e| {
            unavailable(format!(
                "starting ONNX Runtime from {}: {e}",
                library.display()
            ))
        })?;
    let _ = ENVIRONMENT.set((library.to_owned(), environment.clone()));
    Ok(environment)
}

fn unavailable(message: String) -> WorkerError {
    WorkerError::BackendUnavailable {
        backend: "ort",
        message,
    }
}

impl OrtBackend {
    /// Loads ONNX Runtime from `library` (or `ORT_DYLIB_PATH`) and checks the device.
    pub(super) fn open(
        library: Option<&Path>,
        device: Device,
        intra_op_threads: usize,
    ) -> Result<Self> {
        let library: PathBuf = match library {
            Some(path) => path.to_owned(),
            None => std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).ok_or_else(|| {
                unavailable(
                    "no ONNX Runtime library given: pass --ort-library PATH (libonnxruntime.so, \
                     for example from the onnxruntime wheel's onnxruntime/capi/) or set ORT_DYLIB_PATH"
                        .into(),
                )
            })?,
        };
        if !library.is_file() {
            return Err(unavailable(format!(
                "ONNX Runtime library {} does not exist",
                library.display()
            )));
        }
        let environment = environment(&library)?;
        if device == Device::Cuda {
            let available = ep::CUDA::is_available().map_err(|e| {
                unavailable(format!(
                    "asking {} for its execution providers: {e}",
                    library.display()
                ))
            })?;
            if !available {
                return Err(unavailable(format!(
                    "--device cuda needs ONNX Runtime's CUDAExecutionProvider, which {} does not have \
                     (install the onnxruntime-gpu wheel and point --ort-library at its libonnxruntime.so)",
                    library.display()
                )));
            }
        }
        Ok(Self {
            environment,
            device,
            intra_op_threads,
        })
    }
}

impl Backend for OrtBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Ort
    }

    fn device(&self) -> Device {
        self.device
    }

    fn load(&self, name: &str, path: &Path) -> Result<Box<dyn Model>> {
        let load_error = |message: String| WorkerError::ModelLoad {
            model: name.to_owned(),
            path: path.display().to_string(),
            message,
        };
        let mut builder =
            Session::builder(&self.environment).map_err(|e| load_error(e.to_string()))?;
        if self.intra_op_threads > 0 {
            builder = builder
                .with_intra_threads(self.intra_op_threads)
                .map_err(|e| load_error(e.to_string()))?;
        }
        if self.device == Device::Cuda {
            builder = builder
                .with_execution_providers([ep::CUDA::default().build().error_on_failure()])
                .map_err(|e| load_error(format!("registering the CUDA execution provider: {e}")))?;
        }
        let session = builder
            .commit_from_file(path)
            .map_err(|e| load_error(e.to_string()))?;
        let spec = |outlet: &ort::value::Outlet| -> Result<TensorSpec> {
            let unsupported = |what: String| WorkerError::Unsupported {
                model: name.to_owned(),
                message: format!(
                    "tensor {:?} is {what}, which the worker cannot serve",
                    outlet.name()
                ),
            };
            match outlet.dtype() {
                ValueType::Tensor { ty, shape, .. } => Ok(TensorSpec {
                    name: outlet.name().to_owned(),
                    datatype: data_type(*ty).ok_or_else(|| unsupported(format!("{ty:?}")))?,
                    shape: shape.iter().map(|&d| if d < 0 { -1 } else { d }).collect(),
                }),
                other => Err(unsupported(format!("{other:?}"))),
            }
        };
        let signature = ModelSignature {
            inputs: session.inputs().iter().map(spec).collect::<Result<_>>()?,
            outputs: session.outputs().iter().map(spec).collect::<Result<_>>()?,
        };
        Ok(Box::new(OrtModel {
            name: name.to_owned(),
            signature,
            session: Mutex::new(session),
        }))
    }
}

struct OrtModel {
    name: String,
    signature: ModelSignature,
    session: Mutex<Session>,
}

/// Decodes little-endian bytes into values of `$t`.
macro_rules! decode {
    ($data:expr, $t:ty) => {
        $data
            .chunks_exact(std::mem::size_of::<$t>())
            .map(|b| <$t>::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect::<Vec<$t>>()
    };
}

/// Encodes values of any numeric type as little-endian bytes.
macro_rules! encode {
    ($values:expr) => {
        $values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    };
}

impl OrtModel {
    fn value(&self, input: &Tensor) -> ort::Result<DynValue> {
        let shape = input.shape.clone();
        let d = &input.data;
        Ok(match input.datatype {
            DataType::Bool => ort::value::Tensor::from_array((
                shape,
                d.iter().map(|&b| b != 0).collect::<Vec<bool>>(),
            ))?
            .into_dyn(),
            DataType::Uint8 => ort::value::Tensor::from_array((shape, d.clone()))?.into_dyn(),
            DataType::Int8 => ort::value::Tensor::from_array((shape, decode!(d, i8)))?.into_dyn(),
            DataType::Uint16 => {
                ort::value::Tensor::from_array((shape, decode!(d, u16)))?.into_dyn()
            }
            DataType::Int16 => ort::value::Tensor::from_array((shape, decode!(d, i16)))?.into_dyn(),
            DataType::Uint32 => {
                ort::value::Tensor::from_array((shape, decode!(d, u32)))?.into_dyn()
            }
            DataType::Int32 => ort::value::Tensor::from_array((shape, decode!(d, i32)))?.into_dyn(),
            DataType::Uint64 => {
                ort::value::Tensor::from_array((shape, decode!(d, u64)))?.into_dyn()
            }
            DataType::Int64 => ort::value::Tensor::from_array((shape, decode!(d, i64)))?.into_dyn(),
            DataType::Fp16 => {
                let values = decode!(d, u16)
                    .into_iter()
                    .map(half::f16::from_bits)
                    .collect::<Vec<_>>();
                ort::value::Tensor::from_array((shape, values))?.into_dyn()
            }
            DataType::Fp32 => ort::value::Tensor::from_array((shape, decode!(d, f32)))?.into_dyn(),
            DataType::Fp64 => ort::value::Tensor::from_array((shape, decode!(d, f64)))?.into_dyn(),
        })
    }
}

fn output_bytes(value: &DynValue, datatype: DataType) -> ort::Result<(Vec<i64>, Vec<u8>)> {
    macro_rules! extract {
        ($t:ty) => {{
            let (shape, values) = value.try_extract_tensor::<$t>()?;
            (shape.to_vec(), encode!(values))
        }};
    }
    Ok(match datatype {
        DataType::Bool => {
            let (shape, values) = value.try_extract_tensor::<bool>()?;
            (
                shape.to_vec(),
                values.iter().map(|&b| u8::from(b)).collect(),
            )
        }
        DataType::Uint8 => extract!(u8),
        DataType::Int8 => extract!(i8),
        DataType::Uint16 => extract!(u16),
        DataType::Int16 => extract!(i16),
        DataType::Uint32 => extract!(u32),
        DataType::Int32 => extract!(i32),
        DataType::Uint64 => extract!(u64),
        DataType::Int64 => extract!(i64),
        DataType::Fp16 => {
            let (shape, values) = value.try_extract_tensor::<half::f16>()?;
            (
                shape.to_vec(),
                values
                    .iter()
                    .flat_map(|v| v.to_bits().to_le_bytes())
                    .collect(),
            )
        }
        DataType::Fp32 => extract!(f32),
        DataType::Fp64 => extract!(f64),
    })
}

impl Model for OrtModel {
    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let run_error = |message: String| WorkerError::Run {
            model: self.name.clone(),
            message,
        };
        let mut values: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(inputs.len());
        for input in &inputs {
            let value = self
                .value(input)
                .map_err(|e| run_error(format!("input {:?}: {e}", input.name)))?;
            values.push((Cow::Owned(input.name.clone()), value.into()));
        }
        let mut session = self
            .session
            .lock()
            .map_err(|_| run_error("an earlier run panicked".into()))?;
        let outputs = session.run(values).map_err(|e| run_error(e.to_string()))?;
        self.signature
            .outputs
            .iter()
            .map(|spec| {
                let value = outputs.get(spec.name.as_str()).ok_or_else(|| {
                    run_error(format!("output {:?} missing from the run", spec.name))
                })?;
                let (shape, bytes) = output_bytes(value, spec.datatype)
                    .map_err(|e| run_error(format!("output {:?}: {e}", spec.name)))?;
                Tensor::new(spec.name.clone(), spec.datatype, shape, bytes)
                    .map_err(|e| run_error(e.to_string()))
            })
            .collect()
    }
}

fn data_type(ty: TensorElementType) -> Option<DataType> {
    Some(match ty {
        TensorElementType::Bool => DataType::Bool,
        TensorElementType::Uint8 => DataType::Uint8,
        TensorElementType::Uint16 => DataType::Uint16,
        TensorElementType::Uint32 => DataType::Uint32,
        TensorElementType::Uint64 => DataType::Uint64,
        TensorElementType::Int8 => DataType::Int8,
        TensorElementType::Int16 => DataType::Int16,
        TensorElementType::Int32 => DataType::Int32,
        TensorElementType::Int64 => DataType::Int64,
        TensorElementType::Float16 => DataType::Fp16,
        TensorElementType::Float32 => DataType::Fp32,
        TensorElementType::Float64 => DataType::Fp64,
        _ => return None,
    })
}
