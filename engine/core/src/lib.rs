//! Shared vocabulary of Isotach.
//!
//! Every other crate speaks in these types: a [`LatLonGrid`] and a [`TimeAxis`] describe where and
//! when a dataset lives; a [`Tile`] is the unit of work (one variable, one time step, one rectangular
//! region, values in an Arrow buffer); a [`Field`] is a whole time step of one variable, assembled
//! once the dataflow frontier says the step is complete; a [`PipelineSpec`] is what a user asks for,
//! and [`PipelineSpec::validate`] checks it against a [`DatasetInfo`] before any work starts. A
//! [`SweepTemplate`] is a spec with placeholders and a grid of parameters: one spec per point.
//!
//! This crate depends on no other workspace crate.

mod colormap;
pub mod column;
mod error;
pub mod expr;
mod field;
mod frame;
mod grid;
mod spec;
pub mod template;
mod tile;
mod time;
pub mod units;

pub use colormap::Colormap;
pub use error::{Result, SpecError};
pub use field::Field;
pub use frame::Frame;
pub use grid::{GridSelection, LatLonGrid};
pub use spec::{
    ArCriterionSpec, CatalogSink, ClimatologyPeriod, ClimatologyStore, DatasetInfo, FramesSink,
    InferDefaults, LayerSpec, LayerStyle, MAX_CANVAS_PIXELS, MAX_INFER_BATCH, MAX_INFER_PATCH,
    PipelineSpec, RegionBox, SinkSpec, SourceSpec, StepScope, StepSpec, TimeRange,
    ValidatedPipeline, VariableInfo, VerticalAxis, ZarrSink, valid_channel_name,
};
pub use template::{SweepTemplate, TemplateError};
pub use tile::{RegionKey, Tile, TileValues, TileWindow};
pub use time::{Calendar, CfTimeUnits, TimeAxis};

/// Standard gravity (m s-2), as used by ECMWF for vertically integrated quantities.
pub const GRAVITY: f64 = 9.80665;
