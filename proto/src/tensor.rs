//! Tensors for the Open Inference Protocol.
//!
//! A [`Tensor`] is a name, a [`DataType`], a shape and the elements as little-endian raw bytes,
//! flattened in row-major order: exactly what a `ModelInfer` call carries in
//! `raw_input_contents` and `raw_output_contents`. Requests are always built with raw contents
//! (the only way FP16 can travel, and the cheapest); tensors are read back from raw contents
//! when a peer sent them and from the typed `contents` fields otherwise.
//!
//! ```
//! use isotach_proto::tensor::{infer_request, response_tensors};
//! use isotach_proto::inference::{ModelInferResponse, model_infer_response::InferOutputTensor};
//! use isotach_proto::Tensor;
//!
//! let input = Tensor::from_f32("ivt", [1, 2, 2], &[0.0, 250.0, 500.0, 1000.0]).unwrap();
//! let request = infer_request("ar_unet", vec![input]).unwrap();
//! assert_eq!(request.inputs[0].datatype, "FP32");
//! assert_eq!(request.raw_input_contents[0].len(), 16);
//!
//! // A server answering with raw bytes:
//! let response = ModelInferResponse {
//!     model_name: "ar_unet".into(),
//!     outputs: vec![InferOutputTensor {
//!         name: "ar_prob".into(),
//!         datatype: "FP32".into(),
//!         shape: vec![1, 2],
//!         ..Default::default()
//!     }],
//!     raw_output_contents: vec![[0.25f32.to_le_bytes(), 0.75f32.to_le_bytes()].concat()],
//!     ..Default::default()
//! };
//! let outputs = response_tensors(response).unwrap();
//! assert_eq!(outputs[0].to_f32().unwrap(), vec![0.25, 0.75]);
//! ```

use std::collections::HashSet;
use std::fmt;

use crate::inference::model_infer_request::InferInputTensor;
use crate::inference::model_infer_response::InferOutputTensor;
use crate::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};

/// The datatype of a tensor's elements, with its Open Inference Protocol name.
///
/// Covers every fixed-size datatype of the protocol. `BYTES` (variable-length strings) is not
/// supported: its elements have no fixed size, so raw contents cannot be checked against a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `BOOL`: one byte, 0 or 1.
    Bool,
    /// `UINT8`.
    Uint8,
    /// `UINT16`.
    Uint16,
    /// `UINT32`.
    Uint32,
    /// `UINT64`.
    Uint64,
    /// `INT8`.
    Int8,
    /// `INT16`.
    Int16,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FP16`: IEEE 754 half precision; raw contents only.
    Fp16,
    /// `FP32`.
    Fp32,
    /// `FP64`.
    Fp64,
}

impl DataType {
    /// Every supported datatype, in the protocol's order.
    pub const ALL: [DataType; 12] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Fp32,
        DataType::Fp64,
    ];

    /// The protocol name, such as `"FP32"`.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
        }
    }

    /// Looks a datatype up by its protocol name (exact, upper case).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => 1,
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 => 2,
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => 4,
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => 8,
        }
    }

    fn known_names() -> String {
        Self::ALL.map(DataType::name).join(", ")
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a tensor or an inference message is malformed. Each message names the tensor and the
/// values involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// The raw bytes do not match the shape and datatype.
    #[error("tensor {tensor:?} ({datatype}, shape {shape:?}) needs {expected} bytes, got {actual}")]
    ByteCount {
        /// The tensor's name.
        tensor: String,
        /// Its datatype.
        datatype: DataType,
        /// Its shape.
        shape: Vec<i64>,
        /// Bytes the shape and datatype require.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A number of values that does not match the shape.
    #[error("tensor {tensor:?}: shape {shape:?} needs {expected} values in {field}, got {actual}")]
    ElementCount {
        /// The tensor's name.
        tensor: String,
        /// Its shape.
        shape: Vec<i64>,
        /// Where the values came from, such as `contents.fp32_contents`.
        field: &'static str,
        /// Values the shape requires.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// A negative dimension (only model metadata may use -1, for a variable size).
    #[error(
        "tensor {tensor:?}: shape {shape:?} has a negative dimension; a tensor with data needs sizes >= 0"
    )]
    NegativeDimension {
        /// The tensor's name.
        tensor: String,
        /// Its shape.
        shape: Vec<i64>,
    },
    /// A shape whose byte size overflows the address space.
    #[error("tensor {tensor:?}: shape {shape:?} of {datatype} is too large to hold in memory")]
    TooLarge {
        /// The tensor's name.
        tensor: String,
        /// Its datatype.
        datatype: DataType,
        /// Its shape.
        shape: Vec<i64>,
    },
    /// A datatype name this crate does not know.
    #[error("tensor {tensor:?}: unknown datatype {datatype:?} (known: {known})", known = DataType::known_names())]
    UnknownDatatype {
        /// The tensor's name.
        tensor: String,
        /// The name given.
        datatype: String,
    },
    /// Raw contents given, but not one entry per tensor.
    #[error(
        "{raw_field} has {raw} entries but {tensors_field} has {tensors} tensors; give one entry per tensor, in order"
    )]
    RawCountMismatch {
        /// `raw_input_contents` or `raw_output_contents`.
        raw_field: &'static str,
        /// Number of raw entries.
        raw: usize,
        /// `inputs` or `outputs`.
        tensors_field: &'static str,
        /// Number of tensors.
        tensors: usize,
    },
    /// A tensor with typed contents in a message that uses raw contents.
    #[error(
        "tensor {tensor:?} sets typed contents while {raw_field} is used; send every tensor one way"
    )]
    MixedContents {
        /// The tensor's name.
        tensor: String,
        /// `raw_input_contents` or `raw_output_contents`.
        raw_field: &'static str,
    },
    /// A datatype the typed contents fields cannot carry.
    #[error(
        "tensor {tensor:?}: {datatype} has no typed contents field; it must be sent as raw bytes"
    )]
    RawOnly {
        /// The tensor's name.
        tensor: String,
        /// Its datatype.
        datatype: DataType,
    },
    /// A typed value outside the range of the tensor's datatype.
    #[error("tensor {tensor:?}: value {value} at index {index} of {field} does not fit {datatype}")]
    ValueOutOfRange {
        /// The tensor's name.
        tensor: String,
        /// Its datatype.
        datatype: DataType,
        /// The typed contents field.
        field: &'static str,
        /// Index of the value.
        index: usize,
        /// The value.
        value: i64,
    },
    /// A conversion asked of a tensor of another datatype.
    #[error("tensor {tensor:?} is {datatype}; expected {expected}")]
    WrongDatatype {
        /// The tensor's name.
        tensor: String,
        /// Its datatype.
        datatype: DataType,
        /// The datatypes the conversion accepts.
        expected: &'static str,
    },
    /// Two tensors of one message share a name.
    #[error(
        "tensor name {tensor:?} appears more than once in {tensors_field}; names must be unique"
    )]
    DuplicateName {
        /// The name.
        tensor: String,
        /// `inputs` or `outputs`.
        tensors_field: &'static str,
    },
}

/// One tensor: its elements as little-endian bytes, flattened in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The tensor's name, as the model's signature has it.
    pub name: String,
    /// The element datatype.
    pub datatype: DataType,
    /// The shape, outermost dimension first; `[]` is a scalar.
    pub shape: Vec<i64>,
    /// The elements, little-endian, row-major, without padding.
    pub data: Vec<u8>,
}

impl Tensor {
    /// A tensor from raw little-endian bytes, checked against its shape.
    pub fn new(
        name: impl Into<String>,
        datatype: DataType,
        shape: impl Into<Vec<i64>>,
        data: Vec<u8>,
    ) -> Result<Self, TensorError> {
        let tensor = Self {
            name: name.into(),
            datatype,
            shape: shape.into(),
            data,
        };
        tensor.validate()?;
        Ok(tensor)
    }

    /// An FP32 tensor from values in row-major order.
    ///
    /// ```
    /// let t = isotach_proto::Tensor::from_f32("x", [2, 3], &[1.0; 6]).unwrap();
    /// assert_eq!(t.data.len(), 24);
    /// assert!(isotach_proto::Tensor::from_f32("x", [2, 3], &[1.0; 5]).is_err());
    /// ```
    pub fn from_f32(
        name: impl Into<String>,
        shape: impl Into<Vec<i64>>,
        values: &[f32],
    ) -> Result<Self, TensorError> {
        let name = name.into();
        let shape = shape.into();
        let expected = element_count(&name, DataType::Fp32, &shape)?;
        if values.len() != expected {
            return Err(TensorError::ElementCount {
                tensor: name,
                shape,
                field: "values",
                expected,
                actual: values.len(),
            });
        }
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(Self {
            name,
            datatype: DataType::Fp32,
            shape,
            data,
        })
    }

    /// The number of elements the shape holds (1 for a scalar).
    pub fn element_count(&self) -> Result<usize, TensorError> {
        element_count(&self.name, self.datatype, &self.shape)
    }

    /// Checks that no dimension is negative and that the bytes are exactly
    /// product(shape) × element size.
    pub fn validate(&self) -> Result<(), TensorError> {
        let expected = self.byte_len()?;
        if self.data.len() != expected {
            return Err(TensorError::ByteCount {
                tensor: self.name.clone(),
                datatype: self.datatype,
                shape: self.shape.clone(),
                expected,
                actual: self.data.len(),
            });
        }
        Ok(())
    }

    /// The elements as `f32`: FP32 as is, FP16 widened exactly.
    pub fn to_f32(&self) -> Result<Vec<f32>, TensorError> {
        self.validate()?;
        match self.datatype {
            DataType::Fp32 => Ok(self
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()),
            DataType::Fp16 => Ok(self
                .data
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect()),
            other => Err(TensorError::WrongDatatype {
                tensor: self.name.clone(),
                datatype: other,
                expected: "FP32 or FP16",
            }),
        }
    }

    fn byte_len(&self) -> Result<usize, TensorError> {
        let elements = self.element_count()?;
        elements
            .checked_mul(self.datatype.size_bytes())
            .ok_or_else(|| TensorError::TooLarge {
                tensor: self.name.clone(),
                datatype: self.datatype,
                shape: self.shape.clone(),
            })
    }
}

fn element_count(tensor: &str, datatype: DataType, shape: &[i64]) -> Result<usize, TensorError> {
    let mut count: usize = 1;
    let too_large = || TensorError::TooLarge {
        tensor: tensor.to_owned(),
        datatype,
        shape: shape.to_vec(),
    };
    for &dim in shape {
        if dim < 0 {
            return Err(TensorError::NegativeDimension {
                tensor: tensor.to_owned(),
                shape: shape.to_vec(),
            });
        }
        let dim = usize::try_from(dim).map_err(|_| too_large())?;
        count = count.checked_mul(dim).ok_or_else(too_large)?;
    }
    Ok(count)
}

/// Widens an IEEE 754 half-precision value (given as its bits) to `f32`, exactly.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = bits & 0x3ff;
    let magnitude = match exponent {
        // Zero and subnormals: mantissa × 2^-24, exact in f32.
        0 => (f32::from(mantissa) * f32::from_bits(0x3380_0000)).to_bits(),
        // Infinities and NaNs (payload kept).
        0x1f => 0x7f80_0000 | (u32::from(mantissa) << 13),
        // Normal numbers: rebias the exponent from 15 to 127.
        _ => ((exponent + 112) << 23) | (u32::from(mantissa) << 13),
    };
    f32::from_bits(sign | magnitude)
}

// ---- messages ----

/// Which side of a `ModelInfer` call a set of tensors travels on, for error messages.
#[derive(Clone, Copy)]
struct Side {
    tensors_field: &'static str,
    raw_field: &'static str,
}

const INPUTS: Side = Side {
    tensors_field: "inputs",
    raw_field: "raw_input_contents",
};
const OUTPUTS: Side = Side {
    tensors_field: "outputs",
    raw_field: "raw_output_contents",
};

/// A tensor's metadata as it stands in a message, before its data is attached.
struct WireTensor {
    name: String,
    datatype: String,
    shape: Vec<i64>,
    contents: Option<InferTensorContents>,
}

/// A `ModelInferRequest` for `model_name` carrying `inputs` as raw contents, in order.
///
/// Every input is validated first and names must be unique. The version, id, parameters and
/// requested outputs are left empty (the server's defaults); set the public fields to change them.
pub fn infer_request(
    model_name: impl Into<String>,
    inputs: Vec<Tensor>,
) -> Result<ModelInferRequest, TensorError> {
    check_tensors(INPUTS, &inputs)?;
    let (metadata, raw): (Vec<_>, Vec<_>) = inputs
        .into_iter()
        .map(|t| {
            let input = InferInputTensor {
                name: t.name,
                datatype: t.datatype.name().to_owned(),
                shape: t.shape,
                ..Default::default()
            };
            (input, t.data)
        })
        .unzip();
    Ok(ModelInferRequest {
        model_name: model_name.into(),
        inputs: metadata,
        raw_input_contents: raw,
        ..Default::default()
    })
}

/// A `ModelInferResponse` from `model_name` carrying `outputs` as raw contents, in order.
///
/// Every output is validated first and names must be unique. Set `id` (to the request's) and
/// `model_version` on the result as needed.
pub fn infer_response(
    model_name: impl Into<String>,
    outputs: Vec<Tensor>,
) -> Result<ModelInferResponse, TensorError> {
    check_tensors(OUTPUTS, &outputs)?;
    let (metadata, raw): (Vec<_>, Vec<_>) = outputs
        .into_iter()
        .map(|t| {
            let output = InferOutputTensor {
                name: t.name,
                datatype: t.datatype.name().to_owned(),
                shape: t.shape,
                ..Default::default()
            };
            (output, t.data)
        })
        .unzip();
    Ok(ModelInferResponse {
        model_name: model_name.into(),
        outputs: metadata,
        raw_output_contents: raw,
        ..Default::default()
    })
}

/// The input tensors of a request, from its raw contents or, when those are absent, from each
/// input's typed contents.
pub fn request_tensors(request: ModelInferRequest) -> Result<Vec<Tensor>, TensorError> {
    let wire = request
        .inputs
        .into_iter()
        .map(|t| WireTensor {
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
            contents: t.contents,
        })
        .collect();
    read_tensors(INPUTS, wire, request.raw_input_contents)
}

/// The output tensors of a response, from its raw contents or, when those are absent, from each
/// output's typed contents.
pub fn response_tensors(response: ModelInferResponse) -> Result<Vec<Tensor>, TensorError> {
    let wire = response
        .outputs
        .into_iter()
        .map(|t| WireTensor {
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
            contents: t.contents,
        })
        .collect();
    read_tensors(OUTPUTS, wire, response.raw_output_contents)
}

fn check_tensors(side: Side, tensors: &[Tensor]) -> Result<(), TensorError> {
    let mut names = HashSet::new();
    for tensor in tensors {
        tensor.validate()?;
        if !names.insert(tensor.name.as_str()) {
            return Err(TensorError::DuplicateName {
                tensor: tensor.name.clone(),
                tensors_field: side.tensors_field,
            });
        }
    }
    Ok(())
}

fn read_tensors(
    side: Side,
    wire: Vec<WireTensor>,
    raw: Vec<Vec<u8>>,
) -> Result<Vec<Tensor>, TensorError> {
    if raw.is_empty() {
        return wire.into_iter().map(typed_tensor).collect();
    }
    if raw.len() != wire.len() {
        return Err(TensorError::RawCountMismatch {
            raw_field: side.raw_field,
            raw: raw.len(),
            tensors_field: side.tensors_field,
            tensors: wire.len(),
        });
    }
    wire.into_iter()
        .zip(raw)
        .map(|(t, data)| {
            if t.contents.as_ref().is_some_and(has_values) {
                return Err(TensorError::MixedContents {
                    tensor: t.name,
                    raw_field: side.raw_field,
                });
            }
            let datatype = parse_datatype(&t.name, &t.datatype)?;
            Tensor::new(t.name, datatype, t.shape, data)
        })
        .collect()
}

fn parse_datatype(tensor: &str, name: &str) -> Result<DataType, TensorError> {
    DataType::from_name(name).ok_or_else(|| TensorError::UnknownDatatype {
        tensor: tensor.to_owned(),
        datatype: name.to_owned(),
    })
}

fn has_values(c: &InferTensorContents) -> bool {
    !(c.bool_contents.is_empty()
        && c.int_contents.is_empty()
        && c.int64_contents.is_empty()
        && c.uint_contents.is_empty()
        && c.uint64_contents.is_empty()
        && c.fp32_contents.is_empty()
        && c.fp64_contents.is_empty()
        && c.bytes_contents.is_empty())
}

/// A tensor from its typed contents, checked value by value.
fn typed_tensor(wire: WireTensor) -> Result<Tensor, TensorError> {
    const INT: &str = "contents.int_contents";
    const UINT: &str = "contents.uint_contents";

    let WireTensor {
        name,
        datatype: datatype_name,
        shape,
        contents,
    } = wire;
    let datatype = parse_datatype(&name, &datatype_name)?;
    let typed = Typed {
        tensor: &name,
        shape: &shape,
        datatype,
        expected: element_count(&name, datatype, &shape)?,
    };
    let c = contents.unwrap_or_default();
    let data = match datatype {
        DataType::Bool => typed.encode("contents.bool_contents", &c.bool_contents, |b| {
            [u8::from(b)]
        }),
        DataType::Int8 => typed.narrow(INT, &c.int_contents, |v| {
            i8::try_from(v).ok().map(i8::to_le_bytes)
        }),
        DataType::Int16 => typed.narrow(INT, &c.int_contents, |v| {
            i16::try_from(v).ok().map(i16::to_le_bytes)
        }),
        DataType::Int32 => typed.encode(INT, &c.int_contents, i32::to_le_bytes),
        DataType::Int64 => typed.encode(
            "contents.int64_contents",
            &c.int64_contents,
            i64::to_le_bytes,
        ),
        DataType::Uint8 => typed.narrow(UINT, &c.uint_contents, |v| {
            u8::try_from(v).ok().map(u8::to_le_bytes)
        }),
        DataType::Uint16 => typed.narrow(UINT, &c.uint_contents, |v| {
            u16::try_from(v).ok().map(u16::to_le_bytes)
        }),
        DataType::Uint32 => typed.encode(UINT, &c.uint_contents, u32::to_le_bytes),
        DataType::Uint64 => typed.encode(
            "contents.uint64_contents",
            &c.uint64_contents,
            u64::to_le_bytes,
        ),
        DataType::Fp32 => {
            typed.encode("contents.fp32_contents", &c.fp32_contents, f32::to_le_bytes)
        }
        DataType::Fp64 => {
            typed.encode("contents.fp64_contents", &c.fp64_contents, f64::to_le_bytes)
        }
        // No typed field carries FP16; only a tensor without elements can do without raw bytes.
        DataType::Fp16 if typed.expected == 0 => Ok(Vec::new()),
        DataType::Fp16 => Err(TensorError::RawOnly {
            tensor: name.clone(),
            datatype,
        }),
    }?;
    Tensor::new(name, datatype, shape, data)
}

/// One tensor read from typed contents: what errors need to name, and the value count wanted.
struct Typed<'a> {
    tensor: &'a str,
    shape: &'a [i64],
    datatype: DataType,
    expected: usize,
}

impl Typed<'_> {
    fn check_count(&self, field: &'static str, actual: usize) -> Result<(), TensorError> {
        if actual != self.expected {
            return Err(TensorError::ElementCount {
                tensor: self.tensor.to_owned(),
                shape: self.shape.to_vec(),
                field,
                expected: self.expected,
                actual,
            });
        }
        Ok(())
    }

    /// Encodes values whose field type is the datatype's own.
    fn encode<T: Copy, const N: usize>(
        &self,
        field: &'static str,
        values: &[T],
        to_bytes: impl Fn(T) -> [u8; N],
    ) -> Result<Vec<u8>, TensorError> {
        self.check_count(field, values.len())?;
        Ok(values.iter().flat_map(|&v| to_bytes(v)).collect())
    }

    /// Encodes values from a wider field type, refusing any that do not fit.
    fn narrow<T: Copy + Into<i64>, const N: usize>(
        &self,
        field: &'static str,
        values: &[T],
        to_bytes: impl Fn(T) -> Option<[u8; N]>,
    ) -> Result<Vec<u8>, TensorError> {
        self.check_count(field, values.len())?;
        let mut data = Vec::with_capacity(values.len() * N);
        for (index, &v) in values.iter().enumerate() {
            let bytes = to_bytes(v).ok_or_else(|| TensorError::ValueOutOfRange {
                tensor: self.tensor.to_owned(),
                datatype: self.datatype,
                field,
                index,
                value: v.into(),
            })?;
            data.extend(bytes);
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_widens_exactly() {
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert!(f16_to_f32(0x8000).is_sign_negative());
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn datatype_names_round_trip() {
        for d in DataType::ALL {
            assert_eq!(DataType::from_name(d.name()), Some(d));
            assert_eq!(d.to_string(), d.name());
        }
        assert_eq!(DataType::from_name("fp32"), None);
        assert_eq!(DataType::from_name("BYTES"), None);
    }

    #[test]
    fn scalar_has_one_element() {
        let t = Tensor::new(
            "s",
            DataType::Int64,
            Vec::new(),
            7i64.to_le_bytes().to_vec(),
        )
        .expect("scalar");
        assert_eq!(t.element_count(), Ok(1));
    }

    #[test]
    fn overflowing_shape_is_refused() {
        let err = Tensor::new("big", DataType::Fp64, [i64::MAX, i64::MAX], Vec::new())
            .expect_err("must be refused");
        assert!(matches!(err, TensorError::TooLarge { .. }), "{err}");
        let err =
            Tensor::new("big", DataType::Fp64, [1 << 62], Vec::new()).expect_err("must be refused");
        assert!(matches!(err, TensorError::TooLarge { .. }), "{err}");
    }
}
