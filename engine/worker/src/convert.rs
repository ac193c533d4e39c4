//! Datatype conversions of request tensors to what a model takes, and merging and splitting
//! batches along dim 0.

use isotach_proto::{DataType, Tensor};

/// Why a tensor cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// No conversion between the two datatypes.
    Unsupported,
    /// An integer value the target datatype cannot hold.
    OutOfRange {
        /// Index of the value.
        index: usize,
        /// The value, as text.
        value: String,
    },
}

/// The datatypes a tensor may arrive as for an input of `target`: the same, any float for a
/// float, any integer (checked value by value) or float-exact small integer for an integer.
pub(crate) fn accepted(target: DataType) -> &'static str {
    match target {
        DataType::Fp16 | DataType::Fp32 | DataType::Fp64 => {
            "FP16, FP32, FP64 or any integer type (converted to the input's float type)"
        }
        DataType::Bool => "BOOL",
        _ => "any integer type whose values fit (converted to the input's integer type)",
    }
}

fn is_float(d: DataType) -> bool {
    matches!(d, DataType::Fp16 | DataType::Fp32 | DataType::Fp64)
}

/// Reads every element as f64 (exact for all but 64-bit integers beyond 2^53).
fn as_f64(t: &Tensor) -> Vec<f64> {
    let d = &t.data;
    macro_rules! read {
        ($ty:ty) => {
            d.chunks_exact(std::mem::size_of::<$ty>())
                .map(|b| <$ty>::from_le_bytes(b.try_into().unwrap_or_default()) as f64)
                .collect()
        };
    }
    match t.datatype {
        DataType::Bool | DataType::Uint8 => d.iter().map(|&b| f64::from(b)).collect(),
        DataType::Int8 => d.iter().map(|&b| f64::from(b as i8)).collect(),
        DataType::Uint16 => read!(u16),
        DataType::Int16 => read!(i16),
        DataType::Uint32 => read!(u32),
        DataType::Int32 => read!(i32),
        DataType::Uint64 => read!(u64),
        DataType::Int64 => read!(i64),
        DataType::Fp16 => d
            .chunks_exact(2)
            .map(|b| f64::from(half::f16::from_bits(u16::from_le_bytes([b[0], b[1]]))))
            .collect(),
        DataType::Fp32 => read!(f32),
        DataType::Fp64 => read!(f64),
    }
}

/// Reads every integer element as i128 (exact).
fn as_i128(t: &Tensor) -> Vec<i128> {
    let d = &t.data;
    macro_rules! read {
        ($ty:ty) => {
            d.chunks_exact(std::mem::size_of::<$ty>())
                .map(|b| i128::from(<$ty>::from_le_bytes(b.try_into().unwrap_or_default())))
                .collect()
        };
    }
    match t.datatype {
        DataType::Uint8 => d.iter().map(|&b| i128::from(b)).collect(),
        DataType::Int8 => d.iter().map(|&b| i128::from(b as i8)).collect(),
        DataType::Uint16 => read!(u16),
        DataType::Int16 => read!(i16),
        DataType::Uint32 => read!(u32),
        DataType::Int32 => read!(i32),
        DataType::Uint64 => read!(u64),
        DataType::Int64 => read!(i64),
        _ => Vec::new(),
    }
}

/// `tensor` as `target`, converting when the datatypes differ (see [`accepted`]).
pub(crate) fn convert(tensor: Tensor, target: DataType) -> Result<Tensor, ConvertError> {
    let source = tensor.datatype;
    if source == target {
        return Ok(tensor);
    }
    if source == DataType::Bool || target == DataType::Bool {
        return Err(ConvertError::Unsupported);
    }
    let data: Vec<u8> = if is_float(target) {
        let values = as_f64(&tensor);
        match target {
            DataType::Fp16 => values
                .iter()
                .flat_map(|&v| half::f16::from_f64(v).to_bits().to_le_bytes())
                .collect(),
            DataType::Fp32 => values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect(),
            _ => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
        }
    } else if is_float(source) {
        return Err(ConvertError::Unsupported);
    } else {
        let values = as_i128(&tensor);
        let mut data = Vec::with_capacity(values.len() * target.size_bytes());
        for (index, &v) in values.iter().enumerate() {
            macro_rules! put {
                ($ty:ty) => {
                    data.extend(
                        <$ty>::try_from(v)
                            .map_err(|_| ConvertError::OutOfRange {
                                index,
                                value: v.to_string(),
                            })?
                            .to_le_bytes(),
                    )
                };
            }
            match target {
                DataType::Uint8 => put!(u8),
                DataType::Int8 => put!(i8),
                DataType::Uint16 => put!(u16),
                DataType::Int16 => put!(i16),
                DataType::Uint32 => put!(u32),
                DataType::Int32 => put!(i32),
                DataType::Uint64 => put!(u64),
                _ => put!(i64),
            }
        }
        data
    };
    Ok(Tensor {
        name: tensor.name,
        datatype: target,
        shape: tensor.shape,
        data,
    })
}

/// Merges the tensors of several requests (each in the model's input order) along dim 0.
pub(crate) fn merge(requests: &[Vec<Tensor>]) -> Vec<Tensor> {
    let Some(first) = requests.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let rows: i64 = requests.iter().map(|r| r[i].shape[0]).sum();
            let bytes: usize = requests.iter().map(|r| r[i].data.len()).sum();
            let mut data = Vec::with_capacity(bytes);
            for r in requests {
                data.extend_from_slice(&r[i].data);
            }
            let mut shape = first[i].shape.clone();
            shape[0] = rows;
            Tensor {
                name: first[i].name.clone(),
                datatype: first[i].datatype,
                shape,
                data,
            }
        })
        .collect()
}

/// Splits a batch's outputs back into one set per request of `rows` rows each. Fails (naming the
/// output) when an output's dim 0 is not the batch's total row count.
pub(crate) fn split(outputs: Vec<Tensor>, rows: &[i64]) -> Result<Vec<Vec<Tensor>>, String> {
    let total: i64 = rows.iter().sum();
    let mut per_request: Vec<Vec<Tensor>> = rows.iter().map(|_| Vec::new()).collect();
    for output in outputs {
        if output.shape.first() != Some(&total) {
            return Err(format!(
                "output {:?} has shape {:?}; a batch of {total} rows needs dim 0 = {total}",
                output.name, output.shape
            ));
        }
        let row_bytes = if total == 0 {
            0
        } else {
            output.data.len() / usize::try_from(total).unwrap_or(1)
        };
        let mut offset = 0;
        for (slot, &n) in per_request.iter_mut().zip(rows) {
            let len = row_bytes * usize::try_from(n).unwrap_or(0);
            let mut shape = output.shape.clone();
            shape[0] = n;
            slot.push(Tensor {
                name: output.name.clone(),
                datatype: output.datatype,
                shape,
                data: output.data[offset..offset + len].to_vec(),
            });
            offset += len;
        }
    }
    Ok(per_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_then_split_is_identity() {
        let a = vec![Tensor::from_f32("x", [1, 2], &[1.0, 2.0]).unwrap()];
        let b = vec![Tensor::from_f32("x", [2, 2], &[3.0, 4.0, 5.0, 6.0]).unwrap()];
        let merged = merge(&[a.clone(), b.clone()]);
        assert_eq!(merged[0].shape, vec![3, 2]);
        assert_eq!(
            merged[0].to_f32().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        let parts = split(merged, &[1, 2]).unwrap();
        assert_eq!(parts, vec![a, b]);
    }

    #[test]
    fn split_refuses_a_wrong_batch_dimension() {
        let out = vec![Tensor::from_f32("y", [2], &[1.0, 2.0]).unwrap()];
        let err = split(out, &[1, 2]).unwrap_err();
        assert!(err.contains("dim 0 = 3"), "{err}");
    }

    #[test]
    fn conversions() {
        let f16 = Tensor::new(
            "h",
            DataType::Fp16,
            [2],
            [0x3c00u16.to_le_bytes(), 0xc000u16.to_le_bytes()].concat(),
        )
        .unwrap();
        let f32t = convert(f16, DataType::Fp32).unwrap();
        assert_eq!(f32t.to_f32().unwrap(), vec![1.0, -2.0]);
        let back = convert(f32t, DataType::Fp16).unwrap();
        assert_eq!(
            back.data,
            [0x3c00u16.to_le_bytes(), 0xc000u16.to_le_bytes()].concat()
        );

        let i32t = Tensor::new(
            "i",
            DataType::Int32,
            [2],
            [5i32.to_le_bytes(), (-1i32).to_le_bytes()].concat(),
        )
        .unwrap();
        let i64t = convert(i32t.clone(), DataType::Int64).unwrap();
        assert_eq!(
            i64t.data,
            [5i64.to_le_bytes(), (-1i64).to_le_bytes()].concat()
        );
        assert_eq!(
            convert(i32t.clone(), DataType::Uint8),
            Err(ConvertError::OutOfRange {
                index: 1,
                value: "-1".into()
            })
        );
        assert_eq!(
            convert(i32t.clone(), DataType::Fp32)
                .unwrap()
                .to_f32()
                .unwrap(),
            vec![5.0, -1.0]
        );
        let f = Tensor::from_f32("f", [1], &[1.5]).unwrap();
        assert_eq!(convert(f, DataType::Int64), Err(ConvertError::Unsupported));
        assert_eq!(
            convert(i32t, DataType::Bool),
            Err(ConvertError::Unsupported)
        );
    }
}
