use isotach_core::TileValues;
use timely::dataflow::Stream;
use timely::dataflow::operators::vec::Map;

use super::rolling::{bundle_error, derived_tile, input_tile, per_region_in_step_order};
use crate::{EngineError, ErrorSlot, TileBundle};

/// Which mean and standard deviation [`Normalize`] divides by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NormalizeStats {
    /// Fixed values for every cell and step: `(x − mean) / std`. Both must be finite and `std`
    /// non-zero.
    Supplied {
        /// Subtracted from every value.
        mean: f64,
        /// Divides every difference.
        std: f64,
    },
    /// Per cell, the running mean and population standard deviation (ddof = 0) of the non-NaN
    /// values of the steps up to and including the current one.
    Running,
}

/// z-scores, against supplied statistics or each cell's running statistics.
///
/// ```
/// use isotach_core::TileValues;
/// use isotach_engine::operators::{RunningMoments, normalize_values};
///
/// let z = normalize_values(&TileValues::from_vec(vec![12.0, f32::NAN]), 10.0, 4.0);
/// assert_eq!(z.as_slice()[0], 0.5);
/// assert!(z.as_slice()[1].is_nan());
///
/// // Running statistics: the first step divides 0 by 0 (NaN), as xarray's cumulative std does.
/// let mut moments = RunningMoments::default();
/// let first = TileValues::from_vec(vec![1.0, f32::NAN]);
/// let z0 = moments.push_and_score(&first).unwrap();
/// assert!(z0.as_slice()[0].is_nan() && z0.as_slice()[1].is_nan());
/// let z1 = moments.push_and_score(&TileValues::from_vec(vec![3.0, 5.0])).unwrap();
/// assert_eq!(z1.as_slice()[0], 1.0); // mean 2, std 1
/// assert!(z1.as_slice()[1].is_nan()); // one value so far: std 0
/// ```
pub trait Normalize<'scope> {
    /// Adds a tile `output` (units `1`) holding the z-score of `input` per cell.
    ///
    /// With [`NormalizeStats::Running`] the statistics at step `t` cover the region's steps up to
    /// and including `t` (Welford's update in f64, steps in time order), which is xarray's
    /// `(x - x.cumulative("time").mean()) / x.cumulative("time").std()`: NaN where `x` is NaN,
    /// and NaN while a cell has seen a single distinct value (0 / 0), in particular at its first
    /// non-NaN step. Memory: three numbers per cell of each region. Invalid supplied statistics
    /// record an error and pass the bundles through unchanged.
    fn normalize(
        self,
        input: String,
        output: String,
        stats: NormalizeStats,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> Normalize<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn normalize(
        self,
        input: String,
        output: String,
        stats: NormalizeStats,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        match stats {
            NormalizeStats::Supplied { mean, std } => {
                if !mean.is_finite() || !std.is_finite() || std == 0.0 {
                    errors.set(EngineError::Plan(format!(
                        "normalize {input:?} -> {output:?}: mean ({mean}) must be finite and std \
                         ({std}) finite and non-zero"
                    )));
                    return self.map(|bundle| bundle);
                }
                self.map(move |mut bundle| {
                    match input_tile(&bundle, &input, "normalize") {
                        Ok(tile) => {
                            let values = normalize_values(&tile.values, mean, std);
                            let tile = derived_tile(tile, &output, "1".to_owned(), values);
                            bundle.tiles.push(tile);
                        }
                        Err(message) => errors.set(bundle_error(&bundle, message)),
                    }
                    bundle
                })
            }
            NormalizeStats::Running => {
                let name = format!("Normalize({input} -> {output}, running)");
                per_region_in_step_order(
                    self,
                    &name,
                    errors,
                    move |moments: &mut RunningMoments, bundle: &TileBundle| {
                        let tile = input_tile(bundle, &input, "normalize")?;
                        let values = moments
                            .push_and_score(&tile.values)
                            .map_err(|e| format!("normalize {input:?}: {e}"))?;
                        Ok(derived_tile(tile, &output, "1".to_owned(), values))
                    },
                )
            }
        }
    }
}

/// `(x − mean) / std` per value, in f64, rounded to f32; NaN stays NaN.
pub fn normalize_values(values: &TileValues, mean: f64, std: f64) -> TileValues {
    TileValues::from_vec(
        values
            .as_slice()
            .iter()
            .map(|&x| ((f64::from(x) - mean) / std) as f32)
            .collect(),
    )
}

/// Per-cell running count, mean and sum of squared deviations of the non-NaN values seen so far
/// (Welford's algorithm in f64).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunningMoments {
    count: Vec<u64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl RunningMoments {
    /// Folds in one step (the first step fixes the number of cells), then returns that step's
    /// z-scores against the statistics that now include it.
    pub fn push_and_score(&mut self, values: &TileValues) -> Result<TileValues, String> {
        let x = values.as_slice();
        if self.count.is_empty() {
            self.count = vec![0; x.len()];
            self.mean = vec![0.0; x.len()];
            self.m2 = vec![0.0; x.len()];
        } else if self.count.len() != x.len() {
            return Err(format!(
                "tile has {} values, earlier steps of the region had {}",
                x.len(),
                self.count.len()
            ));
        }
        let mut z = Vec::with_capacity(x.len());
        for (i, &v) in x.iter().enumerate() {
            if v.is_nan() {
                z.push(f32::NAN);
                continue;
            }
            let v = f64::from(v);
            self.count[i] += 1;
            let delta = v - self.mean[i];
            self.mean[i] += delta / self.count[i] as f64;
            self.m2[i] += delta * (v - self.mean[i]);
            let std = (self.m2[i] / self.count[i] as f64).sqrt();
            z.push(((v - self.mean[i]) / std) as f32);
        }
        Ok(TileValues::from_vec(z))
    }

    /// The running mean per cell (NaN where no value has been seen).
    pub fn mean(&self) -> Vec<f64> {
        self.count
            .iter()
            .zip(&self.mean)
            .map(|(&n, &m)| if n == 0 { f64::NAN } else { m })
            .collect()
    }

    /// The running population standard deviation per cell (NaN where no value has been seen).
    pub fn std(&self) -> Vec<f64> {
        self.count
            .iter()
            .zip(&self.m2)
            .map(|(&n, &m2)| {
                if n == 0 {
                    f64::NAN
                } else {
                    (m2 / n as f64).sqrt()
                }
            })
            .collect()
    }
}
