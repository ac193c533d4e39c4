use serde::{Deserialize, Serialize};

use crate::SpecError;

/// A box of a grid chosen by coordinate values: which rows, which runs of columns (two when the
/// box crosses the seam of the stored longitudes), and the selected grid itself.
#[derive(Debug, Clone, PartialEq)]
pub struct GridSelection {
    /// Rows of the original grid.
    pub rows: std::ops::Range<usize>,
    /// Runs of columns of the original grid, in eastward order from the box's west edge.
    pub columns: Vec<std::ops::Range<usize>>,
    /// The selected grid (longitudes continuous from the west edge).
    pub grid: LatLonGrid,
}

/// A regular latitude/longitude grid, with coordinates as stored (latitude may descend, as in ERA5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatLonGrid {
    /// Latitudes of the rows, degrees north.
    pub lat: Vec<f64>,
    /// Longitudes of the columns, degrees east.
    pub lon: Vec<f64>,
}

impl LatLonGrid {
    /// The ERA5 layout at `resolution_deg`: latitude from 90 down to -90 inclusive, longitude from 0
    /// up to (not including) 360.
    ///
    /// ```
    /// let grid = isotach_core::LatLonGrid::regular(0.25);
    /// assert_eq!(grid.shape(), (721, 1440));
    /// assert_eq!(grid.lat[0], 90.0);
    /// ```
    pub fn regular(resolution_deg: f64) -> Self {
        let nlat = (180.0 / resolution_deg).round() as usize + 1;
        let nlon = (360.0 / resolution_deg).round() as usize;
        let lat = (0..nlat)
            .map(|i| 90.0 - i as f64 * resolution_deg)
            .collect();
        let lon = (0..nlon).map(|j| j as f64 * resolution_deg).collect();
        Self { lat, lon }
    }

    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        (self.lat.len(), self.lon.len())
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.lat.len() * self.lon.len()
    }

    /// True when the grid has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Spacing between neighbouring longitudes, degrees (0 for a single column).
    pub fn lon_step(&self) -> f64 {
        if self.lon.len() < 2 {
            0.0
        } else {
            self.lon[1] - self.lon[0]
        }
    }

    /// Spacing between neighbouring latitudes, degrees (negative when latitude descends).
    pub fn lat_step(&self) -> f64 {
        if self.lat.len() < 2 {
            0.0
        } else {
            self.lat[1] - self.lat[0]
        }
    }

    /// The part of the grid inside a box given by coordinate values: `lat = [south, north]`,
    /// `lon = [west, east]` in degrees, longitudes in either -180..180 or 0..360 whatever the
    /// grid uses, and `west > east` for a box that crosses the dateline. Rows keep the grid's
    /// order (descending latitude stays descending); columns run eastward from `west`, with
    /// longitudes continuous across the seam of the store (for example 170 … 190).
    ///
    /// ```
    /// let grid = isotach_core::LatLonGrid::regular(10.0); // lon 0..350
    /// let sel = grid.select([20.0, 60.0], [-170.0, -110.0]).unwrap();
    /// assert_eq!(sel.grid.lat, vec![60.0, 50.0, 40.0, 30.0, 20.0]);
    /// assert_eq!(sel.grid.lon, vec![-170.0, -160.0, -150.0, -140.0, -130.0, -120.0, -110.0]);
    /// assert_eq!(sel.columns, vec![19..26]);
    /// let across = grid.select([-10.0, 10.0], [170.0, -170.0]).unwrap();
    /// assert_eq!(across.grid.lon, vec![170.0, 180.0, 190.0]);
    /// assert_eq!(across.columns, vec![17..20]);
    /// let seam = grid.select([-10.0, 10.0], [-20.0, 20.0]).unwrap();
    /// assert_eq!(seam.columns, vec![34..36, 0..3]);
    /// ```
    pub fn select(&self, lat: [f64; 2], lon: [f64; 2]) -> Result<GridSelection, SpecError> {
        let finite = lat.iter().chain(lon.iter()).all(|v| v.is_finite());
        if !finite {
            return Err(SpecError::invalid(
                "source.region",
                format!("lat {lat:?} / lon {lon:?} must be finite numbers"),
            ));
        }
        let [south, north] = lat;
        if south > north || south < -90.0 || north > 90.0 {
            return Err(SpecError::invalid(
                "source.region.lat",
                format!("{lat:?} is not [south, north] within -90..90"),
            ));
        }
        let eps = 1e-9;
        let rows_in: Vec<usize> = (0..self.lat.len())
            .filter(|&i| self.lat[i] >= south - eps && self.lat[i] <= north + eps)
            .collect();
        let (Some(&first_row), Some(&last_row)) = (rows_in.first(), rows_in.last()) else {
            return Err(SpecError::invalid(
                "source.region.lat",
                format!(
                    "{lat:?} holds no grid row (latitudes run from {} to {})",
                    self.lat.first().copied().unwrap_or(f64::NAN),
                    self.lat.last().copied().unwrap_or(f64::NAN)
                ),
            ));
        };
        let [west, east] = lon;
        let width = if east - west >= 360.0 - eps {
            360.0 - eps
        } else {
            (east - west).rem_euclid(360.0)
        };
        let mut picked: Vec<(f64, usize)> = (0..self.lon.len())
            .filter_map(|j| {
                let d = (self.lon[j] - west).rem_euclid(360.0);
                let d = if d > 360.0 - eps { 0.0 } else { d };
                (d <= width + eps).then_some((d, j))
            })
            .collect();
        if picked.is_empty() {
            return Err(SpecError::invalid(
                "source.region.lon",
                format!("{lon:?} holds no grid column"),
            ));
        }
        picked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut columns: Vec<std::ops::Range<usize>> = Vec::new();
        for &(_, j) in &picked {
            match columns.last_mut() {
                Some(run) if run.end == j => run.end += 1,
                _ => columns.push(j..j + 1),
            }
        }
        Ok(GridSelection {
            rows: first_row..last_row + 1,
            columns,
            grid: LatLonGrid {
                lat: self.lat[first_row..=last_row].to_vec(),
                lon: picked.iter().map(|(d, _)| west + d).collect(),
            },
        })
    }

    /// True when the longitudes wrap all the way around the globe.
    pub fn is_global_in_lon(&self) -> bool {
        let n = self.lon.len() as f64;
        (self.lon_step().abs() * n - 360.0).abs() < 1e-6
    }
}
