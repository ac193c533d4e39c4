use std::sync::Arc;

use arrow::array::{Float64Array, TimestampSecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};

use crate::operators::TilePartial;

/// Statistics of one variable at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Step index.
    pub step: u64,
    /// Instant of the step.
    pub time: DateTime<Utc>,
    /// Largest value.
    pub max: f64,
    /// Smallest value.
    pub min: f64,
    /// Area-weighted mean.
    pub mean: f64,
    /// Number of finite cells.
    pub valid_cells: u64,
}

impl StepStats {
    pub(crate) fn from_partial(step: u64, time: DateTime<Utc>, p: &TilePartial) -> Self {
        Self {
            step,
            time,
            max: p.max_centi as f64 / 100.0,
            min: p.min_centi as f64 / 100.0,
            mean: if p.area > 0 {
                p.weighted_sum as f64 / p.area as f64 / 100.0
            } else {
                f64::NAN
            },
            valid_cells: p.valid.max(0) as u64,
        }
    }
}

/// The statistics as an Arrow table (step, time, max, min, mean, valid_cells), with the variable
/// and its units in the schema metadata.
pub fn stats_table(
    variable: &str,
    units: &str,
    stats: &[StepStats],
) -> Result<RecordBatch, ArrowError> {
    let metadata: std::collections::HashMap<String, String> = [
        ("variable".to_owned(), variable.to_owned()),
        ("units".to_owned(), units.to_owned()),
    ]
    .into();
    let schema = Schema::new(vec![
        Field::new("step", DataType::UInt64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            false,
        ),
        Field::new("max", DataType::Float64, false),
        Field::new("min", DataType::Float64, false),
        Field::new("mean", DataType::Float64, false),
        Field::new("valid_cells", DataType::UInt64, false),
    ])
    .with_metadata(metadata);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(UInt64Array::from_iter_values(stats.iter().map(|s| s.step))),
            Arc::new(
                TimestampSecondArray::from_iter_values(stats.iter().map(|s| s.time.timestamp()))
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from_iter_values(stats.iter().map(|s| s.max))),
            Arc::new(Float64Array::from_iter_values(stats.iter().map(|s| s.min))),
            Arc::new(Float64Array::from_iter_values(stats.iter().map(|s| s.mean))),
            Arc::new(UInt64Array::from_iter_values(
                stats.iter().map(|s| s.valid_cells),
            )),
        ],
    )
}
