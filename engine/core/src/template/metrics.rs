//! What a sweep measures on a point's outputs: object counts and areas from an object catalog,
//! and the intersection over union of a prediction and labels.

use std::collections::BTreeSet;

use arrow::array::{Array, BooleanArray, Float64Array, UInt64Array};
use arrow::record_batch::RecordBatch;

/// The object metrics of one catalog table (one row per object and step, as a `catalog` sink
/// writes it).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSummary {
    /// Rows: one per object and step.
    pub object_steps: u64,
    /// Distinct object ids.
    pub objects: u64,
    /// Sum of `area_km2` over every row (object-steps), km².
    pub area_km2_total: f64,
    /// Mean `area_km2` of a row; `None` without rows.
    pub area_km2_mean: Option<f64>,
    /// Largest `area_km2` of a row; `None` without rows.
    pub area_km2_max: Option<f64>,
    /// Distinct objects that are atmospheric rivers (`object_is_ar`); `None` when the objects
    /// step has no criterion (the column is null).
    pub ar_objects: Option<u64>,
}

impl CatalogSummary {
    /// Summarises catalog record batches (columns `id`, `area_km2`, `object_is_ar`).
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self, String> {
        let mut ids = BTreeSet::new();
        let mut ar_ids = BTreeSet::new();
        let mut any_verdict = false;
        let mut rows = 0u64;
        let mut total = 0.0;
        let mut max: Option<f64> = None;
        for batch in batches {
            let id = column::<UInt64Array>(batch, "id", "UInt64")?;
            let area = column::<Float64Array>(batch, "area_km2", "Float64")?;
            let verdict = column::<BooleanArray>(batch, "object_is_ar", "Boolean")?;
            for row in 0..batch.num_rows() {
                let id = id.value(row);
                let area = area.value(row);
                ids.insert(id);
                if verdict.is_valid(row) {
                    any_verdict = true;
                    if verdict.value(row) {
                        ar_ids.insert(id);
                    }
                }
                rows += 1;
                total += area;
                max = Some(max.map_or(area, |m: f64| m.max(area)));
            }
        }
        Ok(Self {
            object_steps: rows,
            objects: ids.len() as u64,
            area_km2_total: total,
            area_km2_mean: (rows > 0).then(|| total / rows as f64),
            area_km2_max: max,
            ar_objects: any_verdict.then_some(ar_ids.len() as u64),
        })
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str, kind: &str) -> Result<&'a T, String> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| format!("has no column {name:?}; is it an object catalog?"))?;
    column
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column {name:?} is {}, not {kind}", column.data_type()))
}

/// Whether a cell counts as positive: finite and at least `min` when given, finite and non-zero
/// otherwise (object ids are NaN outside objects, masks are 0 or 1).
pub fn is_positive(value: f32, min: Option<f32>) -> bool {
    value.is_finite()
        && match min {
            Some(min) => value >= min,
            None => value != 0.0,
        }
}

/// Cells counted for an intersection over union, pooled over any number of fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IouCounts {
    /// Cells positive in both.
    pub intersection: u64,
    /// Cells positive in either.
    pub union: u64,
}

impl IouCounts {
    /// Adds one field of each, cell by cell (the same grid, the same order); an error when their
    /// lengths differ.
    pub fn add(
        &mut self,
        prediction: &[f32],
        labels: &[f32],
        prediction_min: Option<f32>,
        labels_min: Option<f32>,
    ) -> Result<(), String> {
        if prediction.len() != labels.len() {
            return Err(format!(
                "the prediction has {} cells and the labels {}; they must lie on one grid",
                prediction.len(),
                labels.len()
            ));
        }
        for (&p, &l) in prediction.iter().zip(labels) {
            let p = is_positive(p, prediction_min);
            let l = is_positive(l, labels_min);
            self.intersection += u64::from(p && l);
            self.union += u64::from(p || l);
        }
        Ok(())
    }

    /// `intersection / union`; `None` when neither has a positive cell.
    pub fn iou(&self) -> Option<f64> {
        (self.union > 0).then(|| self.intersection as f64 / self.union as f64)
    }
}
