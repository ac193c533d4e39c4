//! `isotach.v1.PipelineSpec` to and from [`isotach_core::PipelineSpec`].
//!
//! Core to wire cannot fail. Wire to core checks only what the wire can get wrong: a required
//! message left unset, a oneof with no case set, a colormap name or enum value the core does not
//! know, an integer (pixel size, block factor, window, duration) that does not fit the core's
//! `u32`, an invalid timestamp. Everything else (names, variables, expressions, units, the time
//! window against the data, factors and windows of 0, thresholds, canvas limits, value ranges,
//! catalog paths) is the core validator's job, [`isotach_core::PipelineSpec::validate`], which
//! runs whichever way a spec arrived. Field paths in errors use the protobuf field names
//! (`steps[0].op`, `steps[2].coarsen.factor_lat`), since that is what the sender wrote.
//!
//! Unset optional wire fields take the TOML spec's defaults; core to wire always sets them, so a
//! message built from a core spec says every value explicitly.

use isotach_core::{
    ArCriterionSpec, CatalogSink, ClimatologyPeriod, ClimatologyStore, Colormap, FramesSink,
    InferDefaults, LayerSpec, LayerStyle, PipelineSpec, RegionBox, SinkSpec, SourceSpec, StepSpec,
    TimeRange, ZarrSink,
};

use crate::v1;
use crate::{from_timestamp, to_timestamp};

/// Canvas width when a frames sink leaves `width_px` unset; the TOML spec's default.
const DEFAULT_WIDTH_PX: u32 = 1280;
/// Canvas height when a frames sink leaves `height_px` unset; the TOML spec's default.
const DEFAULT_HEIGHT_PX: u32 = 720;
/// Colormap when a layer leaves `colormap` empty; the TOML spec's default.
const DEFAULT_COLORMAP: Colormap = Colormap::Viridis;
/// Units of an `expr` result when `units` is unset (dimensionless); the TOML spec's default.
const DEFAULT_EXPR_UNITS: &str = "1";
/// Minimum object area, km², when an `objects` step leaves `min_area_km2` unset; the TOML spec's
/// default.
const DEFAULT_MIN_AREA_KM2: f64 = 0.0;
/// Minimum object lifetime, steps, when an `objects` step leaves `min_duration_steps` unset; the
/// TOML spec's default.
const DEFAULT_MIN_DURATION_STEPS: u32 = 1;
/// Climatology period when an `anomaly` step leaves `by` unspecified; the TOML spec's default.
const DEFAULT_CLIMATOLOGY_PERIOD: ClimatologyPeriod = ClimatologyPeriod::Month;

/// The cases of `Step.op` this version knows, as [`ConversionError::OneofNotSet`] lists them.
const STEP_OPS: &str = "magnitude, expr, units, coarsen, regrid, anomaly, normalize, rolling, threshold, objects, ivt, infer";
/// The cases of `Sink.kind` this version knows.
const SINK_KINDS: &str = "frames, zarr, catalog";
/// The values of `ClimatologyPeriod` this version knows.
const CLIMATOLOGY_PERIODS: &str = "0 (CLIMATOLOGY_PERIOD_UNSPECIFIED, month), \
     1 (CLIMATOLOGY_PERIOD_MONTH), 2 (CLIMATOLOGY_PERIOD_DAY_OF_YEAR)";

/// The values of `LayerStyle` this version knows.
const LAYER_STYLES: &str =
    "0 (LAYER_STYLE_UNSPECIFIED, field), 1 (LAYER_STYLE_FIELD), 2 (LAYER_STYLE_OBJECTS)";

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
    /// An enum number this version does not know (a newer sender's value, or a wrong one).
    #[error("{field}: unknown enum value {value} (known: {known})")]
    UnknownEnumValue {
        /// Path of the field.
        field: String,
        /// The number given.
        value: i32,
        /// The values this version knows, with their names.
        known: &'static str,
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
    /// A field whose values do not match its grid.
    #[error(
        "{field}: {bytes} value bytes do not hold {nlat} × {nlon} float32 values ({expected} bytes)"
    )]
    FieldShape {
        /// Path of the field.
        field: String,
        /// Bytes received.
        bytes: usize,
        /// Latitudes.
        nlat: usize,
        /// Longitudes.
        nlon: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// A frame whose layers and fields do not pair up.
    #[error("{field}: {layers} layers but {fields} fields; a frame carries one field per layer")]
    FrameLayers {
        /// Path of the frame.
        field: String,
        /// Layers received.
        layers: usize,
        /// Fields received.
        fields: usize,
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
        use v1::step::{self as s, Op};
        let op = match step.clone() {
            StepSpec::Magnitude { inputs, output } => {
                Op::Magnitude(s::Magnitude { inputs, output })
            }
            StepSpec::Ivt {
                humidity,
                wind: [eastward, northward],
                output,
                components,
            } => Op::Ivt(s::Ivt {
                humidity,
                wind: Some(v1::WindComponents {
                    eastward,
                    northward,
                }),
                output,
                components: components.map(|[eastward, northward]| v1::WindComponents {
                    eastward,
                    northward,
                }),
            }),
            StepSpec::Expr {
                expr,
                output,
                units,
            } => Op::Expr(s::Expr {
                expr,
                output,
                units: Some(units),
            }),
            StepSpec::Units { input, output, to } => Op::Units(s::Units { input, output, to }),
            StepSpec::Coarsen {
                input,
                output,
                factor: [lat, lon],
            } => Op::Coarsen(s::Coarsen {
                input,
                output,
                factor_lat: i64::from(lat),
                factor_lon: i64::from(lon),
            }),
            StepSpec::Regrid {
                input,
                output,
                resolution_deg,
            } => Op::Regrid(s::Regrid {
                input,
                output,
                resolution_deg,
            }),
            StepSpec::Anomaly {
                input,
                output,
                by,
                climatology,
            } => Op::Anomaly(s::Anomaly {
                input,
                output,
                by: v1::ClimatologyPeriod::from(by).into(),
                climatology: climatology.map(|c| s::ClimatologyStore {
                    uri: c.uri,
                    variable: c.variable,
                }),
            }),
            StepSpec::Normalize {
                input,
                output,
                mean,
                std,
            } => Op::Normalize(s::Normalize {
                input,
                output,
                mean,
                std,
            }),
            StepSpec::Rolling {
                input,
                output,
                window,
            } => Op::Rolling(s::Rolling {
                input,
                output,
                window: i64::from(window),
            }),
            StepSpec::Threshold {
                input,
                output,
                value,
                percentile,
            } => Op::Threshold(s::Threshold {
                input,
                output,
                value,
                percentile,
            }),
            StepSpec::Objects {
                input,
                output,
                threshold,
                min_area_km2,
                min_duration_steps,
                wind,
                criterion,
            } => Op::Objects(s::Objects {
                input,
                output,
                threshold,
                min_area_km2: Some(min_area_km2),
                min_duration_steps: Some(i64::from(min_duration_steps)),
                wind: wind.map(|[eastward, northward]| v1::WindComponents {
                    eastward,
                    northward,
                }),
                criterion: criterion.as_ref().map(v1::ArCriterion::from),
            }),
            StepSpec::Infer {
                model,
                inputs,
                output,
                workers,
                units,
                model_output,
                patch_size,
                halo,
                batch_size,
                max_batch_delay_ms,
                max_batches_in_flight,
                timeout_ms,
            } => Op::Infer(s::Infer {
                model,
                inputs,
                output,
                workers,
                units: Some(units),
                model_output,
                patch_size: Some(i64::from(patch_size)),
                halo: Some(i64::from(halo)),
                batch_size: Some(i64::from(batch_size)),
                max_batch_delay_ms: Some(i64::try_from(max_batch_delay_ms).unwrap_or(i64::MAX)),
                max_batches_in_flight: Some(i64::from(max_batches_in_flight)),
                timeout_ms: Some(i64::try_from(timeout_ms).unwrap_or(i64::MAX)),
            }),
        };
        Self { op: Some(op) }
    }
}

impl From<ClimatologyPeriod> for v1::ClimatologyPeriod {
    fn from(period: ClimatologyPeriod) -> Self {
        match period {
            ClimatologyPeriod::Month => Self::Month,
            ClimatologyPeriod::DayOfYear => Self::DayOfYear,
        }
    }
}

impl From<&ArCriterionSpec> for v1::ArCriterion {
    fn from(c: &ArCriterionSpec) -> Self {
        Self {
            min_length_km: Some(c.min_length_km),
            min_aspect: Some(c.min_aspect),
            require_poleward: Some(c.require_poleward),
            min_coherence: Some(c.min_coherence),
        }
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
                channel: frames.channel.clone(),
            }),
            SinkSpec::Zarr(zarr) => v1::sink::Kind::Zarr(v1::sink::Zarr {
                path: zarr.path.clone(),
                variables: zarr.variables.clone(),
            }),
            SinkSpec::Catalog(catalog) => v1::sink::Kind::Catalog(v1::sink::Catalog {
                objects: catalog.objects.clone(),
                path: catalog.path.clone(),
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
            style: match layer.style {
                LayerStyle::Field => v1::LayerStyle::Field,
                LayerStyle::Objects => v1::LayerStyle::Objects,
            }
            .into(),
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
    use v1::step::Op;
    let Some(op) = step.op else {
        return Err(ConversionError::OneofNotSet {
            field: format!("steps[{i}].op"),
            expected: STEP_OPS,
        });
    };
    let field = |op: &str, name: &str| format!("steps[{i}].{op}.{name}");
    Ok(match op {
        Op::Magnitude(m) => StepSpec::Magnitude {
            inputs: m.inputs,
            output: m.output,
        },
        Op::Ivt(t) => {
            let wind = t.wind.ok_or_else(|| ConversionError::Missing {
                field: field("ivt", "wind"),
            })?;
            StepSpec::Ivt {
                humidity: t.humidity,
                wind: [wind.eastward, wind.northward],
                output: t.output,
                components: t.components.map(|c| [c.eastward, c.northward]),
            }
        }
        Op::Expr(e) => StepSpec::Expr {
            expr: e.expr,
            output: e.output,
            units: e.units.unwrap_or_else(|| DEFAULT_EXPR_UNITS.to_owned()),
        },
        Op::Units(u) => StepSpec::Units {
            input: u.input,
            output: u.output,
            to: u.to,
        },
        Op::Coarsen(c) => StepSpec::Coarsen {
            input: c.input,
            output: c.output,
            factor: [
                to_u32(c.factor_lat, || field("coarsen", "factor_lat"))?,
                to_u32(c.factor_lon, || field("coarsen", "factor_lon"))?,
            ],
        },
        Op::Regrid(r) => StepSpec::Regrid {
            input: r.input,
            output: r.output,
            resolution_deg: r.resolution_deg,
        },
        Op::Anomaly(a) => StepSpec::Anomaly {
            by: climatology_period(a.by, || field("anomaly", "by"))?,
            input: a.input,
            output: a.output,
            climatology: a.climatology.map(|c| ClimatologyStore {
                uri: c.uri,
                variable: c.variable,
            }),
        },
        Op::Normalize(n) => StepSpec::Normalize {
            input: n.input,
            output: n.output,
            mean: n.mean,
            std: n.std,
        },
        Op::Rolling(r) => StepSpec::Rolling {
            window: to_u32(r.window, || field("rolling", "window"))?,
            input: r.input,
            output: r.output,
        },
        Op::Threshold(t) => StepSpec::Threshold {
            input: t.input,
            output: t.output,
            value: t.value,
            percentile: t.percentile,
        },
        Op::Objects(o) => StepSpec::Objects {
            min_duration_steps: optional_u32(
                o.min_duration_steps,
                DEFAULT_MIN_DURATION_STEPS,
                || field("objects", "min_duration_steps"),
            )?,
            input: o.input,
            output: o.output,
            threshold: o.threshold,
            min_area_km2: o.min_area_km2.unwrap_or(DEFAULT_MIN_AREA_KM2),
            wind: o.wind.map(|w| [w.eastward, w.northward]),
            criterion: o.criterion.map(criterion_from_wire),
        },
        Op::Infer(m) => {
            let f = |name: &'static str| move || field("infer", name);
            StepSpec::Infer {
                patch_size: optional_u32(
                    m.patch_size,
                    InferDefaults::patch_size(),
                    f("patch_size"),
                )?,
                halo: optional_u32(m.halo, InferDefaults::halo(), f("halo"))?,
                batch_size: optional_u32(
                    m.batch_size,
                    InferDefaults::batch_size(),
                    f("batch_size"),
                )?,
                max_batch_delay_ms: optional_u64(
                    m.max_batch_delay_ms,
                    InferDefaults::max_batch_delay_ms(),
                    f("max_batch_delay_ms"),
                )?,
                max_batches_in_flight: optional_u32(
                    m.max_batches_in_flight,
                    InferDefaults::max_batches_in_flight(),
                    f("max_batches_in_flight"),
                )?,
                timeout_ms: optional_u64(
                    m.timeout_ms,
                    InferDefaults::timeout_ms(),
                    f("timeout_ms"),
                )?,
                model: m.model,
                inputs: m.inputs,
                output: m.output,
                workers: m.workers,
                units: m.units.unwrap_or_else(|| DEFAULT_EXPR_UNITS.to_owned()),
                model_output: m.model_output,
            }
        }
    })
}

/// A climatology period: unspecified means the default; a number this version does not know is
/// refused.
fn climatology_period(
    value: i32,
    field: impl FnOnce() -> String,
) -> Result<ClimatologyPeriod, ConversionError> {
    match v1::ClimatologyPeriod::try_from(value) {
        Ok(v1::ClimatologyPeriod::Unspecified) => Ok(DEFAULT_CLIMATOLOGY_PERIOD),
        Ok(v1::ClimatologyPeriod::Month) => Ok(ClimatologyPeriod::Month),
        Ok(v1::ClimatologyPeriod::DayOfYear) => Ok(ClimatologyPeriod::DayOfYear),
        Err(_) => Err(ConversionError::UnknownEnumValue {
            field: field(),
            value,
            known: CLIMATOLOGY_PERIODS,
        }),
    }
}

/// The atmospheric-river criterion; each unset field takes the TOML spec's default.
fn criterion_from_wire(c: v1::ArCriterion) -> ArCriterionSpec {
    let default = ArCriterionSpec::default();
    ArCriterionSpec {
        min_length_km: c.min_length_km.unwrap_or(default.min_length_km),
        min_aspect: c.min_aspect.unwrap_or(default.min_aspect),
        require_poleward: c.require_poleward.unwrap_or(default.require_poleward),
        min_coherence: c.min_coherence.unwrap_or(default.min_coherence),
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
                channel: frames.channel,
                width_px: optional_u32(frames.width_px, DEFAULT_WIDTH_PX, || field("width_px"))?,
                height_px: optional_u32(frames.height_px, DEFAULT_HEIGHT_PX, || {
                    field("height_px")
                })?,
                layers,
            }))
        }
        Some(v1::sink::Kind::Zarr(zarr)) => Ok(SinkSpec::Zarr(ZarrSink {
            path: zarr.path,
            variables: zarr.variables,
        })),
        Some(v1::sink::Kind::Catalog(catalog)) => Ok(SinkSpec::Catalog(CatalogSink {
            objects: catalog.objects,
            path: catalog.path,
        })),
        None => Err(ConversionError::OneofNotSet {
            field: format!("sinks[{i}].kind"),
            expected: SINK_KINDS,
        }),
    }
}

/// An optional count (pixel size, duration): unset means the default; otherwise as [`to_u32`].
fn optional_u32(
    value: Option<i64>,
    default: u32,
    field: impl FnOnce() -> String,
) -> Result<u32, ConversionError> {
    value.map_or(Ok(default), |v| to_u32(v, field))
}

fn optional_u64(
    value: Option<i64>,
    default: u64,
    field: impl FnOnce() -> String,
) -> Result<u64, ConversionError> {
    value.map_or(Ok(default), |v| {
        u64::try_from(v).map_err(|_| ConversionError::OutOfRange {
            field: field(),
            value: v,
            min: 0,
            max: i64::MAX,
        })
    })
}

/// A count the core holds as `u32`: a value that does not fit is refused with the field named (the
/// core validator then checks the real limits, such as a factor of 0).
fn to_u32(value: i64, field: impl FnOnce() -> String) -> Result<u32, ConversionError> {
    u32::try_from(value).map_err(|_| ConversionError::OutOfRange {
        field: field(),
        value,
        min: 0,
        max: i64::from(u32::MAX),
    })
}

pub(crate) fn layer_from_wire(path: &str, layer: v1::Layer) -> Result<LayerSpec, ConversionError> {
    let colormap = if layer.colormap.is_empty() {
        DEFAULT_COLORMAP
    } else {
        Colormap::from_name(&layer.colormap).ok_or_else(|| ConversionError::UnknownColormap {
            field: format!("{path}.colormap"),
            value: layer.colormap.clone(),
        })?
    };
    let style = match v1::LayerStyle::try_from(layer.style) {
        Ok(v1::LayerStyle::Unspecified | v1::LayerStyle::Field) => LayerStyle::Field,
        Ok(v1::LayerStyle::Objects) => LayerStyle::Objects,
        Err(_) => {
            return Err(ConversionError::UnknownEnumValue {
                field: format!("{path}.style"),
                value: layer.style,
                known: LAYER_STYLES,
            });
        }
    };
    Ok(LayerSpec {
        variable: layer.variable,
        style,
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
        let SinkSpec::Frames(frames) = &spec.sinks[0] else {
            panic!("frames sink")
        };
        assert_eq!(frames.width_px, DEFAULT_WIDTH_PX);
        assert_eq!(frames.height_px, DEFAULT_HEIGHT_PX);
        assert_eq!(frames.layers[0].colormap, DEFAULT_COLORMAP);

        let spec = PipelineSpec::from_toml_str(
            r#"
            name = "d"
            [source]
            uri = "x.zarr"
            variables = ["a"]
            [[step]]
            op = "expr"
            expr = "a"
            output = "b"
            [[step]]
            op = "anomaly"
            input = "a"
            output = "c"
            [[step]]
            op = "objects"
            input = "a"
            output = "o"
            threshold = 1
            criterion = {}
            "#,
        )
        .expect("valid TOML spec");
        let StepSpec::Expr { units, .. } = &spec.steps[0] else {
            panic!("expr")
        };
        assert_eq!(units, DEFAULT_EXPR_UNITS);
        let StepSpec::Anomaly { by, .. } = &spec.steps[1] else {
            panic!("anomaly")
        };
        assert_eq!(*by, DEFAULT_CLIMATOLOGY_PERIOD);
        let StepSpec::Objects {
            min_area_km2,
            min_duration_steps,
            wind,
            criterion,
            ..
        } = &spec.steps[2]
        else {
            panic!("objects")
        };
        assert_eq!(*min_area_km2, DEFAULT_MIN_AREA_KM2);
        assert_eq!(*min_duration_steps, DEFAULT_MIN_DURATION_STEPS);
        assert_eq!(*wind, None);
        assert_eq!(
            criterion_from_wire(v1::ArCriterion::default()),
            criterion.expect("criterion")
        );
    }

    #[test]
    fn known_cases_list_every_core_case() {
        for period in [ClimatologyPeriod::Month, ClimatologyPeriod::DayOfYear] {
            let wire = v1::ClimatologyPeriod::from(period);
            assert!(
                CLIMATOLOGY_PERIODS.contains(wire.as_str_name()),
                "{}",
                wire.as_str_name()
            );
        }
        assert!(CLIMATOLOGY_PERIODS.contains(v1::ClimatologyPeriod::Unspecified.as_str_name()));
    }

    #[test]
    fn known_colormaps_lists_every_colormap() {
        assert_eq!(known_colormaps(), "viridis, magma, cividis, coolwarm");
    }
}
