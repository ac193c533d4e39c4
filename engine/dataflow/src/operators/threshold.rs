use isotach_core::TileValues;
use timely::dataflow::Stream;
use timely::dataflow::operators::vec::Map;

use super::rolling::{bundle_error, derived_tile, input_tile, per_region_in_step_order};
use crate::{EngineError, ErrorSlot, TileBundle};

/// The level [`Threshold`] compares against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdLevel {
    /// One fixed value for every cell and step.
    Value(f32),
    /// Per cell, this percentile (0 to 100) of the cell's non-NaN values over the steps up to and
    /// including the current one: numpy's `nanpercentile(x[:t+1], p, axis=0)` with the default
    /// `"linear"` method.
    Percentile(f64),
}

/// Exceedance masks: 1 where a value reaches the level, 0 below it, NaN where it is missing.
///
/// ```
/// use isotach_core::TileValues;
/// use isotach_engine::operators::{CellHistory, threshold_values};
///
/// let x = TileValues::from_vec(vec![1.0, 5.0, f32::NAN]);
/// let mask = threshold_values(&x, &[5.0, 5.0, 5.0]);
/// assert_eq!(&mask.as_slice()[..2], &[0.0, 1.0]);
/// assert!(mask.as_slice()[2].is_nan());
///
/// // Percentile levels: each cell's sorted history, interpolated as numpy's "linear" method.
/// let mut history = CellHistory::default();
/// history.push(&TileValues::from_vec(vec![1.0, 4.0])).unwrap();
/// history.push(&TileValues::from_vec(vec![3.0, f32::NAN])).unwrap();
/// assert_eq!(history.percentiles(50.0), vec![2.0, 4.0]);
/// ```
pub trait Threshold<'scope> {
    /// Adds a tile `output` (units `1`): 1.0 where `input ≥ level`, 0.0 where below, NaN where
    /// `input` is NaN.
    ///
    /// With [`ThresholdLevel::Percentile`] every region keeps, per cell, the sorted non-NaN values
    /// of all its steps so far (the steps are processed in time order). That memory grows without
    /// bound: 4 bytes × (non-NaN values seen) + 24 bytes per cell, at most
    /// `cells_in_region × (4 × steps + 24)` bytes per region, so
    /// `grid_cells × (4 × steps + 24)` bytes over all workers (a 1440 × 721 grid over 1000 steps
    /// needs about 4.2 GB). A level outside 0..=100, or a non-finite value, records an error and
    /// the bundles pass through unchanged.
    fn threshold(
        self,
        input: String,
        output: String,
        level: ThresholdLevel,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> Threshold<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn threshold(
        self,
        input: String,
        output: String,
        level: ThresholdLevel,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        match level {
            ThresholdLevel::Value(value) => {
                if value.is_nan() {
                    errors.set(EngineError::Plan(format!(
                        "threshold {input:?} -> {output:?}: level is NaN"
                    )));
                    return self.map(|bundle| bundle);
                }
                self.map(move |mut bundle| {
                    match input_tile(&bundle, &input, "threshold") {
                        Ok(tile) => {
                            let levels = vec![value; tile.values.len()];
                            let values = threshold_values(&tile.values, &levels);
                            let tile = derived_tile(tile, &output, "1".to_owned(), values);
                            bundle.tiles.push(tile);
                        }
                        Err(message) => errors.set(bundle_error(&bundle, message)),
                    }
                    bundle
                })
            }
            ThresholdLevel::Percentile(p) => {
                if !(0.0..=100.0).contains(&p) {
                    errors.set(EngineError::Plan(format!(
                        "threshold {input:?} -> {output:?}: percentile {p} is outside 0..=100"
                    )));
                    return self.map(|bundle| bundle);
                }
                let name = format!("Threshold({input} -> {output}, p{p})");
                per_region_in_step_order(
                    self,
                    &name,
                    errors,
                    move |history: &mut CellHistory, bundle: &TileBundle| {
                        let tile = input_tile(bundle, &input, "threshold")?;
                        history
                            .push(&tile.values)
                            .map_err(|e| format!("threshold {input:?}: {e}"))?;
                        let levels = history.percentiles(p);
                        let values = threshold_values(&tile.values, &levels);
                        Ok(derived_tile(tile, &output, "1".to_owned(), values))
                    },
                )
            }
        }
    }
}

/// 1.0 where `x ≥ level`, 0.0 where below (also where the level is NaN and `x` is not), NaN where
/// `x` is NaN; `levels` holds one level per value.
pub fn threshold_values(values: &TileValues, levels: &[f32]) -> TileValues {
    TileValues::from_vec(
        values
            .as_slice()
            .iter()
            .zip(levels)
            .map(|(&x, &level)| {
                if x.is_nan() {
                    f32::NAN
                } else if x >= level {
                    1.0
                } else {
                    0.0
                }
            })
            .collect(),
    )
}

/// Per cell, every non-NaN value seen so far, sorted ascending (infinities included, as numpy's
/// `nanpercentile` keeps them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellHistory {
    cells: Vec<Vec<f32>>,
}

impl CellHistory {
    /// Inserts one step's values (the first step fixes the number of cells).
    pub fn push(&mut self, values: &TileValues) -> Result<(), String> {
        let x = values.as_slice();
        if self.cells.is_empty() {
            self.cells = vec![Vec::new(); x.len()];
        } else if self.cells.len() != x.len() {
            return Err(format!(
                "tile has {} values, earlier steps of the region had {}",
                x.len(),
                self.cells.len()
            ));
        }
        for (sorted, &v) in self.cells.iter_mut().zip(x) {
            if !v.is_nan() {
                let at = sorted.partition_point(|&s| s <= v);
                sorted.insert(at, v);
            }
        }
        Ok(())
    }

    /// The `p`-th percentile of each cell's values (NaN for a cell with none).
    pub fn percentiles(&self, p: f64) -> Vec<f32> {
        self.cells
            .iter()
            .map(|sorted| percentile_of_sorted(sorted, p))
            .collect()
    }

    /// Number of values held, over all cells.
    pub fn len(&self) -> usize {
        self.cells.iter().map(Vec::len).sum()
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `p`-th percentile (0 to 100) of ascending `sorted` by numpy's `"linear"` method, with
/// numpy's own arithmetic for a float32 array and a Python-float `p`: the virtual index
/// `(n − 1) · p / 100` in f64, then the interpolation in f32 from whichever neighbour is nearer
/// (`a + (b − a)·g` below `g = 0.5`, `b − (b − a)·(1 − g)` from it), so results match bit for bit.
/// NaN when `sorted` is empty.
///
/// ```
/// use isotach_engine::operators::percentile_of_sorted;
/// assert_eq!(percentile_of_sorted(&[1.0, 2.0, 4.0], 75.0), 3.0);
/// assert_eq!(percentile_of_sorted(&[1.0, 2.0, 4.0], 100.0), 4.0);
/// assert!(percentile_of_sorted(&[], 50.0).is_nan());
/// ```
pub fn percentile_of_sorted(sorted: &[f32], p: f64) -> f32 {
    let Some(&last) = sorted.last() else {
        return f32::NAN;
    };
    let top = (sorted.len() - 1) as f64;
    let virtual_index = top * (p / 100.0);
    if virtual_index.is_nan() {
        return f32::NAN;
    }
    if virtual_index >= top {
        // numpy interpolates the last value with itself at index -1, so an infinite last value
        // gives NaN (inf - inf) there too.
        return numpy_lerp(last, last, virtual_index + 1.0);
    }
    let below = virtual_index.max(0.0).floor();
    let i = below as usize;
    numpy_lerp(sorted[i], sorted[i + 1], virtual_index - below)
}

/// numpy's `_lerp` on float32 neighbours with a Python-float weight: the weight rounds to f32 and
/// the interpolation starts from the nearer neighbour.
fn numpy_lerp(a: f32, b: f32, gamma: f64) -> f32 {
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * ((1.0 - gamma) as f32)
    } else {
        a + diff * (gamma as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_numpy_on_infinities_and_signed_zero() {
        // np.nanpercentile(np.array([1, inf], 'f4'), 50.0) and (…, 100.0) are NaN (inf - inf).
        assert!(percentile_of_sorted(&[1.0, f32::INFINITY], 50.0).is_nan());
        assert!(percentile_of_sorted(&[1.0, f32::INFINITY], 100.0).is_nan());
        assert!(percentile_of_sorted(&[f32::INFINITY], 30.0).is_nan());
        let zero = percentile_of_sorted(&[-0.0], 100.0);
        assert!(zero == 0.0 && zero.is_sign_negative());
        assert_eq!(percentile_of_sorted(&[1.0, 2.0, 3.0, 4.0], 0.0), 1.0);
    }

    #[test]
    fn history_rejects_a_tile_of_another_size() {
        let mut history = CellHistory::default();
        history
            .push(&TileValues::from_vec(vec![1.0, 2.0]))
            .expect("first");
        let err = history
            .push(&TileValues::from_vec(vec![1.0]))
            .expect_err("size changed");
        assert!(err.contains("1 values") && err.contains('2'), "{err}");
        assert_eq!(history.len(), 2);
    }
}
