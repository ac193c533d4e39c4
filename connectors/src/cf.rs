//! CF decoding shared by every source: missing values to NaN, packed integers unpacked with
//! `scale_factor`/`add_offset`, `_Unsigned` bytes of NetCDF-3. The rules follow xarray's
//! `mask_and_scale`, so values read here equal what `xarray.open_dataset` shows.

use serde_json::{Map, Value};

/// Values as stored, before CF decoding.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValues {
    /// int8 (NetCDF `byte`).
    I8(Vec<i8>),
    /// uint8.
    U8(Vec<u8>),
    /// int16 (NetCDF `short`).
    I16(Vec<i16>),
    /// uint16.
    U16(Vec<u16>),
    /// int32.
    I32(Vec<i32>),
    /// uint32.
    U32(Vec<u32>),
    /// int64.
    I64(Vec<i64>),
    /// uint64.
    U64(Vec<u64>),
    /// float32.
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
}

impl RawValues {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Self::I8(v) => v.len(),
            Self::U8(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::U64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per value.
    pub fn value_size(&self) -> usize {
        match self {
            Self::I8(_) | Self::U8(_) => 1,
            Self::I16(_) | Self::U16(_) => 2,
            Self::I32(_) | Self::U32(_) | Self::F32(_) => 4,
            Self::I64(_) | Self::U64(_) | Self::F64(_) => 8,
        }
    }

    /// Every value as f64, reinterpreting signed integers as unsigned when `unsigned` is set.
    fn to_f64(&self, unsigned: bool) -> Vec<f64> {
        match self {
            Self::I8(v) if unsigned => v.iter().map(|x| f64::from(*x as u8)).collect(),
            Self::I16(v) if unsigned => v.iter().map(|x| f64::from(*x as u16)).collect(),
            Self::I32(v) if unsigned => v.iter().map(|x| f64::from(*x as u32)).collect(),
            Self::I64(v) if unsigned => v.iter().map(|x| *x as u64 as f64).collect(),
            Self::I8(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Self::U8(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Self::I16(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Self::U16(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Self::I32(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Self::U32(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Self::I64(v) => v.iter().map(|x| *x as f64).collect(),
            Self::U64(v) => v.iter().map(|x| *x as f64).collect(),
            Self::F32(v) => v.iter().map(|x| f64::from(*x)).collect(),
            Self::F64(v) => v.clone(),
        }
    }
}

/// How to turn stored values into physical ones: which stored values mean "missing", and the
/// packing. Built from a variable's attributes with [`CfDecoding::from_attributes`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CfDecoding {
    /// Stored values that mean missing (`_FillValue`, `missing_value`), compared before unpacking.
    pub missing: Vec<f64>,
    /// `scale_factor`.
    pub scale: Option<f64>,
    /// `add_offset`.
    pub offset: Option<f64>,
    /// `_Unsigned = "true"`: signed storage of unsigned values (NetCDF-3 bytes).
    pub unsigned: bool,
}

impl CfDecoding {
    /// Reads `_FillValue`, `missing_value`, `scale_factor`, `add_offset` and `_Unsigned`.
    /// `_FillValue` may be a number, a list, `"NaN"`/`"Infinity"`, or xarray's base64 encoding of
    /// the stored bytes (Zarr v3), decoded with `value_size` bytes per value. A malformed attribute
    /// is an error naming it and its value.
    ///
    /// ```
    /// use isotach_connectors::cf::{CfDecoding, RawValues};
    /// let attrs = serde_json::json!({"_FillValue": -32767, "scale_factor": 0.5, "add_offset": 10.0});
    /// let cf = CfDecoding::from_attributes(attrs.as_object().unwrap(), 2).unwrap();
    /// let values = cf.decode_f64(&RawValues::I16(vec![0, 4, -32767]));
    /// assert_eq!(values[..2], [10.0, 12.0]);
    /// assert!(values[2].is_nan());
    /// ```
    pub fn from_attributes(attrs: &Map<String, Value>, value_size: usize) -> Result<Self, String> {
        let mut missing = Vec::new();
        for key in ["_FillValue", "missing_value"] {
            if let Some(value) = attrs.get(key) {
                missing.extend(
                    numbers(value, value_size).map_err(|why| format!("{key} = {value}: {why}"))?,
                );
            }
        }
        let scalar = |key: &str| -> Result<Option<f64>, String> {
            match attrs.get(key) {
                None => Ok(None),
                Some(value) => match numbers(value, 8)
                    .map_err(|why| format!("{key} = {value}: {why}"))?
                    .as_slice()
                {
                    [one] => Ok(Some(*one)),
                    _ => Err(format!("{key} = {value}: expected one number")),
                },
            }
        };
        let unsigned = match attrs.get("_Unsigned") {
            None => false,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "_Unsigned = {other}: expected \"true\" or \"false\""
                ));
            }
        };
        if unsigned {
            // The fill of an `_Unsigned` variable is stored signed like the data (a byte
            // _FillValue of -1 means 255); xarray compares both after making them unsigned.
            let modulus = 2f64.powi(8 * value_size as i32);
            for value in &mut missing {
                if *value < 0.0 {
                    *value += modulus;
                }
            }
        }
        Ok(Self {
            missing,
            scale: scalar("scale_factor")?,
            offset: scalar("add_offset")?,
            unsigned,
        })
    }

    /// Adds a stored value that means missing (a Zarr v2 `fill_value`, which xarray treats as
    /// `_FillValue`).
    pub fn with_missing(mut self, value: f64) -> Self {
        if !self.missing.iter().any(|m| same(*m, value)) {
            self.missing.push(value);
        }
        self
    }

    /// True when decoding changes nothing for stored values of this kind.
    pub fn is_identity_for(&self, raw_is_float: bool) -> bool {
        self.scale.is_none()
            && self.offset.is_none()
            && !self.unsigned
            && self.missing.iter().all(|m| raw_is_float && m.is_nan())
    }

    /// Decodes to f64: missing → NaN, then `value * scale + offset`.
    pub fn decode_f64(&self, raw: &RawValues) -> Vec<f64> {
        let mut values = raw.to_f64(self.unsigned);
        self.apply(&mut values);
        values
    }

    /// Decodes to f32 (tiles), without a detour through f64 when nothing needs decoding.
    pub fn decode_f32(&self, raw: RawValues) -> Vec<f32> {
        match raw {
            RawValues::F32(values) if self.is_identity_for(true) => values,
            raw => {
                let mut values = raw.to_f64(self.unsigned);
                self.apply(&mut values);
                values.into_iter().map(|v| v as f32).collect()
            }
        }
    }

    fn apply(&self, values: &mut [f64]) {
        let scale = self.scale.unwrap_or(1.0);
        let offset = self.offset.unwrap_or(0.0);
        let packed = self.scale.is_some() || self.offset.is_some();
        for v in values.iter_mut() {
            if self.missing.iter().any(|m| same(*m, *v)) {
                *v = f64::NAN;
            } else if packed {
                *v = *v * scale + offset;
            }
        }
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn numbers(value: &Value, value_size: usize) -> Result<Vec<f64>, String> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .map(|v| vec![v])
            .ok_or_else(|| "not representable as a number".to_owned()),
        Value::Array(items) => items
            .iter()
            .map(|item| numbers(item, value_size))
            .collect::<Result<Vec<_>, _>>()
            .map(|lists| lists.into_iter().flatten().collect()),
        Value::String(text) => match text.as_str() {
            "NaN" | "nan" => Ok(vec![f64::NAN]),
            "Infinity" | "inf" => Ok(vec![f64::INFINITY]),
            "-Infinity" | "-inf" => Ok(vec![f64::NEG_INFINITY]),
            other => match other.parse::<f64>() {
                Ok(v) => Ok(vec![v]),
                Err(_) => base64_float(other, value_size)
                    .ok_or_else(|| "neither a number nor base64 of a stored value".to_owned()),
            },
        },
        Value::Null => Ok(Vec::new()),
        Value::Bool(_) | Value::Object(_) => Err("expected a number".to_owned()),
    }
}

/// xarray writes float `_FillValue`s of Zarr v3 stores as base64 of the little-endian bytes.
fn base64_float(text: &str, value_size: usize) -> Option<Vec<f64>> {
    let bytes = base64_decode(text)?;
    match (bytes.len(), value_size) {
        (4, _) => Some(vec![f64::from(f32::from_le_bytes(bytes.try_into().ok()?))]),
        (8, _) => Some(vec![f64::from_le_bytes(bytes.try_into().ok()?)]),
        _ => None,
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cf(attrs: Value, size: usize) -> CfDecoding {
        CfDecoding::from_attributes(attrs.as_object().expect("object"), size).expect("valid")
    }

    #[test]
    fn fill_and_missing_values_become_nan_before_unpacking() {
        let c = cf(
            json!({"_FillValue": 0, "missing_value": [-1, -2], "scale_factor": 2.0}),
            4,
        );
        let v = c.decode_f64(&RawValues::I32(vec![0, -1, -2, 3]));
        assert!(v[0].is_nan() && v[1].is_nan() && v[2].is_nan());
        assert_eq!(v[3], 6.0);
    }

    #[test]
    fn unsigned_bytes_are_reinterpreted() {
        for fill in [json!(255), json!(-1)] {
            let c = cf(json!({"_Unsigned": "true", "_FillValue": fill}), 1);
            let v = c.decode_f64(&RawValues::I8(vec![-1, -56, 7]));
            assert!(v[0].is_nan(), "fill {fill}");
            assert_eq!(&v[1..], &[200.0, 7.0]);
        }
    }

    #[test]
    fn xarray_base64_fill_values_decode() {
        // base64 of f32 -9999.0 little-endian and of f64 NaN.
        let bytes = (-9999.0f32).to_le_bytes();
        let encoded = encode(&bytes);
        let c = cf(json!({"_FillValue": encoded}), 4);
        assert_eq!(c.missing, vec![-9999.0]);
        let c = cf(json!({"_FillValue": "AAAAAAAA+H8="}), 8);
        assert!(c.missing[0].is_nan());
    }

    #[test]
    fn identity_keeps_float_values() {
        let c = cf(json!({"_FillValue": "NaN"}), 4);
        assert_eq!(c.decode_f32(RawValues::F32(vec![1.0, 2.5])), vec![1.0, 2.5]);
    }

    #[test]
    fn malformed_attributes_are_named() {
        let err = CfDecoding::from_attributes(
            json!({"scale_factor": "lots"}).as_object().expect("object"),
            4,
        )
        .unwrap_err();
        assert!(
            err.contains("scale_factor") && err.contains("lots"),
            "{err}"
        );
        let err = CfDecoding::from_attributes(
            json!({"add_offset": [1, 2]}).as_object().expect("object"),
            4,
        )
        .unwrap_err();
        assert!(err.contains("add_offset"), "{err}");
    }

    fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        while !out.len().is_multiple_of(4) {
            out.push('=');
        }
        out
    }
}
