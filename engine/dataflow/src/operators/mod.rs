//! The operator library: one file per operator, each an extension trait on a timely stream or a
//! differential collection.

mod anomaly;
mod assemble_fields;
mod coarsen;
mod convert_units;
mod expr;
mod infer;
mod ivt;
mod magnitude;
mod normalize;
mod objects;
mod read_tiles;
mod regrid;
mod rolling;
mod split_fields;
mod step_statistics;
mod threshold;

#[allow(unused_imports)]
pub use anomaly::*;
pub use assemble_fields::{AssembleFields, FieldPlan};
#[allow(unused_imports)]
pub use coarsen::*;
#[allow(unused_imports)]
pub use convert_units::*;
#[allow(unused_imports)]
pub use expr::*;
pub use infer::{Infer, InferOutput};
pub use ivt::{IntegratedVapourTransport, IvtConfig, ivt_values};
pub use magnitude::{Magnitude, magnitude_values};
#[allow(unused_imports)]
pub use normalize::*;
#[allow(unused_imports)]
pub use objects::*;
pub use read_tiles::ReadTiles;
#[allow(unused_imports)]
pub use regrid::*;
#[allow(unused_imports)]
pub use rolling::*;
pub use split_fields::{SplitFields, block_regions};
pub use step_statistics::{StepStatistics, TilePartial};
#[allow(unused_imports)]
pub use threshold::*;
