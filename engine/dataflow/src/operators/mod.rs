//! The operator library: one file per operator, each an extension trait on a timely stream or a
//! differential collection.

mod assemble_fields;
mod magnitude;
mod read_tiles;
mod step_statistics;

pub use assemble_fields::{AssembleFields, FieldPlan};
pub use magnitude::{Magnitude, magnitude_values};
pub use read_tiles::ReadTiles;
pub use step_statistics::{StepStatistics, TilePartial};
