//! The Isotach engine: a pipeline spec planned onto a timely dataflow.
//!
//! Timestamps are time-step indices. Tile requests enter at their step, are sharded across workers
//! by region key ([`operators::ReadTiles`]), transformed per region ([`operators::Magnitude`]), and
//! gathered per step ([`operators::AssembleFields`]); a field leaves only when the frontier has
//! passed its step on every worker, so no frame is ever drawn half-computed. Per-step statistics
//! are maintained in differential dataflow ([`operators::StepStatistics`]) with integer
//! accumulators, so they are identical whatever the number of workers.
//!
//! [`run_pipeline`] runs a validated spec and hands each completed [`isotach_core::Field`] to a
//! bounded channel: a slow consumer (the renderer) holds the dataflow back instead of letting
//! fields pile up in memory.

mod bundle;
mod climatology_store;
mod error;
pub mod inference;
pub mod operators;
mod progress;
mod runner;
mod stats;

pub use bundle::TileBundle;
pub use climatology_store::load_climatology;
pub use error::{EngineError, ErrorSlot, Result};
pub use progress::{Progress, ProgressSnapshot, StageCounter, StageProgress, Timer, TimerSnapshot};
pub use runner::{
    Cluster, PreparedPipeline, RunConfig, RunReport, prepare_pipeline, run_pipeline, run_prepared,
    variable_grid, zarr_sink_layout,
};
pub use stats::{StepStats, stats_table};
