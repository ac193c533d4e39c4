//! Frames on the wire: [`isotach_core::Frame`] and [`isotach_core::Field`] to and from
//! [`v1::Frame`] and [`v1::GridField`].

use std::sync::Arc;

use isotach_core::{Field, Frame, LatLonGrid};

use crate::spec::layer_from_wire;
use crate::{ConversionError, from_timestamp, to_timestamp, v1};

impl From<&Field> for v1::GridField {
    fn from(field: &Field) -> Self {
        let mut values = Vec::with_capacity(field.values.len() * 4);
        for v in &field.values {
            values.extend_from_slice(&v.to_le_bytes());
        }
        Self {
            variable: field.variable.clone(),
            units: field.units.clone(),
            long_name: field.long_name.clone(),
            step: field.step,
            time: Some(to_timestamp(field.time)),
            lat: field.grid.lat.clone(),
            lon: field.grid.lon.clone(),
            values_f32_le: values,
        }
    }
}

/// A field from the wire; `path` names it in errors.
pub fn field_from_wire(path: &str, field: v1::GridField) -> Result<Field, ConversionError> {
    let (nlat, nlon) = (field.lat.len(), field.lon.len());
    let expected = nlat * nlon * 4;
    if field.values_f32_le.len() != expected {
        return Err(ConversionError::FieldShape {
            field: format!("{path}.values_f32_le"),
            bytes: field.values_f32_le.len(),
            nlat,
            nlon,
            expected,
        });
    }
    let time = field
        .time
        .as_ref()
        .ok_or_else(|| ConversionError::Missing {
            field: format!("{path}.time"),
        })?;
    Ok(Field {
        variable: field.variable,
        units: field.units,
        long_name: field.long_name,
        step: field.step,
        time: from_timestamp(&format!("{path}.time"), time)?,
        grid: Arc::new(LatLonGrid {
            lat: field.lat,
            lon: field.lon,
        }),
        values: field
            .values_f32_le
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    })
}

impl From<&Frame> for v1::Frame {
    fn from(frame: &Frame) -> Self {
        Self {
            job_id: frame.job_id.clone(),
            channel: frame.channel.clone(),
            number: frame.number,
            width_px: frame.width_px,
            height_px: frame.height_px,
            layers: frame.layers.iter().map(v1::Layer::from).collect(),
            fields: frame.fields.iter().map(v1::GridField::from).collect(),
            completed_at: Some(to_timestamp(frame.completed_at)),
        }
    }
}

impl TryFrom<v1::Frame> for Frame {
    type Error = ConversionError;

    fn try_from(frame: v1::Frame) -> Result<Self, ConversionError> {
        if frame.layers.len() != frame.fields.len() || frame.layers.is_empty() {
            return Err(ConversionError::FrameLayers {
                field: "frame".into(),
                layers: frame.layers.len(),
                fields: frame.fields.len(),
            });
        }
        let layers = frame
            .layers
            .into_iter()
            .enumerate()
            .map(|(j, layer)| layer_from_wire(&format!("frame.layers[{j}]"), layer))
            .collect::<Result<_, _>>()?;
        let fields = frame
            .fields
            .into_iter()
            .enumerate()
            .map(|(j, field)| field_from_wire(&format!("frame.fields[{j}]"), field))
            .collect::<Result<_, _>>()?;
        let completed_at = frame
            .completed_at
            .as_ref()
            .ok_or_else(|| ConversionError::Missing {
                field: "frame.completed_at".into(),
            })?;
        Ok(Frame {
            job_id: frame.job_id,
            channel: frame.channel,
            number: frame.number,
            width_px: frame.width_px,
            height_px: frame.height_px,
            layers,
            fields,
            completed_at: from_timestamp("frame.completed_at", completed_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use isotach_core::{Colormap, LayerSpec, LayerStyle};

    use super::*;

    fn field(variable: &str, values: Vec<f32>) -> Field {
        Field {
            variable: variable.into(),
            units: "kg m-1 s-1".into(),
            long_name: "IVT".into(),
            step: 7,
            time: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            grid: Arc::new(LatLonGrid {
                lat: vec![10.0, 0.0],
                lon: vec![0.0, 10.0, 20.0],
            }),
            values,
        }
    }

    #[test]
    fn frame_round_trip_keeps_every_bit() {
        let frame = Frame {
            job_id: "j1".into(),
            channel: "lobby".into(),
            number: 42,
            width_px: 3840,
            height_px: 2160,
            layers: vec![
                LayerSpec {
                    variable: "ivt".into(),
                    style: LayerStyle::Field,
                    colormap: Colormap::Magma,
                    range: Some([0.0, 800.0]),
                },
                LayerSpec {
                    variable: "ar_id".into(),
                    style: LayerStyle::Objects,
                    colormap: Colormap::Viridis,
                    range: Some([0.0, 3.0]),
                },
            ],
            fields: vec![
                field(
                    "ivt",
                    vec![1.5, f32::NAN, -0.0, 3e38, f32::MIN_POSITIVE, 7.0],
                ),
                field("ar_id", vec![0.0, 1.0, 1.0, 0.0, 2.0, 3.0]),
            ],
            completed_at: chrono::DateTime::from_timestamp(1_700_000_001, 5).unwrap_or_default(),
        };
        let wire = v1::Frame::from(&frame);
        let back = Frame::try_from(wire).unwrap_or_else(|e| panic!("{e}"));
        let bits = |f: &Frame| -> Vec<Vec<u32>> {
            f.fields
                .iter()
                .map(|x| x.values.iter().map(|v| v.to_bits()).collect())
                .collect()
        };
        assert_eq!(bits(&back), bits(&frame));
        assert_eq!(back.layers, frame.layers);
        assert_eq!(
            (back.number, back.width_px, back.completed_at),
            (42, 3840, frame.completed_at)
        );
        assert_eq!(back.fields[0].grid, frame.fields[0].grid);
    }

    #[test]
    fn bad_frames_are_named() {
        let mut wire = v1::GridField::from(&field("ivt", vec![0.0; 6]));
        wire.values_f32_le.pop();
        let err = field_from_wire("frame.fields[0]", wire)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "frame.fields[0].values_f32_le: 23 value bytes do not hold 2 × 3 float32 values (24 bytes)"
            )
        );
        let wire = v1::Frame {
            layers: vec![v1::Layer::default()],
            ..Default::default()
        };
        let err = Frame::try_from(wire).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("frame: 1 layers but 0 fields; a frame carries one field per layer")
        );
    }
}
