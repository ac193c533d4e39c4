//! The pipeline spec: a TOML file for people, mirrored by a protobuf message for gRPC clients, with
//! one validator behind both.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Colormap, LatLonGrid, SpecError, TimeAxis};

/// The largest canvas a frames sink may ask for (an 8K display), in pixels.
pub const MAX_CANVAS_PIXELS: u64 = 7680 * 4320;

/// What a user asks Isotach to do.
///
/// ```
/// let spec = isotach_core::PipelineSpec::from_toml_str(r#"
///     name = "ivt-frames"
///     [source]
///     uri = "data/synthetic.zarr"
///     variables = ["ivt_u", "ivt_v"]
///     [[step]]
///     op = "magnitude"
///     inputs = ["ivt_u", "ivt_v"]
///     output = "ivt"
///     [[sink]]
///     kind = "frames"
///     path = "out/frames"
///     layers = [{ variable = "ivt", colormap = "viridis", range = [0, 1000] }]
/// "#).unwrap();
/// assert_eq!(spec.steps.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// A short name for the job: letters, digits, `-` and `_`.
    pub name: String,
    /// Where the data comes from.
    pub source: SourceSpec,
    /// Processing steps, in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<StepSpec>,
    /// Where results go.
    #[serde(default, rename = "sink")]
    pub sinks: Vec<SinkSpec>,
}

/// The source of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Store location: a path or `file://` URI.
    pub uri: String,
    /// Variables to read.
    pub variables: Vec<String>,
    /// Time window, inclusive at both ends; default: every step of the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeRange>,
    /// Latitude/longitude box; default: the whole grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<RegionBox>,
}

/// A box by coordinate values: `lat = [south, north]`, `lon = [west, east]` in degrees
/// (-180..180 or 0..360; `west > east` crosses the dateline).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionBox {
    /// `[south, north]`, degrees north.
    pub lat: [f64; 2],
    /// `[west, east]`, degrees east.
    pub lon: [f64; 2],
}

/// An inclusive time window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    /// First instant (RFC 3339).
    pub start: DateTime<Utc>,
    /// Last instant (RFC 3339).
    pub end: DateTime<Utc>,
}

/// One processing step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    /// Euclidean norm of vector components, for example IVT from `ivt_u` and `ivt_v`.
    Magnitude {
        /// The components (at least two, same units).
        inputs: Vec<String>,
        /// The name of the result.
        output: String,
    },
}

impl StepSpec {
    /// Variables the step reads.
    pub fn inputs(&self) -> &[String] {
        match self {
            StepSpec::Magnitude { inputs, .. } => inputs,
        }
    }

    /// Variable the step writes.
    pub fn output(&self) -> &str {
        match self {
            StepSpec::Magnitude { output, .. } => output,
        }
    }
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkSpec {
    /// Rendered frames, one PNG per time step.
    Frames(FramesSink),
}

/// A frames sink: each completed time step drawn as one PNG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramesSink {
    /// Folder the PNGs are written to (created if missing).
    pub path: String,
    /// Canvas width in pixels (default 1280).
    #[serde(default = "default_width_px")]
    pub width_px: u32,
    /// Canvas height in pixels (default 720).
    #[serde(default = "default_height_px")]
    pub height_px: u32,
    /// Layers drawn in order.
    pub layers: Vec<LayerSpec>,
}

fn default_width_px() -> u32 {
    1280
}

fn default_height_px() -> u32 {
    720
}

/// A scalar field drawn through a colormap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// The variable drawn.
    pub variable: String,
    /// Colormap (default viridis).
    #[serde(default = "default_colormap")]
    pub colormap: Colormap,
    /// Value range mapped onto the colormap; default: the field's finite range at each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f32; 2]>,
}

fn default_colormap() -> Colormap {
    Colormap::Viridis
}

/// What a source holds: variables, coordinates, grid, time axis, attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// The store, as the user named it.
    pub uri: String,
    /// Every data variable (coordinates excluded).
    pub variables: Vec<VariableInfo>,
    /// The coordinate variables (`time`, `lat`, `lon`, `level`, ...).
    pub coordinates: Vec<VariableInfo>,
    /// The time coordinate.
    pub time: TimeAxis,
    /// The horizontal grid.
    pub grid: LatLonGrid,
    /// Global attributes.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// One variable of a dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VariableInfo {
    /// Name in the store.
    pub name: String,
    /// `units` attribute (empty when absent).
    pub units: String,
    /// `long_name` attribute (the name when absent).
    pub long_name: String,
    /// Dimension names, outermost first (`lat`, `lon` and `time` under those canonical names).
    pub dims: Vec<String>,
    /// Length of each dimension.
    pub shape: Vec<u64>,
    /// Chunk (or block) shape, one entry per dimension.
    pub chunks: Vec<u64>,
    /// Stored data type (`float32`, `int16`, ...).
    pub dtype: String,
    /// Codecs or compressor, in order, as the store names them.
    pub codecs: Vec<String>,
    /// Every attribute, as stored (CF encoding attributes included).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A spec checked against its dataset: everything the planner needs, already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPipeline {
    /// The spec as given.
    pub spec: PipelineSpec,
    /// Indices of the time steps to process.
    pub steps: Range<usize>,
    /// Units of every variable available to the pipeline (source variables and step outputs).
    pub units: BTreeMap<String, String>,
    /// Long names of the same.
    pub long_names: BTreeMap<String, String>,
}

impl PipelineSpec {
    /// Parses a TOML spec, naming the line and the field of a syntax or schema error.
    pub fn from_toml_str(text: &str) -> Result<Self, SpecError> {
        toml::from_str(text).map_err(|e| SpecError::Parse(e.to_string().trim_end().to_owned()))
    }

    /// The spec as TOML.
    pub fn to_toml_string(&self) -> Result<String, SpecError> {
        toml::to_string(self).map_err(|e| SpecError::Parse(e.to_string()))
    }

    /// Checks the spec against the dataset it reads, before any work starts.
    pub fn validate(&self, dataset: &DatasetInfo) -> Result<ValidatedPipeline, SpecError> {
        validate_name(&self.name)?;
        let source_place = format!("store {}", dataset.uri);
        let dataset_names: Vec<String> = dataset.variables.iter().map(|v| v.name.clone()).collect();

        if self.source.variables.is_empty() {
            return Err(SpecError::invalid(
                "source.variables",
                "is empty; name at least one variable to read",
            ));
        }
        let mut units = BTreeMap::new();
        let mut long_names = BTreeMap::new();
        for (i, name) in self.source.variables.iter().enumerate() {
            let info = dataset
                .variables
                .iter()
                .find(|v| &v.name == name)
                .ok_or_else(|| SpecError::UnknownVariable {
                    name: name.clone(),
                    place: source_place.clone(),
                    available: dataset_names.clone(),
                })?;
            if units.contains_key(name) {
                return Err(SpecError::invalid(
                    format!("source.variables[{i}]"),
                    format!("{name:?} is listed twice"),
                ));
            }
            let surface = ["time", "lat", "lon"];
            if info.dims != surface {
                return Err(SpecError::invalid(
                    format!("source.variables[{i}]"),
                    format!(
                        "{name:?} has dimensions ({}); this pipeline reads fields on (time, lat, lon)",
                        info.dims.join(", ")
                    ),
                ));
            }
            units.insert(name.clone(), info.units.clone());
            long_names.insert(name.clone(), info.long_name.clone());
        }

        let steps = match self.source.time {
            None => 0..dataset.time.len(),
            Some(range) => select_time(range, dataset)?,
        };
        if let Some(region) = self.source.region {
            dataset.grid.select(region.lat, region.lon)?;
        }

        for (i, step) in self.steps.iter().enumerate() {
            let place = "source variables and earlier step outputs".to_owned();
            let mut input_units = Vec::new();
            for input in step.inputs() {
                let unit = units.get(input).ok_or_else(|| SpecError::UnknownVariable {
                    name: input.clone(),
                    place: format!("step[{i}] inputs: {place}"),
                    available: units.keys().cloned().collect(),
                })?;
                input_units.push(unit.clone());
            }
            let output = step.output();
            if output.is_empty() {
                return Err(SpecError::invalid(format!("step[{i}].output"), "is empty"));
            }
            if units.contains_key(output) {
                return Err(SpecError::invalid(
                    format!("step[{i}].output"),
                    format!(
                        "{output:?} is already defined by the source or an earlier step; choose another name"
                    ),
                ));
            }
            let (unit, long_name) = match step {
                StepSpec::Magnitude { inputs, .. } => {
                    if inputs.len() < 2 {
                        return Err(SpecError::invalid(
                            format!("step[{i}].inputs"),
                            format!(
                                "magnitude needs at least 2 components, got {}",
                                inputs.len()
                            ),
                        ));
                    }
                    if let Some(other) = input_units.iter().find(|u| **u != input_units[0]) {
                        return Err(SpecError::invalid(
                            format!("step[{i}].inputs"),
                            format!(
                                "magnitude components must share units, got {:?} and {other:?}",
                                input_units[0]
                            ),
                        ));
                    }
                    (
                        input_units[0].clone(),
                        format!("Magnitude of {}", inputs.join(" and ")),
                    )
                }
            };
            units.insert(output.to_owned(), unit);
            long_names.insert(output.to_owned(), long_name);
        }

        if self.sinks.is_empty() {
            return Err(SpecError::invalid(
                "sink",
                "no sink is given; results would go nowhere",
            ));
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            match sink {
                SinkSpec::Frames(frames) => validate_frames(i, frames, &units)?,
            }
        }
        Ok(ValidatedPipeline {
            spec: self.clone(),
            steps,
            units,
            long_names,
        })
    }
}

fn validate_name(name: &str) -> Result<(), SpecError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(SpecError::invalid(
            "name",
            format!("{name:?} must be 1 to 128 letters, digits, '-' or '_'"),
        ));
    }
    Ok(())
}

fn select_time(range: TimeRange, dataset: &DatasetInfo) -> Result<Range<usize>, SpecError> {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    if range.end < range.start {
        return Err(SpecError::invalid(
            "source.time",
            format!(
                "end {} is before start {}",
                fmt(range.end),
                fmt(range.start)
            ),
        ));
    }
    let (Some(first), Some(last)) = (dataset.time.times.first(), dataset.time.times.last()) else {
        return Err(SpecError::invalid(
            "source.time",
            format!("store {} has no time steps", dataset.uri),
        ));
    };
    let selected = dataset.time.indices_between(range.start, range.end);
    if range.start < *first || range.end > *last || selected.is_empty() {
        return Err(SpecError::TimeOutOfRange {
            uri: dataset.uri.clone(),
            start: fmt(range.start),
            end: fmt(range.end),
            data_start: fmt(*first),
            data_end: fmt(*last),
        });
    }
    Ok(selected)
}

fn validate_frames(
    i: usize,
    frames: &FramesSink,
    units: &BTreeMap<String, String>,
) -> Result<(), SpecError> {
    let field = |name: &str| format!("sink[{i}].{name}");
    if frames.path.trim().is_empty() {
        return Err(SpecError::invalid(field("path"), "is empty"));
    }
    for (name, px) in [
        ("width_px", frames.width_px),
        ("height_px", frames.height_px),
    ] {
        if !(64..=16384).contains(&px) {
            return Err(SpecError::invalid(
                field(name),
                format!("{px} is outside 64..=16384"),
            ));
        }
    }
    let pixels = frames.width_px as u64 * frames.height_px as u64;
    if pixels > MAX_CANVAS_PIXELS {
        return Err(SpecError::invalid(
            field("width_px"),
            format!(
                "{}×{} = {pixels} pixels exceeds the limit of {MAX_CANVAS_PIXELS}",
                frames.width_px, frames.height_px
            ),
        ));
    }
    if frames.layers.is_empty() {
        return Err(SpecError::invalid(
            field("layers"),
            "is empty; give at least one layer",
        ));
    }
    for (j, layer) in frames.layers.iter().enumerate() {
        if !units.contains_key(&layer.variable) {
            return Err(SpecError::UnknownVariable {
                name: layer.variable.clone(),
                place: format!("sink[{i}].layers[{j}]: source variables and step outputs"),
                available: units.keys().cloned().collect(),
            });
        }
        if let Some([lo, hi]) = layer.range
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(SpecError::invalid(
                format!("sink[{i}].layers[{j}].range"),
                format!("[{lo}, {hi}] must be two finite numbers, low before high"),
            ));
        }
    }
    Ok(())
}
