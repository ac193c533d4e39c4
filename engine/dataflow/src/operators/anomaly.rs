use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use differential_dataflow::difference::{Abelian, IsZero, Monoid, Semigroup};
use differential_dataflow::operators::CountTotal;
use differential_dataflow::{AsCollection, VecCollection};
use isotach_core::{RegionKey, TileValues};
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::{Capability, Operator};

use super::rolling::{bundle_error, derived_tile, input_tile};
use crate::{ErrorSlot, TileBundle};

pub use isotach_core::ClimatologyPeriod;

/// Which climatology record: one region, one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClimatologyKey {
    /// The region.
    pub region: RegionKey,
    /// Month (1–12) or day of the year (1–366).
    pub period: u16,
}

/// Exact per-cell sums of non-NaN values in fixed point, the difference type that differential
/// dataflow accumulates for the climatology.
///
/// Each value is held as an integer multiple of 2⁻⁶⁴ in an `i128`: every f32 of magnitude at least
/// 2⁻⁴⁰ is exact, smaller ones round to the nearest 2⁻⁶⁴. Sums wrap, so they are associative and
/// commutative bit for bit and come out identical in any order and on any number of workers;
/// they are exact as long as the true sum stays below 2⁶³ in magnitude, which values limited to
/// ±2⁴⁰ guarantee for 2²³ (8 million) steps per period. Adding, negating and the zero make it an
/// Abelian group ([`Semigroup`], [`Monoid`], [`Abelian`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellSums {
    /// Number of steps folded in.
    pub steps: i64,
    /// Number of non-NaN values per cell.
    pub counts: Vec<i64>,
    /// Σ value × 2⁶⁴ per cell.
    pub sums: Vec<i128>,
}

/// Largest magnitude [`CellSums`] accepts, 2⁴⁰ (about 1.1 × 10¹²).
pub const CELL_SUMS_MAX_ABS: f32 = 1_099_511_627_776.0;

/// 2⁶⁴, the fixed-point scale of [`CellSums`].
const SCALE: f64 = 18_446_744_073_709_551_616.0;

impl CellSums {
    /// The sums of one step: count 1 and the value for every non-NaN cell. A value that is
    /// infinite or beyond ±[`CELL_SUMS_MAX_ABS`] is an error naming it.
    pub fn of(values: &[f32]) -> Result<Self, String> {
        let mut counts = vec![0i64; values.len()];
        let mut sums = vec![0i128; values.len()];
        for (i, &v) in values.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            if v.abs() > CELL_SUMS_MAX_ABS {
                return Err(format!(
                    "value {v} at cell {i} is outside ±{CELL_SUMS_MAX_ABS}, the range of the \
                     exact climatology sums"
                ));
            }
            counts[i] = 1;
            // Scaling by a power of two is exact in f64; only values below 2^-40 round.
            sums[i] = (f64::from(v) * SCALE).round() as i128;
        }
        Ok(Self {
            steps: 1,
            counts,
            sums,
        })
    }

    /// The mean per cell (NaN where the count is not positive), in f64.
    pub fn means(&self) -> Vec<f64> {
        self.counts
            .iter()
            .zip(&self.sums)
            .map(|(&n, &s)| {
                if n > 0 {
                    s as f64 / SCALE / n as f64
                } else {
                    f64::NAN
                }
            })
            .collect()
    }
}

impl IsZero for CellSums {
    fn is_zero(&self) -> bool {
        self.steps == 0 && self.counts.iter().all(|&n| n == 0) && self.sums.iter().all(|&s| s == 0)
    }
}

impl Semigroup for CellSums {
    fn plus_equals(&mut self, rhs: &Self) {
        // The zero is empty; a tile's sums always have the region's length.
        if self.counts.len() < rhs.counts.len() {
            self.counts.resize(rhs.counts.len(), 0);
        }
        if self.sums.len() < rhs.sums.len() {
            self.sums.resize(rhs.sums.len(), 0);
        }
        self.steps = self.steps.wrapping_add(rhs.steps);
        for (a, b) in self.counts.iter_mut().zip(&rhs.counts) {
            *a = a.wrapping_add(*b);
        }
        for (a, b) in self.sums.iter_mut().zip(&rhs.sums) {
            *a = a.wrapping_add(*b);
        }
    }
}

impl Monoid for CellSums {
    fn zero() -> Self {
        Self::default()
    }
}

impl Abelian for CellSums {
    fn negate(&mut self) {
        self.steps = self.steps.wrapping_neg();
        for n in &mut self.counts {
            *n = n.wrapping_neg();
        }
        for s in &mut self.sums {
            *s = s.wrapping_neg();
        }
    }
}

/// The climatology of one region for one period: exact sums over the steps so far.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Climatology {
    /// The region.
    pub region: RegionKey,
    /// Month (1–12) or day of the year (1–366).
    pub period: u16,
    /// Per-cell sums and counts of the non-NaN values of the period's steps.
    pub sums: CellSums,
}

impl Climatology {
    /// The climatological mean per cell (NaN where the cell had no value), rounded to f32, in the
    /// region's row-major cell order.
    pub fn mean(&self) -> Vec<f32> {
        self.sums.means().into_iter().map(|m| m as f32).collect()
    }
}

/// The current climatology records, accumulated from the updates of the collection that
/// [`Anomaly::anomaly`] returns (for example in an `inspect`). Updates may arrive in any order:
/// each record's multiplicity is summed and records whose multiplicity returns to zero are dropped,
/// so after the run exactly one record per (region, period) remains.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClimatologyTable {
    records: BTreeMap<Climatology, isize>,
}

impl ClimatologyTable {
    /// Applies one update of the climatology collection.
    pub fn update(&mut self, record: &Climatology, diff: isize) {
        let multiplicity = self.records.entry(record.clone()).or_insert(0);
        *multiplicity += diff;
        if *multiplicity == 0 {
            self.records.remove(record);
        }
    }

    /// The records present, ordered by region then period.
    pub fn records(&self) -> impl Iterator<Item = &Climatology> {
        self.records
            .iter()
            .filter(|(_, m)| **m > 0)
            .map(|(record, _)| record)
    }
}

/// Anomalies from a climatology built incrementally in differential dataflow.
///
/// ```
/// use isotach_core::TileValues;
/// use isotach_engine::operators::{CellSums, anomaly_values};
/// use differential_dataflow::difference::Semigroup;
///
/// // Two Januaries seen so far: the climatology is their mean, exactly.
/// let mut january = CellSums::of(&[1.0, f32::NAN]).unwrap();
/// january.plus_equals(&CellSums::of(&[2.0, 4.0]).unwrap());
/// assert_eq!(january.means()[0], 1.5);
/// assert_eq!(january.means()[1], 4.0);
/// let a = anomaly_values(&TileValues::from_vec(vec![2.0, 4.0]), &january).unwrap();
/// assert_eq!(a.as_slice(), &[0.5, 0.0]);
/// ```
pub trait Anomaly<'scope> {
    /// Adds a tile `output` (units of `input`): per cell, `x(t)` minus the mean of the non-NaN
    /// values of `input` over the steps `s ≤ t` of the region whose instant `times[s]` falls in
    /// the same period as `times[t]` (`t` itself included). This is a running climatology: the
    /// first step of a period gives 0 wherever `x` is not NaN; NaN stays NaN. Once every step has
    /// passed, the climatology is xarray's `da.groupby("time.month").mean()` (or
    /// `"time.dayofyear"`) over the run's steps.
    ///
    /// The climatology lives in differential dataflow: every bundle contributes
    /// `((region, period), t, CellSums)`, `count_total` maintains the accumulated sums per key,
    /// and the operator pairs each bundle with its key's total at its own time `t` once both
    /// frontiers have passed `t`. The sums are exact integers, so anomalies and climatology are
    /// bit-identical for any number of workers and any arrival order.
    ///
    /// Returns the bundles and the climatology collection: one record per (region, period) at
    /// each time it changes, with the previous one retracted; accumulate it with a
    /// [`ClimatologyTable`] to have the final climatology. Memory: 24 bytes per cell per period
    /// in the trace (12 periods for months, 366 for days of the year: a 1440 × 721 grid by day of
    /// year needs about 9 GB), plus the bundles in flight. A step with no instant in `times`, or a
    /// value beyond ±[`CELL_SUMS_MAX_ABS`], is an error.
    fn anomaly(
        self,
        input: String,
        output: String,
        by: ClimatologyPeriod,
        times: Arc<Vec<DateTime<Utc>>>,
        errors: ErrorSlot,
    ) -> (
        Stream<'scope, u64, Vec<TileBundle>>,
        VecCollection<'scope, u64, Climatology, isize>,
    );
}

/// The period of step `step`, or an error naming the step and the axis length.
fn period_of_step(
    times: &[DateTime<Utc>],
    by: ClimatologyPeriod,
    step: u64,
) -> Result<u16, String> {
    usize::try_from(step)
        .ok()
        .and_then(|i| times.get(i))
        .map(|t| by.of(*t))
        .ok_or_else(|| {
            format!(
                "anomaly: step {step} has no instant (the time axis has {} steps)",
                times.len()
            )
        })
}

/// Bundles of one time waiting for the climatology of that time.
struct Waiting {
    capability: Capability<u64>,
    bundles: Vec<TileBundle>,
}

impl<'scope> Anomaly<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn anomaly(
        self,
        input: String,
        output: String,
        by: ClimatologyPeriod,
        times: Arc<Vec<DateTime<Utc>>>,
        errors: ErrorSlot,
    ) -> (
        Stream<'scope, u64, Vec<TileBundle>>,
        VecCollection<'scope, u64, Climatology, isize>,
    ) {
        let contribution_input = input.clone();
        let contribution_times = times.clone();
        let contribution_errors = errors.clone();
        let totals = self
            .clone()
            .unary::<CapacityContainerBuilder<Vec<(ClimatologyKey, u64, CellSums)>>, _, _, _>(
                Pipeline,
                "ClimatologyContributions",
                move |_, _| {
                    move |input, output| {
                        input.for_each_stamp(|capability, data| {
                            let Some(&time) = capability.least() else {
                                return;
                            };
                            let mut session = output.session(&capability);
                            for bundle in data.flat_map(|d| d.iter()) {
                                let contribution = input_tile(
                                    bundle,
                                    &contribution_input,
                                    "anomaly",
                                )
                                .and_then(|tile| {
                                    let period =
                                        period_of_step(&contribution_times, by, bundle.step)?;
                                    let sums = CellSums::of(tile.values.as_slice())
                                        .map_err(|e| format!("anomaly {:?}: {e}", tile.variable))?;
                                    Ok((
                                        ClimatologyKey {
                                            region: bundle.region,
                                            period,
                                        },
                                        sums,
                                    ))
                                });
                                match contribution {
                                    Ok((key, sums)) => session.give((key, time, sums)),
                                    Err(message) => {
                                        contribution_errors.set(bundle_error(bundle, message))
                                    }
                                }
                            }
                        });
                    }
                },
            )
            .as_collection()
            .count_total();

        let climatology = totals.clone().map(|(key, sums)| Climatology {
            region: key.region,
            period: key.period,
            sums,
        });

        let bundle_route = Exchange::new(|bundle: &TileBundle| bundle.region.route());
        let total_route = Exchange::new(
            |((key, _), _, _): &((ClimatologyKey, CellSums), u64, isize)| key.region.route(),
        );
        let bundles = self
            .binary_frontier::<_, CapacityContainerBuilder<Vec<TileBundle>>, _, _, _, _>(
                totals.inner,
                bundle_route,
                total_route,
                "Anomaly",
                move |_, _| {
                    let mut waiting: BTreeMap<u64, Waiting> = BTreeMap::new();
                    type Updates = Vec<(CellSums, isize)>;
                    let mut totals: BTreeMap<u64, HashMap<ClimatologyKey, Updates>> =
                        BTreeMap::new();
                    move |(bundles_in, bundles_frontier), (totals_in, totals_frontier), out| {
                        bundles_in.for_each_stamp(|time, data| {
                            let Some(capability) = time.retain_least(out.output_index()) else {
                                return;
                            };
                            let entry =
                                waiting
                                    .entry(*capability.time())
                                    .or_insert_with(|| Waiting {
                                        capability: capability.clone(),
                                        bundles: Vec::new(),
                                    });
                            entry.bundles.extend(data.flat_map(|d| d.drain(..)));
                        });
                        totals_in.for_each_stamp(|_, data| {
                            for ((key, sums), time, diff) in data.flat_map(|d| d.drain(..)) {
                                let updates =
                                    totals.entry(time).or_default().entry(key).or_default();
                                match updates.iter_mut().find(|(s, _)| *s == sums) {
                                    Some((_, d)) => *d += diff,
                                    None => updates.push((sums, diff)),
                                }
                            }
                        });
                        let complete = |time: &u64| {
                            !bundles_frontier.less_equal(time) && !totals_frontier.less_equal(time)
                        };
                        while let Some((&time, _)) = waiting.first_key_value() {
                            if !complete(&time) {
                                break;
                            }
                            let Some((_, ready)) = waiting.pop_first() else {
                                break;
                            };
                            let at_time = totals.remove(&time).unwrap_or_default();
                            let mut session = out.session(&ready.capability);
                            for mut bundle in ready.bundles {
                                let result =
                                    input_tile(&bundle, &input, "anomaly").and_then(|tile| {
                                        let period = period_of_step(&times, by, bundle.step)?;
                                        let key = ClimatologyKey {
                                            region: bundle.region,
                                            period,
                                        };
                                        let total = at_time
                                            .get(&key)
                                            .and_then(|updates| {
                                                updates.iter().find(|(_, d)| *d > 0)
                                            })
                                            .ok_or_else(|| {
                                                format!(
                                                    "anomaly {input:?}: no climatology for period \
                                                 {period} at time {time}"
                                                )
                                            })?;
                                        let values = anomaly_values(&tile.values, &total.0)
                                            .map_err(|e| format!("anomaly {input:?}: {e}"))?;
                                        Ok(derived_tile(tile, &output, tile.units.clone(), values))
                                    });
                                match result {
                                    Ok(tile) => bundle.tiles.push(tile),
                                    Err(message) => errors.set(bundle_error(&bundle, message)),
                                }
                                session.give(bundle);
                            }
                        }
                        // Totals of times without bundles here (a contribution failed) are done.
                        while let Some((&time, _)) = totals.first_key_value() {
                            if !complete(&time) {
                                break;
                            }
                            totals.pop_first();
                        }
                    }
                },
            );
        (bundles, climatology)
    }
}

/// A climatology read from a store: the mean per cell of each period, over the whole grid of the
/// anomaly's input, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredClimatology {
    /// What the periods are.
    pub by: ClimatologyPeriod,
    /// Columns of the grid, to cut a tile's window out of each period's means.
    pub columns: usize,
    /// Means per period (month 1–12 or day of year 1–366), `rows × columns` each.
    pub means: BTreeMap<u16, Vec<f32>>,
}

/// Departure from a climatology read from a store, tile by tile: no state, no exchange.
///
/// ```
/// use std::collections::BTreeMap;
/// use isotach_core::{RegionKey, TileValues, TileWindow};
/// use isotach_engine::operators::{ClimatologyPeriod, StoredClimatology, stored_anomaly_values};
///
/// // A 2 × 2 grid; January means 10, 20, 30, 40.
/// let climatology = StoredClimatology {
///     by: ClimatologyPeriod::Month,
///     columns: 2,
///     means: BTreeMap::from([(1, vec![10.0, 20.0, 30.0, 40.0])]),
/// };
/// let window = TileWindow { row0: 1, rows: 1, col0: 0, cols: 2 };
/// let x = TileValues::from_vec(vec![31.5, f32::NAN]);
/// let a = stored_anomaly_values(&x, &climatology, 1, window).unwrap();
/// assert_eq!(a.as_slice()[0], 1.5);
/// assert!(a.as_slice()[1].is_nan());
/// ```
pub trait StoredAnomaly<'scope> {
    /// Adds a tile `output` (units of `input`): per cell, `x(t)` minus the stored mean of the
    /// period `times[t]` falls in, in f32 as xarray's
    /// `da.groupby("time.month") - climatology` computes it. NaN stays NaN; a period the store
    /// lacks is an error (the planner checks the periods of the selected steps before any work).
    fn stored_anomaly(
        self,
        input: String,
        output: String,
        climatology: Arc<StoredClimatology>,
        times: Arc<Vec<DateTime<Utc>>>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> StoredAnomaly<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn stored_anomaly(
        self,
        input: String,
        output: String,
        climatology: Arc<StoredClimatology>,
        times: Arc<Vec<DateTime<Utc>>>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        use timely::dataflow::operators::vec::Map;
        self.map(move |mut bundle| {
            let result = input_tile(&bundle, &input, "anomaly").and_then(|tile| {
                let period = period_of_step(&times, climatology.by, bundle.step)?;
                let values = stored_anomaly_values(&tile.values, &climatology, period, tile.window)
                    .map_err(|e| format!("anomaly {input:?}: {e}"))?;
                Ok(derived_tile(tile, &output, tile.units.clone(), values))
            });
            match result {
                Ok(tile) => bundle.tiles.push(tile),
                Err(message) => errors.set(bundle_error(&bundle, message)),
            }
            bundle
        })
    }
}

/// `x − mean` per cell of `window` against the stored means of `period`, in f32.
pub fn stored_anomaly_values(
    values: &TileValues,
    climatology: &StoredClimatology,
    period: u16,
    window: isotach_core::TileWindow,
) -> Result<TileValues, String> {
    let means = climatology.means.get(&period).ok_or_else(|| {
        format!(
            "the stored climatology has no period {period} (it has {:?})",
            climatology.means.keys().collect::<Vec<_>>()
        )
    })?;
    let columns = climatology.columns;
    if values.len() != window.len()
        || window.col0 + window.cols > columns
        || (window.row0 + window.rows) * columns > means.len()
    {
        return Err(format!(
            "a tile of {} values over {window:?} does not fit the climatology's {} × {columns} grid",
            values.len(),
            means.len() / columns.max(1)
        ));
    }
    let x = values.as_slice();
    let mut out = Vec::with_capacity(x.len());
    for r in 0..window.rows {
        let start = (window.row0 + r) * columns + window.col0;
        let row = &x[r * window.cols..(r + 1) * window.cols];
        out.extend(
            row.iter()
                .zip(&means[start..start + window.cols])
                .map(|(x, m)| x - m),
        );
    }
    Ok(TileValues::from_vec(out))
}

/// `x − mean` per cell against the climatology `sums`, in f64 rounded to f32; NaN where `x` is
/// NaN or the climatology has no value.
pub fn anomaly_values(values: &TileValues, sums: &CellSums) -> Result<TileValues, String> {
    if sums.counts.len() != values.len() {
        return Err(format!(
            "tile has {} values, the climatology {}",
            values.len(),
            sums.counts.len()
        ));
    }
    Ok(TileValues::from_vec(
        values
            .as_slice()
            .iter()
            .zip(sums.means())
            .map(|(&x, mean)| (f64::from(x) - mean) as f32)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_sums_form_a_group_whatever_the_order() {
        let steps: Vec<CellSums> = [[1.5, f32::NAN], [-2.25, 3.0], [1e-30, 7.0]]
            .iter()
            .map(|v| CellSums::of(v).expect("in range"))
            .collect();
        let mut forward = CellSums::zero();
        steps.iter().for_each(|s| forward.plus_equals(s));
        let mut backward = CellSums::zero();
        steps.iter().rev().for_each(|s| backward.plus_equals(s));
        assert_eq!(forward, backward);
        assert_eq!(forward.steps, 3);
        assert_eq!(forward.counts, vec![3, 2]);
        assert_eq!(forward.means()[1], 5.0);
        let mut minus = forward.clone();
        minus.negate();
        minus.plus_equals(&forward);
        assert!(minus.is_zero());
    }

    #[test]
    fn cell_sums_reject_values_beyond_the_exact_range_naming_them() {
        let err = CellSums::of(&[0.0, 3e12]).expect_err("too large");
        assert!(
            err.contains("3000000000000") && err.contains("cell 1"),
            "{err}"
        );
        assert!(CellSums::of(&[f32::INFINITY]).is_err());
        assert!(CellSums::of(&[CELL_SUMS_MAX_ABS, -CELL_SUMS_MAX_ABS]).is_ok());
    }
}
