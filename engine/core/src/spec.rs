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

/// One processing step. Every step names its inputs and its output; the output is a new variable
/// available to later steps and to sinks.
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
    /// Integrated vapour transport `(1/g) ∫ q·V dp` from specific humidity and wind on pressure
    /// levels (trapezoidal rule over the stored levels): the magnitude, and optionally the
    /// eastward and northward components.
    Ivt {
        /// Specific humidity on levels (`kg kg-1`, or `g kg-1`).
        humidity: String,
        /// Wind components on the same levels, `[eastward, northward]`.
        wind: [String; 2],
        /// The name of the IVT magnitude (`kg m-1 s-1`).
        output: String,
        /// Names for the `[eastward, northward]` components, when they are wanted too (for
        /// example by an atmospheric-river criterion).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        components: Option<[String; 2]>,
    },
    /// Arithmetic over variables, for example `"where(ivt > 250, ivt, 0)"`; the variables it
    /// names are its inputs.
    Expr {
        /// The expression (see [`crate::expr`] for the grammar).
        expr: String,
        /// The name of the result.
        output: String,
        /// Units of the result (default: dimensionless, `1`).
        #[serde(default = "dimensionless")]
        units: String,
    },
    /// A scale/offset unit conversion, for example K to degC or Pa to hPa.
    Units {
        /// The variable converted.
        input: String,
        /// The name of the result.
        output: String,
        /// Target units (see [`crate::units`] for the table).
        to: String,
    },
    /// Block mean over `factor = [lat, lon]` cells, NaN-aware; trailing cells that do not fill a
    /// block are trimmed. The result lies on the coarser grid.
    Coarsen {
        /// The variable coarsened.
        input: String,
        /// The name of the result.
        output: String,
        /// Block size in cells, `[lat, lon]`.
        factor: [u32; 2],
    },
    /// Bilinear interpolation onto a regular grid of `resolution_deg`, periodic in longitude for
    /// global grids.
    Regrid {
        /// The variable interpolated.
        input: String,
        /// The name of the result.
        output: String,
        /// Target grid spacing, degrees.
        resolution_deg: f64,
    },
    /// Departure from a climatology by month or day of year: one read from a store, or one
    /// maintained incrementally (the mean of every earlier and current step of the same period).
    Anomaly {
        /// The variable.
        input: String,
        /// The name of the result.
        output: String,
        /// Climatology period (default month).
        #[serde(default)]
        by: ClimatologyPeriod,
        /// A climatology read from a store; default: maintained from the run's own steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        climatology: Option<ClimatologyStore>,
    },
    /// Z-score: `(x - mean) / std`, with the given statistics or, when both are absent, per-cell
    /// running statistics of the steps so far.
    Normalize {
        /// The variable.
        input: String,
        /// The name of the result.
        output: String,
        /// Supplied mean (give `std` too).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mean: Option<f64>,
        /// Supplied standard deviation (give `mean` too).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        std: Option<f64>,
    },
    /// Trailing time mean over `window` steps (NaN until the window is full, as xarray).
    Rolling {
        /// The variable.
        input: String,
        /// The name of the result.
        output: String,
        /// Window length in steps.
        window: u32,
    },
    /// 1 where the input is at or above a level, 0 below, NaN where missing. The level is a fixed
    /// `value` or a per-cell `percentile` (0..=100) of the steps so far.
    Threshold {
        /// The variable.
        input: String,
        /// The name of the result.
        output: String,
        /// Fixed level, in the input's units.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f32>,
        /// Per-cell percentile level.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percentile: Option<f64>,
    },
    /// Connected objects (CONNECT): cells at or above `threshold`, joined in space (8 neighbours,
    /// periodic in longitude) and in time (overlap between consecutive steps). The output holds
    /// object ids (NaN outside objects); a `catalog` sink writes one row per object and step.
    Objects {
        /// The variable segmented, for example IVT.
        input: String,
        /// The name of the label field.
        output: String,
        /// Cells with `input >= threshold` are inside objects.
        threshold: f32,
        /// Objects smaller than this at a step are dropped at that step (default 0).
        #[serde(default)]
        min_area_km2: f64,
        /// Objects lasting fewer steps are dropped from the catalog (default 1).
        #[serde(default = "one_step")]
        min_duration_steps: u32,
        /// IVT components `[eastward, northward]`, needed by the atmospheric-river criterion.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wind: Option<[String; 2]>,
        /// Atmospheric-river geometry test in the spirit of Guan & Waliser (2015).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        criterion: Option<ArCriterionSpec>,
    },
    /// A trained model applied to whole fields on inference workers that speak the Open Inference
    /// Protocol (Isotach's own worker, Triton, MLServer). Each field is cut into square patches of
    /// `patch_size` cells that overlap by `halo` cells (wrapped in longitude on global grids, edge
    /// cells repeated elsewhere); the inputs are the channels of a `[N, C, patch, patch]` FP32
    /// tensor (NaN sent as 0), and the centres of the model's first output (or `model_output`)
    /// are stitched back onto the grid. Cells where an input is NaN are NaN in the output.
    Infer {
        /// The model's name on the workers.
        model: String,
        /// The variables fed to the model, one channel each, in order.
        inputs: Vec<String>,
        /// The name of the result.
        output: String,
        /// Worker endpoints, `http://host:port` (at least one).
        workers: Vec<String>,
        /// Units of the result (default: dimensionless, `1`).
        #[serde(default = "dimensionless")]
        units: String,
        /// The model output used (default: the model's first output).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_output: Option<String>,
        /// Patch edge in cells (default 256).
        #[serde(default = "InferDefaults::patch_size")]
        patch_size: u32,
        /// Cells of context on each side of a patch's centre, dropped when stitching (default 16).
        #[serde(default = "InferDefaults::halo")]
        halo: u32,
        /// Patches per request (default 8).
        #[serde(default = "InferDefaults::batch_size")]
        batch_size: u32,
        /// How long a partial batch waits for more patches, ms (default 5).
        #[serde(default = "InferDefaults::max_batch_delay_ms")]
        max_batch_delay_ms: u64,
        /// Requests outstanding at once across all workers (default 4): the backpressure bound.
        #[serde(default = "InferDefaults::max_batches_in_flight")]
        max_batches_in_flight: u32,
        /// A request not answered within this is retried on another worker, ms (default 30000).
        #[serde(default = "InferDefaults::timeout_ms")]
        timeout_ms: u64,
    },
}

/// The defaults of an `infer` step's tuning fields, shared by the TOML and protobuf specs.
pub struct InferDefaults;

impl InferDefaults {
    /// Patch edge in cells.
    pub fn patch_size() -> u32 {
        256
    }
    /// Halo in cells.
    pub fn halo() -> u32 {
        16
    }
    /// Patches per request.
    pub fn batch_size() -> u32 {
        8
    }
    /// Wait for a full batch, ms.
    pub fn max_batch_delay_ms() -> u64 {
        5
    }
    /// Requests in flight.
    pub fn max_batches_in_flight() -> u32 {
        4
    }
    /// Request timeout, ms.
    pub fn timeout_ms() -> u64 {
        30_000
    }
}

fn expression_variables(expr: &str) -> Vec<String> {
    crate::expr::Expr::parse(expr)
        .map(|e| e.variables())
        .unwrap_or_default()
}

fn dimensionless() -> String {
    "1".to_owned()
}

fn one_step() -> u32 {
    1
}

/// The period a climatology is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClimatologyPeriod {
    /// Calendar month (xarray `time.month`).
    #[default]
    Month,
    /// Day of year, 1..=366 (xarray `time.dayofyear`).
    DayOfYear,
}

impl ClimatologyPeriod {
    /// The period `time` falls in: month 1–12 or day of the year 1–366.
    ///
    /// ```
    /// use isotach_core::ClimatologyPeriod;
    /// let t = "2024-12-31T18:00:00Z".parse().unwrap();
    /// assert_eq!(ClimatologyPeriod::Month.of(t), 12);
    /// assert_eq!(ClimatologyPeriod::DayOfYear.of(t), 366);
    /// ```
    pub fn of(self, time: DateTime<Utc>) -> u16 {
        use chrono::Datelike;
        match self {
            Self::Month => time.month() as u16,
            Self::DayOfYear => time.ordinal() as u16,
        }
    }
}

/// A climatology in a Zarr store, as xarray writes `da.groupby("time.month").mean()`: the
/// variable laid out `(month, lat, lon)` (or `(dayofyear, lat, lon)`), its period coordinate
/// holding the months 1–12 (days 1–366) it covers, on the grid of the anomaly's input or a grid
/// that contains it, in the input's units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClimatologyStore {
    /// The store (path or URL, as a source's `uri`).
    pub uri: String,
    /// The climatology variable in it.
    pub variable: String,
}

/// The geometric atmospheric-river criterion: an object passes at a step when it is long, narrow,
/// carries moisture poleward and flows coherently.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArCriterionSpec {
    /// Minimum length, km (default 2000).
    #[serde(default = "default_min_length_km")]
    pub min_length_km: f64,
    /// Minimum length/width (default 2).
    #[serde(default = "default_min_aspect")]
    pub min_aspect: f64,
    /// Require a poleward mean meridional transport (default true).
    #[serde(default = "default_true")]
    pub require_poleward: bool,
    /// Minimum fraction of cells flowing within 45° of the mean direction (default 0.5).
    #[serde(default = "default_min_coherence")]
    pub min_coherence: f64,
}

impl Default for ArCriterionSpec {
    fn default() -> Self {
        Self {
            min_length_km: default_min_length_km(),
            min_aspect: default_min_aspect(),
            require_poleward: true,
            min_coherence: default_min_coherence(),
        }
    }
}

impl ArCriterionSpec {
    /// True when the test reads the IVT components.
    pub fn needs_wind(&self) -> bool {
        self.require_poleward || self.min_coherence > 0.0
    }
}

fn default_min_length_km() -> f64 {
    2000.0
}

fn default_min_aspect() -> f64 {
    2.0
}

fn default_true() -> bool {
    true
}

fn default_min_coherence() -> f64 {
    0.5
}

/// What a step needs from its grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepScope {
    /// Cell by cell, region by region: inputs must share one grid stage.
    Cells,
    /// The whole field of a step at once: the step gathers its inputs, and its output starts a new
    /// grid stage.
    WholeField,
}

impl StepSpec {
    /// The operator's name as written in specs.
    pub fn op(&self) -> &'static str {
        match self {
            StepSpec::Magnitude { .. } => "magnitude",
            StepSpec::Ivt { .. } => "ivt",
            StepSpec::Expr { .. } => "expr",
            StepSpec::Units { .. } => "units",
            StepSpec::Coarsen { .. } => "coarsen",
            StepSpec::Regrid { .. } => "regrid",
            StepSpec::Anomaly { .. } => "anomaly",
            StepSpec::Normalize { .. } => "normalize",
            StepSpec::Rolling { .. } => "rolling",
            StepSpec::Threshold { .. } => "threshold",
            StepSpec::Objects { .. } => "objects",
            StepSpec::Infer { .. } => "infer",
        }
    }

    /// Variables the step reads (for `expr`, the variables the expression names; an expression
    /// that does not parse names none, and validation reports it).
    pub fn inputs(&self) -> Vec<String> {
        match self {
            StepSpec::Magnitude { inputs, .. } | StepSpec::Infer { inputs, .. } => inputs.clone(),
            StepSpec::Ivt { humidity, wind, .. } => {
                vec![humidity.clone(), wind[0].clone(), wind[1].clone()]
            }
            StepSpec::Expr { expr, .. } => expression_variables(expr),
            StepSpec::Objects { input, wind, .. } => {
                let mut inputs = vec![input.clone()];
                inputs.extend(wind.iter().flatten().cloned());
                inputs
            }
            StepSpec::Units { input, .. }
            | StepSpec::Coarsen { input, .. }
            | StepSpec::Regrid { input, .. }
            | StepSpec::Anomaly { input, .. }
            | StepSpec::Normalize { input, .. }
            | StepSpec::Rolling { input, .. }
            | StepSpec::Threshold { input, .. } => vec![input.clone()],
        }
    }

    /// The variable the step writes (its first, when it writes several).
    pub fn output(&self) -> &str {
        match self {
            StepSpec::Magnitude { output, .. }
            | StepSpec::Ivt { output, .. }
            | StepSpec::Expr { output, .. }
            | StepSpec::Units { output, .. }
            | StepSpec::Coarsen { output, .. }
            | StepSpec::Regrid { output, .. }
            | StepSpec::Anomaly { output, .. }
            | StepSpec::Normalize { output, .. }
            | StepSpec::Rolling { output, .. }
            | StepSpec::Threshold { output, .. }
            | StepSpec::Objects { output, .. }
            | StepSpec::Infer { output, .. } => output,
        }
    }

    /// Every variable the step writes: its output, then any extra ones (the components of `ivt`).
    pub fn outputs(&self) -> Vec<&str> {
        let mut outputs = vec![self.output()];
        if let StepSpec::Ivt {
            components: Some(components),
            ..
        } = self
        {
            outputs.extend(components.iter().map(String::as_str));
        }
        outputs
    }

    /// Whether the step works cell by cell or on whole fields.
    pub fn scope(&self) -> StepScope {
        match self {
            StepSpec::Coarsen { .. }
            | StepSpec::Regrid { .. }
            | StepSpec::Objects { .. }
            | StepSpec::Infer { .. } => StepScope::WholeField,
            _ => StepScope::Cells,
        }
    }
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkSpec {
    /// Rendered frames, one PNG per time step.
    Frames(FramesSink),
    /// A Zarr v3 store that xarray opens: the variables with their coordinates, times and units.
    Zarr(ZarrSink),
    /// The object catalog of an `objects` step, one row per object and step.
    Catalog(CatalogSink),
}

/// A Zarr sink: one chunk per variable and step, compressed, CF-annotated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZarrSink {
    /// Folder of the store; it must not exist yet or be empty.
    pub path: String,
    /// Variables written, all on one grid.
    pub variables: Vec<String>,
}

/// A catalog sink: Parquet (`.parquet`) or Arrow IPC (`.arrow`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSink {
    /// The output of the `objects` step whose catalog is written.
    pub objects: String,
    /// File written, ending in `.parquet` or `.arrow`.
    pub path: String,
}

/// A frames sink: each completed time step drawn as one PNG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramesSink {
    /// Folder the PNGs are written to (created if missing); unset: no PNGs (a wall-only sink).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Display channel the frames are published on (`isotach serve`'s `FrameService`), for wall
    /// nodes and viewers subscribed to it; unset: only the job's own channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
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

/// One layer of a frame. The first layer is the colour field (it also gives the title, the time
/// and the colorbar); later layers are drawn over it in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// The variable drawn.
    pub variable: String,
    /// How it is drawn (default: a colour field).
    #[serde(default, skip_serializing_if = "LayerStyle::is_field")]
    pub style: LayerStyle,
    /// Colormap of a field layer (default viridis).
    #[serde(default = "default_colormap")]
    pub colormap: Colormap,
    /// Value range mapped onto the colormap; default: the field's finite range at each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f32; 2]>,
}

/// How a layer draws its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerStyle {
    /// Values through a colormap: the frame's base, its first layer.
    #[default]
    Field,
    /// Object ids (an `objects` step's output): each object outlined and lightly filled in a
    /// colour of its own.
    Objects,
}

impl LayerStyle {
    /// True for the default, a colour field.
    pub fn is_field(&self) -> bool {
        *self == LayerStyle::Field
    }
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
    /// The vertical coordinates (pressure levels) that data variables are laid out on, between
    /// time and latitude: `(time, level, lat, lon)`.
    pub vertical: Vec<VerticalAxis>,
    /// Global attributes.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl DatasetInfo {
    /// The vertical axis `variable` lies on, when it is laid out `(time, level, lat, lon)`.
    pub fn vertical_axis_of(&self, variable: &str) -> Option<&VerticalAxis> {
        let info = self.variables.iter().find(|v| v.name == variable)?;
        match info.dims.as_slice() {
            [time, level, lat, lon] if time == "time" && lat == "lat" && lon == "lon" => {
                self.vertical.iter().find(|axis| &axis.name == level)
            }
            _ => None,
        }
    }
}

/// A vertical coordinate with its values, for example pressure levels in hPa.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerticalAxis {
    /// The coordinate's name (`level`, `plev`, `isobaricInhPa`, ...).
    pub name: String,
    /// Its `units` attribute (empty when absent).
    pub units: String,
    /// Its values, in stored order.
    pub values: Vec<f64>,
}

impl VerticalAxis {
    /// The levels as pressures in Pa; an error names the axis and its units when they are not
    /// pressure units.
    pub fn pressure_pa(&self) -> Result<Vec<f64>, String> {
        let to_pa = crate::units::conversion(&self.units, "Pa").map_err(|e| {
            format!(
                "vertical coordinate {:?} has units {:?}, not pressure levels: {e}",
                self.name, self.units
            )
        })?;
        Ok(self
            .values
            .iter()
            .map(|p| p * to_pa.scale + to_pa.offset)
            .collect())
    }
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
    /// The grid stage of every variable: 0 is the source grid; each coarsen, regrid or objects
    /// step starts a new one. Cell-by-cell steps read and write within one stage.
    pub stage_of: BTreeMap<String, usize>,
    /// The grid of each stage, as an index: an objects step starts a stage on its input's grid,
    /// so two stages may share one.
    pub stage_grid: Vec<usize>,
    /// The source variables laid out on levels, `(time, level, lat, lon)`, with their vertical
    /// axis. Their tiles hold every level (level-major); only `ivt` reads them.
    pub on_levels: BTreeMap<String, VerticalAxis>,
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
        let mut on_levels: BTreeMap<String, VerticalAxis> = BTreeMap::new();
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
                let Some(axis) = dataset.vertical_axis_of(name) else {
                    return Err(SpecError::invalid(
                        format!("source.variables[{i}]"),
                        format!(
                            "{name:?} has dimensions ({}); fields are read on (time, lat, lon), \
                             or on (time, level, lat, lon) with a level coordinate",
                            info.dims.join(", ")
                        ),
                    ));
                };
                on_levels.insert(name.clone(), axis.clone());
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

        let mut stage_of: BTreeMap<String, usize> =
            units.keys().map(|name| (name.clone(), 0)).collect();
        let mut stage_grid = vec![0];
        for (i, step) in self.steps.iter().enumerate() {
            let described = validate_step(i, step, &units, &stage_of, &on_levels, steps.len())?;
            let stage = match step.scope() {
                StepScope::WholeField => {
                    let grid = match step {
                        // Objects and models label the grid they read.
                        StepSpec::Objects { .. } | StepSpec::Infer { .. } => {
                            let input = step.inputs().into_iter().next().unwrap_or_default();
                            stage_grid[stage_of.get(&input).copied().unwrap_or(0)]
                        }
                        _ => stage_grid.iter().max().map_or(0, |g| g + 1),
                    };
                    stage_grid.push(grid);
                    stage_grid.len() - 1
                }
                StepScope::Cells => step
                    .inputs()
                    .first()
                    .and_then(|input| stage_of.get(input).copied())
                    .unwrap_or(0),
            };
            for (output, (unit, long_name)) in step.outputs().into_iter().zip(described) {
                stage_of.insert(output.to_owned(), stage);
                units.insert(output.to_owned(), unit);
                long_names.insert(output.to_owned(), long_name);
            }
        }

        if self.sinks.is_empty() {
            return Err(SpecError::invalid(
                "sink",
                "no sink is given; results would go nowhere",
            ));
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            let (list, names): (&str, Vec<&String>) = match sink {
                SinkSpec::Frames(frames) => (
                    "layers",
                    frames.layers.iter().map(|l| &l.variable).collect(),
                ),
                SinkSpec::Zarr(zarr) => ("variables", zarr.variables.iter().collect()),
                SinkSpec::Catalog(_) => ("objects", Vec::new()),
            };
            if let Some((j, name)) = names
                .iter()
                .enumerate()
                .find(|(_, name)| on_levels.contains_key(**name))
            {
                return Err(SpecError::invalid(
                    format!("sink[{i}].{list}[{j}]"),
                    format!(
                        "{name:?} lies on {} levels; sinks take fields on (time, lat, lon), so \
                         reduce it first (for example with ivt)",
                        on_levels[*name].name
                    ),
                ));
            }
            match sink {
                SinkSpec::Frames(frames) => validate_frames(i, frames, &units)?,
                SinkSpec::Zarr(zarr) => validate_zarr(i, zarr, &units, &stage_of, &stage_grid)?,
                SinkSpec::Catalog(catalog) => validate_catalog(i, catalog, &self.steps)?,
            }
        }
        Ok(ValidatedPipeline {
            spec: self.clone(),
            steps,
            units,
            long_names,
            stage_of,
            stage_grid,
            on_levels,
        })
    }
}

/// Checks one step against the variables defined before it; returns the units and long name of
/// each of its outputs, in the order of [`StepSpec::outputs`].
fn validate_step(
    i: usize,
    step: &StepSpec,
    units: &BTreeMap<String, String>,
    stage_of: &BTreeMap<String, usize>,
    on_levels: &BTreeMap<String, VerticalAxis>,
    selected_steps: usize,
) -> Result<Vec<(String, String)>, SpecError> {
    let field = |name: &str| format!("step[{i}].{name}");
    let op = step.op();
    if let StepSpec::Expr { expr, .. } = step {
        check_expression(expr).map_err(|message| SpecError::invalid(field("expr"), message))?;
    }
    let inputs = step.inputs();
    if inputs.is_empty() {
        return Err(SpecError::invalid(
            field("inputs"),
            format!("{op} reads no variable"),
        ));
    }
    let mut input_units = Vec::new();
    for input in &inputs {
        let unit = units.get(input).ok_or_else(|| SpecError::UnknownVariable {
            name: input.clone(),
            place: format!("step[{i}] ({op}) inputs: source variables and earlier step outputs"),
            available: units.keys().cloned().collect(),
        })?;
        input_units.push(unit.clone());
    }
    let outputs = step.outputs();
    for (k, output) in outputs.iter().enumerate() {
        let place = if k == 0 {
            field("output")
        } else {
            field(&format!("components[{}]", k - 1))
        };
        if output.is_empty()
            || output.len() > 128
            || output.starts_with(|c: char| c.is_ascii_digit())
            || !output
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(SpecError::invalid(
                place,
                format!(
                    "{output:?} must be 1 to 128 letters, digits or '_', not starting with a digit"
                ),
            ));
        }
        if units.contains_key(*output) || outputs[..k].contains(output) {
            return Err(SpecError::invalid(
                place,
                format!(
                    "{output:?} is already defined by the source or an earlier output; choose \
                     another name"
                ),
            ));
        }
    }
    let is_ivt = matches!(step, StepSpec::Ivt { .. });
    if !is_ivt && let Some(input) = inputs.iter().find(|name| on_levels.contains_key(*name)) {
        return Err(SpecError::invalid(
            field("inputs"),
            format!(
                "{op} works on fields, but {input:?} lies on {} levels; reduce it first (ivt \
                 integrates humidity and wind over pressure levels)",
                on_levels[input].name
            ),
        ));
    }
    if step.scope() == StepScope::Cells {
        let stages: Vec<(&String, usize)> = inputs
            .iter()
            .map(|name| (name, stage_of.get(name).copied().unwrap_or(0)))
            .collect();
        if let Some((other, _)) = stages.iter().find(|(_, s)| *s != stages[0].1) {
            return Err(SpecError::invalid(
                field("inputs"),
                format!(
                    "{op} works cell by cell, but {:?} and {other:?} lie on different grids \
                     (a coarsen, regrid or objects step stands between them)",
                    stages[0].0
                ),
            ));
        }
    }
    let same_units = |what: &str| -> Result<(), SpecError> {
        if let Some(other) = input_units.iter().find(|u| **u != input_units[0]) {
            return Err(SpecError::invalid(
                field(what),
                format!(
                    "{op} components must share units, got {:?} and {other:?}",
                    input_units[0]
                ),
            ));
        }
        Ok(())
    };
    let first_units = input_units[0].clone();
    let input = &inputs[0];
    if let StepSpec::Ivt {
        humidity,
        wind,
        components,
        ..
    } = step
    {
        validate_ivt(&field, humidity, wind, units, on_levels)?;
        let transport = "kg m-1 s-1".to_owned();
        let mut described = vec![(transport.clone(), "Integrated vapour transport".to_owned())];
        if components.is_some() {
            described.push((
                transport.clone(),
                "Eastward integrated vapour transport".to_owned(),
            ));
            described.push((
                transport,
                "Northward integrated vapour transport".to_owned(),
            ));
        }
        return Ok(described);
    }
    let described = match step {
        StepSpec::Magnitude { inputs, .. } => {
            if inputs.len() < 2 {
                return Err(SpecError::invalid(
                    field("inputs"),
                    format!(
                        "magnitude needs at least 2 components, got {}",
                        inputs.len()
                    ),
                ));
            }
            same_units("inputs")?;
            (
                first_units,
                format!("Magnitude of {}", inputs.join(" and ")),
            )
        }
        StepSpec::Expr { expr, units, .. } => (units.clone(), expr.clone()),
        StepSpec::Units { to, .. } => {
            unit_conversion(&first_units, to).map_err(|message| {
                SpecError::invalid(field("to"), format!("{input:?}: {message}"))
            })?;
            (to.clone(), format!("{input} in {to}"))
        }
        StepSpec::Coarsen { factor, .. } => {
            if factor.contains(&0) {
                return Err(SpecError::invalid(
                    field("factor"),
                    format!("{factor:?} must be at least 1 in both directions"),
                ));
            }
            (
                first_units,
                format!("{input}, {}×{} block mean", factor[0], factor[1]),
            )
        }
        StepSpec::Regrid { resolution_deg, .. } => {
            if !(resolution_deg.is_finite() && *resolution_deg > 0.0 && *resolution_deg <= 90.0) {
                return Err(SpecError::invalid(
                    field("resolution_deg"),
                    format!("{resolution_deg} must be a number of degrees in (0, 90]"),
                ));
            }
            (first_units, format!("{input} on a {resolution_deg}° grid"))
        }
        StepSpec::Anomaly {
            by, climatology, ..
        } => {
            if let Some(store) = climatology
                && (store.uri.trim().is_empty() || store.variable.trim().is_empty())
            {
                return Err(SpecError::invalid(
                    field("climatology"),
                    format!("{store:?}: give the store's uri and the climatology variable in it"),
                ));
            }
            let period = match by {
                ClimatologyPeriod::Month => "monthly",
                ClimatologyPeriod::DayOfYear => "daily",
            };
            (
                first_units,
                format!("{input} anomaly from the {period} climatology"),
            )
        }
        StepSpec::Normalize { mean, std, .. } => {
            match (mean, std) {
                (None, None) => {}
                (Some(m), Some(s)) if m.is_finite() && s.is_finite() && *s > 0.0 => {}
                (Some(m), Some(s)) => {
                    return Err(SpecError::invalid(
                        field("std"),
                        format!("mean {m} and std {s} must be finite, std above 0"),
                    ));
                }
                _ => {
                    return Err(SpecError::invalid(
                        field("mean"),
                        "give both mean and std, or neither for running statistics",
                    ));
                }
            }
            ("1".to_owned(), format!("{input}, standardised"))
        }
        StepSpec::Rolling { window, .. } => {
            if *window == 0 || *window as usize > selected_steps {
                return Err(SpecError::invalid(
                    field("window"),
                    format!("{window} must be between 1 and the {selected_steps} steps selected"),
                ));
            }
            (first_units, format!("{input}, {window}-step mean"))
        }
        StepSpec::Threshold {
            value, percentile, ..
        } => match (value, percentile) {
            (Some(v), None) if v.is_finite() => ("1".to_owned(), format!("{input} ≥ {v}")),
            (None, Some(p)) if (0.0..=100.0).contains(p) => {
                ("1".to_owned(), format!("{input} ≥ its {p}th percentile"))
            }
            (Some(v), None) => {
                return Err(SpecError::invalid(
                    field("value"),
                    format!("{v} is not finite"),
                ));
            }
            (None, Some(p)) => {
                return Err(SpecError::invalid(
                    field("percentile"),
                    format!("{p} is outside 0..=100"),
                ));
            }
            _ => {
                return Err(SpecError::invalid(
                    field("value"),
                    "give exactly one of value and percentile",
                ));
            }
        },
        StepSpec::Objects {
            threshold,
            min_area_km2,
            min_duration_steps,
            wind,
            criterion,
            ..
        } => {
            if !threshold.is_finite() {
                return Err(SpecError::invalid(
                    field("threshold"),
                    format!("{threshold} is not finite"),
                ));
            }
            if !(min_area_km2.is_finite() && *min_area_km2 >= 0.0) {
                return Err(SpecError::invalid(
                    field("min_area_km2"),
                    format!("{min_area_km2} must be a finite area, 0 or more"),
                ));
            }
            if *min_duration_steps == 0 {
                return Err(SpecError::invalid(
                    field("min_duration_steps"),
                    "0: an object lasts at least 1 step",
                ));
            }
            if let Some(wind) = wind {
                let wind_units: Vec<&String> =
                    wind.iter().filter_map(|name| units.get(name)).collect();
                if wind_units.len() == 2 && wind_units[0] != wind_units[1] {
                    return Err(SpecError::invalid(
                        field("wind"),
                        format!(
                            "{:?} and {:?} must share units, got {:?} and {:?}",
                            wind[0], wind[1], wind_units[0], wind_units[1]
                        ),
                    ));
                }
                if stage_of.get(&wind[0]) != stage_of.get(input)
                    || stage_of.get(&wind[1]) != stage_of.get(input)
                {
                    return Err(SpecError::invalid(
                        field("wind"),
                        format!(
                            "{:?} and {:?} must lie on the grid of {input:?}",
                            wind[0], wind[1]
                        ),
                    ));
                }
            }
            if let Some(c) = criterion {
                if wind.is_none() {
                    return Err(SpecError::invalid(
                        field("criterion"),
                        "the atmospheric-river criterion needs `wind = [eastward, northward]` IVT components",
                    ));
                }
                let numbers = [c.min_length_km, c.min_aspect, c.min_coherence];
                if numbers.iter().any(|n| !n.is_finite() || *n < 0.0) || c.min_coherence > 1.0 {
                    return Err(SpecError::invalid(
                        field("criterion"),
                        format!("{c:?}: lengths and ratios must be finite and ≥ 0, coherence ≤ 1"),
                    ));
                }
            }
            ("1".to_owned(), format!("objects of {input} ≥ {threshold}"))
        }
        StepSpec::Infer {
            model,
            inputs,
            units,
            workers,
            model_output,
            patch_size,
            halo,
            batch_size,
            max_batch_delay_ms,
            max_batches_in_flight,
            timeout_ms,
            ..
        } => {
            validate_infer(
                &field,
                InferChecks {
                    model,
                    inputs,
                    workers,
                    model_output: model_output.as_deref(),
                    patch_size: *patch_size,
                    halo: *halo,
                    batch_size: *batch_size,
                    max_batch_delay_ms: *max_batch_delay_ms,
                    max_batches_in_flight: *max_batches_in_flight,
                    timeout_ms: *timeout_ms,
                },
                stage_of,
            )?;
            (units.clone(), format!("{model} on {}", inputs.join(", ")))
        }
        StepSpec::Ivt { .. } => unreachable!("ivt is described above"),
    };
    Ok(vec![described])
}

/// The parts of an `infer` step the validator checks.
struct InferChecks<'a> {
    model: &'a str,
    inputs: &'a [String],
    workers: &'a [String],
    model_output: Option<&'a str>,
    patch_size: u32,
    halo: u32,
    batch_size: u32,
    max_batch_delay_ms: u64,
    max_batches_in_flight: u32,
    timeout_ms: u64,
}

/// The largest patch edge an `infer` step may ask for, in cells.
pub const MAX_INFER_PATCH: u32 = 4096;
/// The largest `batch_size` of an `infer` step.
pub const MAX_INFER_BATCH: u32 = 1024;

fn validate_infer(
    field: &dyn Fn(&str) -> String,
    c: InferChecks<'_>,
    stage_of: &BTreeMap<String, usize>,
) -> Result<(), SpecError> {
    let invalid = |name: &str, message: String| Err(SpecError::invalid(field(name), message));
    if c.model.trim().is_empty() {
        return invalid("model", "is empty; name the model the workers serve".into());
    }
    if c.model_output.is_some_and(|o| o.trim().is_empty()) {
        return invalid(
            "model_output",
            "is empty; omit it to use the model's first output".into(),
        );
    }
    if let Some(other) = c
        .inputs
        .iter()
        .find(|i| stage_of.get(*i) != stage_of.get(&c.inputs[0]))
    {
        return invalid(
            "inputs",
            format!(
                "{:?} and {other:?} lie on different grids; a model's channels must share one",
                c.inputs[0]
            ),
        );
    }
    if c.workers.is_empty() {
        return invalid(
            "workers",
            "is empty; give at least one http://host:port".into(),
        );
    }
    for (k, worker) in c.workers.iter().enumerate() {
        let rest = worker
            .strip_prefix("http://")
            .or_else(|| worker.strip_prefix("https://"));
        if rest.is_none_or(|hostport| hostport.is_empty() || hostport.contains('/')) {
            return invalid(
                &format!("workers[{k}]"),
                format!("{worker:?} is not an endpoint like http://127.0.0.1:8001"),
            );
        }
        if c.workers[..k].contains(worker) {
            return invalid(
                &format!("workers[{k}]"),
                format!("{worker:?} is listed twice"),
            );
        }
    }
    if !(16..=MAX_INFER_PATCH).contains(&c.patch_size) {
        return invalid(
            "patch_size",
            format!(
                "{} must be between 16 and {MAX_INFER_PATCH} cells",
                c.patch_size
            ),
        );
    }
    if 2 * c.halo >= c.patch_size {
        return invalid(
            "halo",
            format!(
                "{} leaves no centre in a {}-cell patch; it must be below half the patch",
                c.halo, c.patch_size
            ),
        );
    }
    if !(1..=MAX_INFER_BATCH).contains(&c.batch_size) {
        return invalid(
            "batch_size",
            format!("{} must be between 1 and {MAX_INFER_BATCH}", c.batch_size),
        );
    }
    if c.max_batch_delay_ms > 60_000 {
        return invalid(
            "max_batch_delay_ms",
            format!("{} is over a minute", c.max_batch_delay_ms),
        );
    }
    if c.max_batches_in_flight == 0 {
        return invalid(
            "max_batches_in_flight",
            "0: at least 1 request must run".into(),
        );
    }
    if c.timeout_ms == 0 {
        return invalid("timeout_ms", "0: a request needs time to run".into());
    }
    Ok(())
}

/// `ivt` reads humidity and both winds on one set of pressure levels, in units it can convert.
fn validate_ivt(
    field: &dyn Fn(&str) -> String,
    humidity: &str,
    wind: &[String; 2],
    units: &BTreeMap<String, String>,
    on_levels: &BTreeMap<String, VerticalAxis>,
) -> Result<(), SpecError> {
    let named = [
        ("humidity", humidity),
        ("wind[0]", wind[0].as_str()),
        ("wind[1]", wind[1].as_str()),
    ];
    for (place, name) in named {
        if !on_levels.contains_key(name) {
            return Err(SpecError::invalid(
                field(place),
                format!(
                    "ivt integrates over pressure levels, but {name:?} is a field on (time, lat, \
                     lon); name a variable on (time, level, lat, lon)"
                ),
            ));
        }
    }
    let axis = &on_levels[humidity];
    for name in wind {
        if on_levels[name.as_str()] != *axis {
            return Err(SpecError::invalid(
                field("wind"),
                format!(
                    "{name:?} lies on {:?} levels, {humidity:?} on {:?}; ivt needs one set of levels",
                    on_levels[name.as_str()].name,
                    axis.name
                ),
            ));
        }
    }
    if axis.values.len() < 2 {
        return Err(SpecError::invalid(
            field("humidity"),
            format!(
                "{humidity:?} has {} level(s) on {:?}; integrating needs at least 2",
                axis.values.len(),
                axis.name
            ),
        ));
    }
    axis.pressure_pa()
        .map_err(|message| SpecError::invalid(field("humidity"), message))?;
    unit_conversion(&units[humidity], "kg kg-1").map_err(|message| {
        SpecError::invalid(
            field("humidity"),
            format!("{humidity:?} must be specific humidity: {message}"),
        )
    })?;
    if units[wind[0].as_str()] != units[wind[1].as_str()] {
        return Err(SpecError::invalid(
            field("wind"),
            format!(
                "{:?} and {:?} must share units, got {:?} and {:?}",
                wind[0],
                wind[1],
                units[wind[0].as_str()],
                units[wind[1].as_str()]
            ),
        ));
    }
    for (place, name) in [("wind[0]", &wind[0]), ("wind[1]", &wind[1])] {
        unit_conversion(&units[name.as_str()], "m s-1").map_err(|message| {
            SpecError::invalid(
                field(place),
                format!("{name:?} must be a wind speed: {message}"),
            )
        })?;
    }
    Ok(())
}

fn check_expression(expr: &str) -> Result<(), String> {
    crate::expr::Expr::parse(expr)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn unit_conversion(from: &str, to: &str) -> Result<(), String> {
    crate::units::conversion(from, to)
        .map(|_| ())
        .map_err(|e| e.to_string())
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

/// True for a display channel name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
pub fn valid_channel_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn validate_frames(
    i: usize,
    frames: &FramesSink,
    units: &BTreeMap<String, String>,
) -> Result<(), SpecError> {
    let field = |name: &str| format!("sink[{i}].{name}");
    match (&frames.path, &frames.channel) {
        (None, None) => {
            return Err(SpecError::invalid(
                field("path"),
                "is missing, and so is channel: a frames sink writes PNGs to a folder (path), \
                 publishes to a display channel (channel), or both",
            ));
        }
        (Some(path), _) if path.trim().is_empty() => {
            return Err(SpecError::invalid(field("path"), "is empty"));
        }
        (_, Some(channel)) if !valid_channel_name(channel) => {
            return Err(SpecError::invalid(
                field("channel"),
                format!(
                    "{channel:?} is not a channel name: 1 to 64 letters, digits, '-', '_' or '.'"
                ),
            ));
        }
        _ => {}
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
        match (j, layer.style) {
            (0, LayerStyle::Field) | (1.., LayerStyle::Objects) => {}
            (0, style) => {
                return Err(SpecError::invalid(
                    format!("sink[{i}].layers[0].style"),
                    format!(
                        "{style:?} cannot come first: a frame starts with its colour field \
                         (style \"field\"), and other layers are drawn over it"
                    ),
                ));
            }
            (_, LayerStyle::Field) => {
                return Err(SpecError::invalid(
                    format!("sink[{i}].layers[{j}].style"),
                    format!(
                        "{:?} is a second colour field; a frame has one (layers[0], {:?}): draw \
                         it in a frames sink of its own, or as objects",
                        layer.variable, frames.layers[0].variable
                    ),
                ));
            }
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

fn validate_zarr(
    i: usize,
    zarr: &ZarrSink,
    units: &BTreeMap<String, String>,
    stage_of: &BTreeMap<String, usize>,
    stage_grid: &[usize],
) -> Result<(), SpecError> {
    let field = |name: &str| format!("sink[{i}].{name}");
    let grid_of = |name: &String| stage_of.get(name).map(|s| stage_grid[*s]);
    if zarr.path.trim().is_empty() {
        return Err(SpecError::invalid(field("path"), "is empty"));
    }
    if zarr.variables.is_empty() {
        return Err(SpecError::invalid(
            field("variables"),
            "is empty; name at least one variable to write",
        ));
    }
    for (j, name) in zarr.variables.iter().enumerate() {
        if !units.contains_key(name) {
            return Err(SpecError::UnknownVariable {
                name: name.clone(),
                place: format!("sink[{i}].variables[{j}]: source variables and step outputs"),
                available: units.keys().cloned().collect(),
            });
        }
        if zarr.variables[..j].contains(name) {
            return Err(SpecError::invalid(
                field(&format!("variables[{j}]")),
                format!("{name:?} is listed twice"),
            ));
        }
        if grid_of(name) != grid_of(&zarr.variables[0]) {
            return Err(SpecError::invalid(
                field(&format!("variables[{j}]")),
                format!(
                    "{name:?} and {:?} lie on different grids; a store holds one grid, so write \
                     them to two zarr sinks",
                    zarr.variables[0]
                ),
            ));
        }
    }
    Ok(())
}

fn validate_catalog(i: usize, catalog: &CatalogSink, steps: &[StepSpec]) -> Result<(), SpecError> {
    let field = |name: &str| format!("sink[{i}].{name}");
    let producers: Vec<String> = steps
        .iter()
        .filter(|s| matches!(s, StepSpec::Objects { .. }))
        .map(|s| s.output().to_owned())
        .collect();
    if !producers.contains(&catalog.objects) {
        return Err(SpecError::UnknownVariable {
            name: catalog.objects.clone(),
            place: format!("sink[{i}].objects: outputs of objects steps"),
            available: producers,
        });
    }
    if !(catalog.path.ends_with(".parquet") || catalog.path.ends_with(".arrow")) {
        return Err(SpecError::invalid(
            field("path"),
            format!("{:?} must end in .parquet or .arrow", catalog.path),
        ));
    }
    Ok(())
}
