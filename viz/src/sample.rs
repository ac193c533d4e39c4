//! Reading a field at any longitude/latitude on the CPU (for layers drawn there).

use isotach_core::Field;

/// Fractional (row, column) of (lon, lat) on a regular grid, the column taken in the longitude
/// turn that lands on the grid; `None` outside a regional grid (half a cell of slack at the edges).
fn grid_position(field: &Field, lon: f64, lat: f64) -> Option<(f64, f64)> {
    let (nlat, nlon) = field.grid.shape();
    if nlat < 2 || nlon < 2 || field.values.len() != nlat * nlon {
        return None;
    }
    let g = &field.grid;
    let (dlon, dlat) = (g.lon[1] - g.lon[0], g.lat[1] - g.lat[0]);
    let r = (lat - g.lat[0]) / dlat;
    if !(-0.5..=nlat as f64 - 0.5).contains(&r) {
        return None;
    }
    let n = nlon as f64;
    let mut c = (lon - g.lon[0]) / dlon;
    if g.is_global_in_lon() {
        c = c.rem_euclid(n);
    } else {
        let turn = 360.0 / dlon.abs();
        c = c.rem_euclid(turn);
        if c > n - 0.5 {
            c -= turn;
        }
        if !(-0.5..=n - 0.5).contains(&c) {
            return None;
        }
    }
    Some((r, c))
}

/// The value of the cell nearest (lon, lat); `None` outside the grid (missing values come back
/// as they are, e.g. NaN).
pub(crate) fn nearest(field: &Field, lon: f64, lat: f64) -> Option<f32> {
    let (r, c) = grid_position(field, lon, lat)?;
    let (nlat, nlon) = field.grid.shape();
    let row = (r.round().max(0.0) as usize).min(nlat - 1);
    let col = (c.round().max(0.0) as usize) % nlon;
    Some(field.values[row * nlon + col])
}

/// Bilinear value at (lon, lat), periodic in longitude for global grids; `None` outside the grid
/// or when any of the four surrounding cells is missing.
pub(crate) fn bilinear(field: &Field, lon: f64, lat: f64) -> Option<f64> {
    let (r, c) = grid_position(field, lon, lat)?;
    let (nlat, nlon) = field.grid.shape();
    let periodic = field.grid.is_global_in_lon();
    let r = r.clamp(0.0, nlat as f64 - 1.0);
    let r0 = (r.floor() as usize).min(nlat - 1);
    let r1 = (r0 + 1).min(nlat - 1);
    let c = if periodic {
        c
    } else {
        c.clamp(0.0, nlon as f64 - 1.0)
    };
    let c0 = (c.floor() as usize).min(nlon - 1);
    let c1 = if periodic {
        (c0 + 1) % nlon
    } else {
        (c0 + 1).min(nlon - 1)
    };
    let (fr, fc) = (r - r0 as f64, c - c0 as f64);
    let v = |row: usize, col: usize| f64::from(field.values[row * nlon + col]);
    let (v00, v01, v10, v11) = (v(r0, c0), v(r0, c1), v(r1, c0), v(r1, c1));
    let value = (v00 * (1.0 - fc) + v01 * fc) * (1.0 - fr) + (v10 * (1.0 - fc) + v11 * fc) * fr;
    value.is_finite().then_some(value)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use isotach_core::LatLonGrid;

    use super::*;

    fn lon_field(grid: LatLonGrid) -> Field {
        let values = grid
            .lat
            .iter()
            .flat_map(|_| grid.lon.iter().map(|&lon| lon as f32))
            .collect();
        Field {
            variable: "lon".into(),
            units: "".into(),
            long_name: "".into(),
            step: 0,
            time: chrono::DateTime::UNIX_EPOCH,
            grid: Arc::new(grid),
            values,
        }
    }

    #[test]
    fn bilinear_and_nearest() {
        let f = lon_field(LatLonGrid::regular(10.0));
        assert_eq!(bilinear(&f, 15.0, 33.0), Some(15.0));
        assert_eq!(bilinear(&f, 375.0, 33.0), Some(15.0));
        assert_eq!(bilinear(&f, -345.0, -33.0), Some(15.0));
        assert_eq!(nearest(&f, 14.0, 0.0), Some(10.0));
        assert_eq!(nearest(&f, 356.0, 0.0), Some(0.0), "wraps to column 0");
        let regional = lon_field(LatLonGrid {
            lat: vec![10.0, 0.0],
            lon: vec![-20.0, -10.0, 0.0, 10.0],
        });
        assert_eq!(bilinear(&regional, 355.0, 5.0), Some(-5.0));
        assert_eq!(nearest(&regional, 100.0, 5.0), None);
        assert_eq!(nearest(&regional, 0.0, 30.0), None);
    }
}
