use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::LatLonGrid;

/// One variable over the whole grid at one time step: what a frame is drawn from. A field is only
/// assembled once every tile of its step is complete.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Variable name.
    pub variable: String,
    /// Units of the values.
    pub units: String,
    /// Human-readable name for titles.
    pub long_name: String,
    /// Time step index.
    pub step: u64,
    /// Instant of the step.
    pub time: DateTime<Utc>,
    /// The grid the values lie on.
    pub grid: Arc<LatLonGrid>,
    /// `grid.lat.len() × grid.lon.len()` values, row-major; NaN where missing.
    pub values: Vec<f32>,
}

impl Field {
    /// The value at (row, column).
    pub fn at(&self, row: usize, col: usize) -> f32 {
        self.values[row * self.grid.lon.len() + col]
    }

    /// Smallest and largest finite values, or `None` when all are NaN.
    pub fn finite_range(&self) -> Option<(f32, f32)> {
        self.values
            .iter()
            .filter(|v| v.is_finite())
            .fold(None, |acc, &v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })
    }
}
