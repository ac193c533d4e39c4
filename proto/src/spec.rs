//! `isotach.v1.PipelineSpec` to and from [`isotach_core::PipelineSpec`].
//!
//! Core to wire cannot fail. Wire to core checks only what the wire can get wrong: a required
//! message left unset, a oneof with no case set, a colormap name the core does not know, a pixel
//! size that does not fit the core's `u32`, an invalid timestamp. Everything else (names,
//! variables, the time window against the data, canvas limits, value ranges) is the core
//! validator's job, [`isotach_core::PipelineSpec::validate`], which runs whichever way a spec
//! arrived. Field paths in errors use the protobuf field names (`steps[0].op`), since that is
//! what the sender wrote.

use isotach_core::{
    Colormap, FramesSink, LayerSpec, PipelineSpec, RegionBox, SinkSpec, SourceSpec, StepSpec,
    TimeRange,
};

use crate::v1;
use crate::{from_timestamp, to_timestamp};

/// Canvas width when a frames sink leaves `width_px` unset; the TOML spec's default.
const DEFAULT_WIDTH_PX: u32 = 1280;
/// Canvas height when a frames sink leaves `height_px` unset; the TOML spec's default.
const DEFAULT_HEIGHT_PX: u32 = 720;
/// Colormap when a layer leaves `colormap` empty; the TOML spec's default.
const DEFAULT_COLORMAP: Colormap = Colormap::Viridis;

/// A wire message that cannot become a core value. Each variant names the field (as a path
/// through the protobuf message, such as `sinks[0].frames.layers[1].colormap`) and, where
/// there is one, the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConversionError {
    /// A required message field is unset.
    #[error("{field} is missing; it is required")]
    Missing {
        /// Path of the unset field.
        field: String,
    },
    /// A oneof that must hold one case holds none.
    #[error("{field} is not set; set one of: {expected}")]
    OneofNotSet {
        /// Path of the oneof.
        field: String,
        /// The cases this version knows, comma-separated.
        expected: &'static str,
    },
    /// A colormap name the core does not know.
    #[error("{field}: unknown colormap {value:?} (known: {known})", known = known_colormaps())]
    UnknownColormap {
        /// Path of the field.
        field: String,
        /// The name given.
        value: String,
    },
    /// An integer outside the range of the core type.
    #[error("{field}: {value} does not fit in {min}..={max}")]
    OutOfRange {
        /// Path of the field.
        field: String,
        /// The value given.
        value: i64,
        /// Smallest value accepted.
        min: i64,
        /// Largest value accepted.
        max: i64,
    },
    /// A `google.protobuf.Timestamp` outside the range protobuf allows.
    #[error("{field}: timestamp {{ seconds: {seconds}, nanos: {nanos} }} is invalid: {reason}")]
    BadTimestamp {
        /// Path of the field.
        field: String,
        /// The `seconds` given.
        seconds: i64,
        /// The `nanos` given.
        nanos: i32,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn known_colormaps() -> String {
    Colormap::ALL.map(Colormap::name).join(", ")
}

// ---- core to wire ----

impl From<&PipelineSpec> for v1::PipelineSpec {
    fn from(spec: &PipelineSpec) -> Self {
        Self {
            name: spec.name.clone(),
            source: Some(v1::SourceSpec::from(&spec.source)),
            steps: spec.steps.iter().map(v1::Step::from).collect(),
            sinks: spec.sinks.iter().map(v1::Sink::from).collect(),
        }
    }
}

impl From<PipelineSpec> for v1::PipelineSpec {
    fn from(spec: PipelineSpec) -> Self {
        Self::from(&spec)
    }
}

impl From<&SourceSpec> for v1::SourceSpec {
    fn from(source: &SourceSpec) -> Self {
        Self {
            uri: source.uri.clone(),
            variables: source.variables.clone(),
            time: source.time.map(|range| v1::TimeRange {
                start: Some(to_timestamp(range.start)),
                end: Some(to_timestamp(range.end)),
            }),
            region: source.region.map(|r| v1::RegionBox {
                south: r.lat[0],
                north: r.lat[1],
                west: r.lon[0],
                east: r.lon[1],
            }),
        }
    }
}

impl From<&StepSpec> for v1::Step {
    fn from(step: &StepSpec) -> Self {
        let op = match step {
            StepSpec::Magnitude { inputs, output } => {
                v1::step::Op::Magnitude(v1::step::Magnitude {
                    inputs: inputs.clone(),
                    output: output.clone(),
                })
            }
        };
        Self { op: Some(op) }
    }
}

impl From<&SinkSpec> for v1::Sink {
    fn from(sink: &SinkSpec) -> Self {
        let kind = match sink {
            SinkSpec::Frames(frames) => v1::sink::Kind::Frames(v1::sink::Frames {
                path: frames.path.clone(),
                width_px: Some(i64::from(frames.width_px)),
                height_px: Some(i64::from(frames.height_px)),
                layers: frames.layers.iter().map(v1::Layer::from).collect(),
            }),
        };
        Self { kind: Some(kind) }
    }
}

impl From<&LayerSpec> for v1::Layer {
    fn from(layer: &LayerSpec) -> Self {
        Self {
            variable: layer.variable.clone(),
            colormap: layer.colormap.name().to_owned(),
            range: layer.range.map(|[lo, hi]| v1::ValueRange { lo, hi }),
        }
    }
}

// ---- wire to core ----

impl TryFrom<v1::PipelineSpec> for PipelineSpec {
    type Error = ConversionError;

    fn try_from(msg: v1::PipelineSpec) -> Result<Self, Self::Error> {
        let source = msg.source.ok_or_else(|| ConversionError::Missing {
            field: "source".to_owned(),
        })?;
        let steps = msg
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, step)| step_from_wire(i, step))
            .collect::<Result<_, _>>()?;
        let sinks = msg
            .sinks
            .into_iter()
            .enumerate()
            .map(|(i, sink)| sink_from_wire(i, sink))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: msg.name,
            source: source_from_wire(source)?,
            steps,
            sinks,
        })
    }
}

fn source_from_wire(source: v1::SourceSpec) -> Result<SourceSpec, ConversionError> {
    let time = match source.time {
        None => None,
        Some(range) => {
            let instant = |name: &str, ts: Option<prost_types::Timestamp>| {
                let field = format!("source.time.{name}");
                match ts {
                    None => Err(ConversionError::Missing { field }),
                    Some(ts) => from_timestamp(&field, &ts),
                }
            };
            Some(TimeRange {
                start: instant("start", range.start)?,
                end: instant("end", range.end)?,
            })
        }
    };
    Ok(SourceSpec {
        uri: source.uri,
        variables: source.variables,
        time,
        region: source.region.map(|r| RegionBox {
            lat: [r.south, r.north],
            lon: [r.west, r.east],
        }),
    })
}

fn step_from_wire(i: usize, step: v1::Step) -> Result<StepSpec, ConversionError> {
    match step.op {
        Some(v1::step::Op::Magnitude(m)) => Ok(StepSpec::Magnitude {
            inputs: m.inputs,
            output: m.output,
        }),
        None => Err(ConversionError::OneofNotSet {
            field: format!("steps[{i}].op"),
            expected: "magnitude",
        }),
    }
}

fn sink_from_wire(i: usize, sink: v1::Sink) -> Result<SinkSpec, ConversionError> {
    match sink.kind {
        Some(v1::sink::Kind::Frames(frames)) => {
            let field = |name: &str| format!("sinks[{i}].frames.{name}");
            let layers = frames
                .layers
                .into_iter()
                .enumerate()
                .map(|(j, layer)| layer_from_wire(&field(&format!("layers[{j}]")), layer))
                .collect::<Result<_, _>>()?;
            Ok(SinkSpec::Frames(FramesSink {
                path: frames.path,
                width_px: pixels(frames.width_px, DEFAULT_WIDTH_PX, || field("width_px"))?,
                height_px: pixels(frames.height_px, DEFAULT_HEIGHT_PX, || field("height_px"))?,
                layers,
            }))
        }
        None => Err(ConversionError::OneofNotSet {
            field: format!("sinks[{i}].kind"),
            expected: "frames",
        }),
    }
}

/// A pixel size: unset means the default; a value that does not fit `u32` is refused (the core
/// validator then checks the real limits).
fn pixels(
    value: Option<i64>,
    default: u32,
    field: impl FnOnce() -> String,
) -> Result<u32, ConversionError> {
    match value {
        None => Ok(default),
        Some(v) => u32::try_from(v).map_err(|_| ConversionError::OutOfRange {
            field: field(),
            value: v,
            min: 0,
            max: i64::from(u32::MAX),
        }),
    }
}

fn layer_from_wire(path: &str, layer: v1::Layer) -> Result<LayerSpec, ConversionError> {
    let colormap = if layer.colormap.is_empty() {
        DEFAULT_COLORMAP
    } else {
        Colormap::from_name(&layer.colormap).ok_or_else(|| ConversionError::UnknownColormap {
            field: format!("{path}.colormap"),
            value: layer.colormap.clone(),
        })?
    };
    Ok(LayerSpec {
        variable: layer.variable,
        colormap,
        range: layer.range.map(|r| [r.lo, r.hi]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults used for unset wire fields are the TOML spec's defaults.
    #[test]
    fn wire_defaults_match_toml_defaults() {
        let spec = PipelineSpec::from_toml_str(
            r#"
            name = "d"
            [source]
            uri = "x.zarr"
            variables = ["a"]
            [[sink]]
            kind = "frames"
            path = "out"
            layers = [{ variable = "a" }]
            "#,
        )
        .expect("valid TOML spec");
        let SinkSpec::Frames(frames) = &spec.sinks[0];
        assert_eq!(frames.width_px, DEFAULT_WIDTH_PX);
        assert_eq!(frames.height_px, DEFAULT_HEIGHT_PX);
        assert_eq!(frames.layers[0].colormap, DEFAULT_COLORMAP);
    }

    #[test]
    fn known_colormaps_lists_every_colormap() {
        assert_eq!(known_colormaps(), "viridis, magma, cividis, coolwarm");
    }
}
