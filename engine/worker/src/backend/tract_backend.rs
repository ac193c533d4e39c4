//! The tract backend: pure Rust, CPU.
//!
//! A model is analysed once with its ONNX `dim_param`s as symbols (N, H, W), which gives its
//! signature and a symbolic plan that serves any shape. Runs use plans optimized for their
//! concrete input shapes, built on first use and cached (the most recent [`PLAN_CACHE`] shapes):
//! on a 3×3 convolution over 256×256 tiles a concrete plan ran 25–100× faster than the symbolic
//! one. When a concrete plan cannot be built, the symbolic plan runs instead.
//!
//! Some graphs cannot be analysed symbolically (tract cannot prove that a U-Net's upsampled
//! `2·(H/8)` equals its skip connection's `H/4`); those take their signature from the ONNX
//! declarations and run only on concrete plans.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use isotach_proto::{DataType, Tensor};
use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoRunnable,
    IntoTValue, TValue, TVec, TypedFact, TypedModel, TypedSimplePlan, tvec,
};

use super::{Backend, Model, ModelSignature, TensorSpec};
use crate::config::{BackendKind, Device};
use crate::error::{Result, WorkerError};

#[cfg(target_endian = "big")]
compile_error!("the tract backend copies tensor bytes as they lie in memory: little-endian only");

pub(super) struct TractBackend;

impl Backend for TractBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Tract
    }

    fn device(&self) -> Device {
        Device::Cpu
    }

    fn load(&self, name: &str, path: &Path) -> Result<Box<dyn Model>> {
        let load_error = |stage: &str, e: tract_onnx::prelude::TractError| WorkerError::ModelLoad {
            model: name.to_owned(),
            path: path.display().to_string(),
            message: format!("{stage}: {e:#}"),
        };
        let inference = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| load_error("reading the ONNX graph", e))?;
        let (signature, symbolic) = match inference.clone().into_typed() {
            Ok(typed) => {
                let signature = signature(name, &typed)?;
                let plan = typed
                    .into_optimized()
                    .and_then(|m| m.into_runnable())
                    .map_err(|e| load_error("optimizing", e))?;
                (signature, Some(plan))
            }
            Err(e) => {
                tracing::debug!(model = name, error = %format!("{e:#}"), "no symbolic plan; concrete plans only");
                (declared_signature(name, &inference)?, None)
            }
        };
        Ok(Box::new(TractModel {
            name: name.to_owned(),
            signature,
            inference,
            symbolic,
            plans: Mutex::new(VecDeque::new()),
        }))
    }
}

/// How many concrete plans a model keeps (batch sizes × tile sizes in use).
pub const PLAN_CACHE: usize = 32;

type Shapes = Vec<Vec<usize>>;

struct TractModel {
    name: String,
    signature: ModelSignature,
    /// The graph as read, for concrete plans.
    inference: InferenceModel,
    /// The plan for any shape, when tract can analyse the graph with symbolic dimensions.
    symbolic: Option<Arc<TypedSimplePlan>>,
    /// Concrete plans by input shapes, most recently used last.
    plans: Mutex<VecDeque<(Shapes, Arc<TypedSimplePlan>)>>,
}

impl TractModel {
    /// The plan for `shapes`: cached, newly built, or the symbolic one when building fails.
    fn plan(&self, inputs: &[Tensor], shapes: &Shapes) -> Result<Arc<TypedSimplePlan>> {
        if let Ok(mut plans) = self.plans.lock()
            && let Some(i) = plans.iter().position(|(s, _)| s == shapes)
            && let Some(entry) = plans.remove(i)
        {
            let plan = entry.1.clone();
            plans.push_back(entry);
            return Ok(plan);
        }
        let started = std::time::Instant::now();
        let mut model = self.inference.clone();
        let built = inputs
            .iter()
            .zip(shapes)
            .enumerate()
            .try_for_each(|(i, (input, shape))| {
                model.set_input_fact(
                    i,
                    InferenceFact::dt_shape(datum_type(input.datatype), shape),
                )
            })
            .and_then(|()| model.into_optimized())
            .and_then(|m| m.into_runnable());
        match built {
            Ok(plan) => {
                tracing::debug!(
                    model = %self.name,
                    shapes = ?shapes,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "built a tract plan"
                );
                if let Ok(mut plans) = self.plans.lock() {
                    if plans.len() >= PLAN_CACHE {
                        plans.pop_front();
                    }
                    plans.push_back((shapes.clone(), plan.clone()));
                }
                Ok(plan)
            }
            Err(e) => match &self.symbolic {
                Some(symbolic) => {
                    tracing::debug!(model = %self.name, shapes = ?shapes, error = %e, "running the symbolic plan");
                    Ok(symbolic.clone())
                }
                None => Err(WorkerError::Run {
                    model: self.name.clone(),
                    message: format!("no plan for input shapes {shapes:?}: {e:#}"),
                }),
            },
        }
    }
}

impl Model for TractModel {
    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let run_error = |message: String| WorkerError::Run {
            model: self.name.clone(),
            message,
        };
        let shapes: Shapes = inputs.iter().map(|t| dims(&t.shape)).collect();
        let plan = self.plan(&inputs, &shapes)?;
        let mut values: TVec<TValue> = tvec![];
        for (input, shape) in inputs.iter().zip(&shapes) {
            let mut tensor =
                tract_onnx::prelude::Tensor::zero_dt(datum_type(input.datatype), shape)
                    .map_err(|e| run_error(format!("input {:?}: {e}", input.name)))?;
            tensor
                .try_as_plain_ram_mut()
                .map_err(|e| run_error(format!("input {:?}: {e}", input.name)))?
                .as_bytes_mut()
                .copy_from_slice(&input.data);
            values.push(tensor.into_tvalue());
        }
        let outputs = plan.run(values).map_err(|e| run_error(format!("{e:#}")))?;
        outputs
            .iter()
            .zip(&self.signature.outputs)
            .map(|(value, spec)| {
                let datatype = data_type(value.datum_type()).ok_or_else(|| {
                    run_error(format!(
                        "output {:?} is {:?}",
                        spec.name,
                        value.datum_type()
                    ))
                })?;
                let bytes = value
                    .try_as_plain_ram()
                    .map_err(|e| run_error(format!("output {:?}: {e}", spec.name)))?
                    .as_bytes()
                    .to_vec();
                let shape = value.shape().iter().map(|&d| d as i64).collect::<Vec<_>>();
                Tensor::new(spec.name.clone(), datatype, shape, bytes)
                    .map_err(|e| run_error(e.to_string()))
            })
            .collect()
    }
}

fn dims(shape: &[i64]) -> Vec<usize> {
    // Shapes reaching a backend were validated (no negative dimension).
    shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect()
}

fn signature(name: &str, model: &TypedModel) -> Result<ModelSignature> {
    let spec = |outlet: tract_onnx::prelude::OutletId,
                fallback: String,
                fact: &TypedFact|
     -> Result<TensorSpec> {
        let tensor_name = model
            .outlet_label(outlet)
            .map(str::to_owned)
            .unwrap_or(fallback);
        let datatype = data_type(fact.datum_type).ok_or_else(|| WorkerError::Unsupported {
            model: name.to_owned(),
            message: format!(
                "tensor {tensor_name:?} is {:?}, which the Open Inference Protocol cannot carry",
                fact.datum_type
            ),
        })?;
        let shape = fact
            .shape
            .iter()
            .map(|d| d.to_i64().unwrap_or(-1))
            .collect();
        Ok(TensorSpec {
            name: tensor_name,
            datatype,
            shape,
        })
    };
    let model_error = |e: tract_onnx::prelude::TractError| WorkerError::Unsupported {
        model: name.to_owned(),
        message: format!("{e:#}"),
    };
    let mut inputs = Vec::new();
    for outlet in model.input_outlets().map_err(model_error)? {
        let fact = model.outlet_fact(*outlet).map_err(model_error)?;
        let fallback = model.node(outlet.node).name.clone();
        inputs.push(spec(*outlet, fallback, fact)?);
    }
    let mut outputs = Vec::new();
    for outlet in model.output_outlets().map_err(model_error)? {
        let fact = model.outlet_fact(*outlet).map_err(model_error)?;
        let fallback = model.node(outlet.node).name.clone();
        outputs.push(spec(*outlet, fallback, fact)?);
    }
    Ok(ModelSignature { inputs, outputs })
}

/// The signature of a graph tract cannot analyse symbolically: inputs as the ONNX file declares
/// them (symbolic dimensions are -1), outputs from two concrete analyses (batch 1 at 256 × 256 and
/// batch 2 at 512 × 512 in place of the symbolic dimensions): a dimension that differs between
/// them is -1.
fn declared_signature(name: &str, model: &InferenceModel) -> Result<ModelSignature> {
    use tract_onnx::tract_hir::infer::Factoid;
    let unsupported = |message: String| WorkerError::Unsupported {
        model: name.to_owned(),
        message,
    };
    let error = |e: tract_onnx::prelude::TractError| unsupported(format!("{e:#}"));
    let label = |outlet: tract_onnx::prelude::OutletId| {
        model
            .outlet_label(outlet)
            .map(str::to_owned)
            .unwrap_or_else(|| model.node(outlet.node).name.clone())
    };
    let mut inputs = Vec::new();
    for &outlet in model.input_outlets().map_err(error)? {
        let tensor_name = label(outlet);
        let fact = model.outlet_fact(outlet).map_err(error)?;
        let datatype = fact
            .datum_type
            .concretize()
            .and_then(data_type)
            .ok_or_else(|| {
                unsupported(format!(
                    "input {tensor_name:?} has no declared type the Open Inference Protocol can \
                     carry ({:?})",
                    fact.datum_type
                ))
            })?;
        let shape = fact
            .shape
            .dims()
            .map(|d| d.concretize().and_then(|d| d.to_i64().ok()).unwrap_or(-1))
            .collect();
        inputs.push(TensorSpec {
            name: tensor_name,
            datatype,
            shape,
        });
    }
    let probe = |batch: usize, side: usize| -> Result<Vec<(DatumType, Vec<usize>)>> {
        let mut probed = model.clone();
        for (i, input) in inputs.iter().enumerate() {
            let shape: Vec<usize> = input
                .shape
                .iter()
                .enumerate()
                .map(|(k, &d)| match (k, usize::try_from(d)) {
                    (_, Ok(d)) => d,
                    (0, Err(_)) => batch,
                    (_, Err(_)) => side,
                })
                .collect();
            probed
                .set_input_fact(
                    i,
                    InferenceFact::dt_shape(datum_type(input.datatype), shape),
                )
                .map_err(error)?;
        }
        let typed = probed.into_typed().map_err(error)?;
        typed
            .output_outlets()
            .map_err(error)?
            .iter()
            .map(|&o| {
                let fact = typed.outlet_fact(o).map_err(error)?;
                let shape = fact
                    .shape
                    .as_concrete()
                    .map(<[usize]>::to_vec)
                    .unwrap_or_default();
                Ok((fact.datum_type, shape))
            })
            .collect()
    };
    let (small, large) = (probe(1, 256)?, probe(2, 512)?);
    let mut outputs = Vec::new();
    for (k, &outlet) in model.output_outlets().map_err(error)?.iter().enumerate() {
        let tensor_name = label(outlet);
        let ((datum, a), (_, b)) = (&small[k], &large[k]);
        let datatype = data_type(*datum).ok_or_else(|| {
            unsupported(format!(
                "output {tensor_name:?} is {datum:?}, which the Open Inference Protocol cannot carry"
            ))
        })?;
        let shape = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| if x == y { x as i64 } else { -1 })
            .collect();
        outputs.push(TensorSpec {
            name: tensor_name,
            datatype,
            shape,
        });
    }
    Ok(ModelSignature { inputs, outputs })
}

fn data_type(datum: DatumType) -> Option<DataType> {
    Some(match datum {
        DatumType::Bool => DataType::Bool,
        DatumType::U8 => DataType::Uint8,
        DatumType::U16 => DataType::Uint16,
        DatumType::U32 => DataType::Uint32,
        DatumType::U64 => DataType::Uint64,
        DatumType::I8 => DataType::Int8,
        DatumType::I16 => DataType::Int16,
        DatumType::I32 => DataType::Int32,
        DatumType::I64 => DataType::Int64,
        DatumType::F16 => DataType::Fp16,
        DatumType::F32 => DataType::Fp32,
        DatumType::F64 => DataType::Fp64,
        _ => return None,
    })
}

fn datum_type(datatype: DataType) -> DatumType {
    match datatype {
        DataType::Bool => DatumType::Bool,
        DataType::Uint8 => DatumType::U8,
        DataType::Uint16 => DatumType::U16,
        DataType::Uint32 => DatumType::U32,
        DataType::Uint64 => DatumType::U64,
        DataType::Int8 => DatumType::I8,
        DataType::Int16 => DatumType::I16,
        DataType::Int32 => DatumType::I32,
        DataType::Int64 => DatumType::I64,
        DataType::Fp16 => DatumType::F16,
        DataType::Fp32 => DatumType::F32,
        DataType::Fp64 => DatumType::F64,
    }
}
