//! Land fill: Natural Earth's land polygons rasterised into a longitude/latitude mask (even-odd
//! scanlines, so lakes cut out of a polygon stay water), which the coastline layer paints under
//! the shorelines through the projection.

use crate::overlay::Overlay;
use crate::projection::MapView;

/// Which cells of a regular lon/lat raster (`-180 + (j + ½)·res`, `90 - (i + ½)·res`) are land.
pub(crate) struct LandMask {
    res_deg: f64,
    cols: usize,
    rows: usize,
    land: Vec<bool>,
}

impl LandMask {
    /// Rasterises `rings` (closed polygon rings in lon/lat degrees; a ring's longitudes may jump
    /// across the antimeridian) at `res_deg`. Rings that wind once around a pole (Antarctica at
    /// 1:110m) are closed through that pole.
    pub(crate) fn rasterise(rings: &[Vec<(f64, f64)>], res_deg: f64) -> Self {
        let cols = (360.0 / res_deg).round().max(1.0) as usize;
        let rows = (180.0 / res_deg).round().max(1.0) as usize;
        let res_deg = 360.0 / cols as f64;
        // Per row, the crossings of each ring with the row's centre latitude: (ring, lon).
        let mut crossings: Vec<Vec<(usize, f64)>> = vec![Vec::new(); rows];
        for (ring_id, ring) in rings.iter().enumerate() {
            let closed = unwrapped_closed(ring);
            for pair in closed.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                if a.1 == b.1 {
                    continue; // horizontal edges never cross a row centre's scanline
                }
                let (lo, hi) = (a.1.min(b.1), a.1.max(b.1));
                // Rows whose centre latitude lies in [lo, hi): centre = 90 - (i + ½)·res.
                let first = ((90.0 - hi) / res_deg - 0.5).ceil().max(0.0) as usize;
                let last = ((90.0 - lo) / res_deg - 0.5).floor();
                if last < 0.0 {
                    continue;
                }
                let last = (last as usize).min(rows - 1);
                for (i, row) in crossings.iter_mut().enumerate().take(last + 1).skip(first) {
                    let lat = 90.0 - (i as f64 + 0.5) * res_deg;
                    // Half-open in latitude, so a vertex on the scanline counts once.
                    if (a.1 > lat) != (b.1 > lat) {
                        let lon = a.0 + (lat - a.1) / (b.1 - a.1) * (b.0 - a.0);
                        row.push((ring_id, lon));
                    }
                }
            }
        }
        let mut land = vec![false; rows * cols];
        for (i, mut row) in crossings.into_iter().enumerate() {
            row.sort_by(|p, q| p.0.cmp(&q.0).then(p.1.total_cmp(&q.1)));
            let cells = &mut land[i * cols..(i + 1) * cols];
            for ring_crossings in row.chunk_by(|p, q| p.0 == q.0) {
                for span in ring_crossings.chunks_exact(2) {
                    toggle_span(cells, span[0].1, span[1].1, res_deg);
                }
            }
        }
        Self {
            res_deg,
            cols,
            rows,
            land,
        }
    }

    /// True when (lon, lat) falls in a land cell.
    pub(crate) fn is_land(&self, lon: f64, lat: f64) -> bool {
        let j = (((lon + 180.0).rem_euclid(360.0)) / self.res_deg).floor() as usize;
        let i = ((90.0 - lat) / self.res_deg).floor().max(0.0) as usize;
        self.land[i.min(self.rows - 1) * self.cols + j.min(self.cols - 1)]
    }

    /// Paints `rgba` over every map pixel whose centre is on land.
    pub(crate) fn draw(&self, view: &MapView, overlay: &mut Overlay, rgba: [u8; 4]) {
        let m = overlay.window.intersection(&view.layout.map);
        for y in m.y..m.bottom() {
            for x in m.x..m.right() {
                if let Some((lon, lat)) = view.pixel_to_lonlat(x, y)
                    && self.is_land(lon, lat)
                {
                    overlay.blend(x, y, rgba);
                }
            }
        }
    }
}

/// The ring with longitudes made continuous (each step the short way round) and closed: back to
/// its first point, or, when it winds once around a pole, down to that pole and back.
fn unwrapped_closed(ring: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(ring.len() + 3);
    for &(lon, lat) in ring {
        let lon = match out.last() {
            Some(&(prev, _)) => prev + ((lon - prev + 180.0).rem_euclid(360.0) - 180.0),
            None => lon,
        };
        out.push((lon, lat));
    }
    let (Some(&first), Some(&last)) = (out.first(), out.last()) else {
        return out;
    };
    let net = last.0 - first.0;
    if net.abs() > 180.0 {
        // Winds around a pole: close along the pole the ring's points lie nearer to.
        let mean_lat = out.iter().map(|p| p.1).sum::<f64>() / out.len() as f64;
        let pole = if mean_lat < 0.0 { -90.0 } else { 90.0 };
        out.push((last.0, pole));
        out.push((first.0, pole));
    }
    out.push(first);
    out
}

/// Flips the cells whose centre longitude lies in [lon0, lon1) (unwrapped: taken modulo 360).
fn toggle_span(cells: &mut [bool], lon0: f64, lon1: f64, res_deg: f64) {
    let cols = cells.len() as i64;
    // Cell j's centre: -180 + (j + ½)·res.
    let start = ((lon0 + 180.0) / res_deg - 0.5).ceil() as i64;
    let end = ((lon1 + 180.0) / res_deg - 0.5).ceil() as i64;
    // A span can be at most one turn wide (a ring closed through a pole).
    for j in start..end.min(start + cols) {
        let k = j.rem_euclid(cols) as usize;
        cells[k] = !cells[k];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squares_holes_dateline_and_poles() {
        let square = |lon0: f64, lat0: f64, size: f64| {
            vec![
                (lon0, lat0),
                (lon0 + size, lat0),
                (lon0 + size, lat0 + size),
                (lon0, lat0 + size),
                (lon0, lat0),
            ]
        };
        // A 20° island with a 6° lake; an island across the dateline (170°E to 170°W); a ring
        // around the South Pole at 70°S given without its closing edge.
        let around_pole: Vec<(f64, f64)> = (0..=36)
            .map(|k| (-180.0 + 10.0 * f64::from(k), -70.0))
            .map(|(lon, lat)| (if lon > 180.0 { lon - 360.0 } else { lon }, lat))
            .collect();
        let rings = vec![
            square(0.0, 0.0, 20.0),
            square(7.0, 7.0, 6.0),
            vec![
                (170.0, 40.0),
                (-170.0, 40.0),
                (-170.0, 50.0),
                (170.0, 50.0),
                (170.0, 40.0),
            ],
            around_pole,
        ];
        let mask = LandMask::rasterise(&rings, 0.5);
        assert!(mask.is_land(3.0, 3.0) && mask.is_land(18.0, 18.0));
        assert!(!mask.is_land(10.0, 10.0), "lake");
        assert!(!mask.is_land(25.0, 10.0) && !mask.is_land(-5.0, 10.0));
        assert!(
            mask.is_land(175.0, 45.0) && mask.is_land(-175.0, 45.0) && mask.is_land(180.0, 45.0)
        );
        assert!(!mask.is_land(160.0, 45.0) && !mask.is_land(-160.0, 45.0));
        assert!(mask.is_land(0.0, -80.0) && mask.is_land(123.0, -89.9));
        assert!(!mask.is_land(0.0, -60.0));
    }
}
