use serde::{Deserialize, Serialize};

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

    /// True when the longitudes wrap all the way around the globe.
    pub fn is_global_in_lon(&self) -> bool {
        let n = self.lon.len() as f64;
        (self.lon_step().abs() * n - 360.0).abs() < 1e-6
    }
}
