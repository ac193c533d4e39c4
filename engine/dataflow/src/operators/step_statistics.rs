use differential_dataflow::VecCollection;
use isotach_core::{LatLonGrid, Tile};
use serde::{Deserialize, Serialize};

/// Statistics of one tile in integer units, so that sums are exact and identical in any order and
/// on any number of workers: values in hundredths, cell areas in hundredths of km².
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TilePartial {
    /// Largest finite value, hundredths.
    pub max_centi: i64,
    /// Smallest finite value, hundredths.
    pub min_centi: i64,
    /// Σ value × cell area, in hundredths × 0.01 km².
    pub weighted_sum: i64,
    /// Σ cell area of finite values, 0.01 km².
    pub area: i64,
    /// Number of finite values.
    pub valid: i64,
}

const EARTH_RADIUS_KM: f64 = 6371.0;

impl TilePartial {
    /// The partial of a tile on `grid`, or `None` when every value is NaN.
    pub fn of(tile: &Tile, grid: &LatLonGrid) -> Option<Self> {
        let (dlat, dlon) = (
            grid.lat_step().abs().to_radians(),
            grid.lon_step().abs().to_radians(),
        );
        let w = tile.window;
        let mut partial: Option<Self> = None;
        for (r, row) in tile
            .values
            .as_slice()
            .chunks_exact(w.cols.max(1))
            .enumerate()
        {
            let lat = grid.lat[w.row0 + r].to_radians();
            // Area of the cell centred on `lat`, clipped at the poles.
            let south = (lat - dlat / 2.0).max(-std::f64::consts::FRAC_PI_2);
            let north = (lat + dlat / 2.0).min(std::f64::consts::FRAC_PI_2);
            let area =
                (EARTH_RADIUS_KM * EARTH_RADIUS_KM * dlon * (north.sin() - south.sin()) * 100.0)
                    .round() as i64;
            for &v in row.iter().filter(|v| v.is_finite()) {
                let centi = (v as f64 * 100.0).round() as i64;
                let p = partial.get_or_insert(Self {
                    max_centi: centi,
                    min_centi: centi,
                    weighted_sum: 0,
                    area: 0,
                    valid: 0,
                });
                p.max_centi = p.max_centi.max(centi);
                p.min_centi = p.min_centi.min(centi);
                p.weighted_sum += centi * area;
                p.area += area;
                p.valid += 1;
            }
        }
        partial
    }

    /// Combines two partials.
    pub fn merge(self, other: Self) -> Self {
        Self {
            max_centi: self.max_centi.max(other.max_centi),
            min_centi: self.min_centi.min(other.min_centi),
            weighted_sum: self.weighted_sum + other.weighted_sum,
            area: self.area + other.area,
            valid: self.valid + other.valid,
        }
    }
}

/// Per-step statistics maintained in differential dataflow.
///
/// ```
/// use isotach_engine::operators::TilePartial;
/// let a = TilePartial { max_centi: 500, min_centi: 100, weighted_sum: 600, area: 2, valid: 2 };
/// let b = TilePartial { max_centi: 900, min_centi: 300, weighted_sum: 900, area: 1, valid: 1 };
/// assert_eq!(a.merge(b).max_centi, 900);
/// assert_eq!(a.merge(b).weighted_sum, 1500);
/// ```
pub trait StepStatistics<'scope> {
    /// Reduces tile partials keyed by step into one partial per step. A tile added or retracted
    /// later updates its step's statistics incrementally.
    fn step_statistics(self) -> VecCollection<'scope, u64, (u64, TilePartial), isize>;
}

impl<'scope> StepStatistics<'scope> for VecCollection<'scope, u64, (u64, TilePartial), isize> {
    fn step_statistics(self) -> VecCollection<'scope, u64, (u64, TilePartial), isize> {
        self.reduce(|_step, input, output| {
            let mut total: Option<TilePartial> = None;
            for (partial, count) in input {
                for _ in 0..(*count).max(0) {
                    total = Some(total.map_or(**partial, |t| t.merge(**partial)));
                }
            }
            if let Some(total) = total {
                output.push((total, 1));
            }
        })
    }
}
