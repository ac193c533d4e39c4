//! The per-step half of the objects operator: connected components of one field and the geometry
//! of each. Pure functions, deterministic in raster order, no dataflow.

use std::collections::HashMap;
use std::f64::consts::FRAC_PI_2;

use isotach_core::LatLonGrid;

use super::{ArCriterion, ObjectRecord};

/// Mean Earth radius, km (the same sphere as the step statistics).
pub(super) const EARTH_RADIUS_KM: f64 = 6371.0;

/// The kept components of one step.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Segmentation {
    /// Per cell: 0 outside every kept component, `k + 1` inside kept component `k`.
    pub raster: Vec<u32>,
    /// The cells of each kept component, in raster order; components are numbered by their
    /// first cell in raster order.
    pub cells: Vec<Vec<u32>>,
}

/// Area of the cells of each row, km²: `R² Δλ (sin φn − sin φs)` with the cell edges halfway to
/// the neighbouring rows, clipped at the poles.
pub(super) fn row_areas_km2(grid: &LatLonGrid) -> Vec<f64> {
    let dlat = grid.lat_step().abs().to_radians();
    let dlon = grid.lon_step().abs().to_radians();
    grid.lat
        .iter()
        .map(|lat| {
            let lat = lat.to_radians();
            let south = (lat - dlat / 2.0).max(-FRAC_PI_2);
            let north = (lat + dlat / 2.0).min(FRAC_PI_2);
            EARTH_RADIUS_KM * EARTH_RADIUS_KM * dlon * (north.sin() - south.sin())
        })
        .collect()
}

fn find(parent: &mut [u32], mut cell: u32) -> u32 {
    let mut root = cell;
    while parent[root as usize] != root {
        root = parent[root as usize];
    }
    while parent[cell as usize] != root {
        let next = parent[cell as usize];
        parent[cell as usize] = root;
        cell = next;
    }
    root
}

/// Joins two sets, keeping the smaller root: a component's root is then its first cell in raster
/// order, which is what numbers components deterministically.
fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra < rb {
        parent[rb as usize] = ra;
    } else if rb < ra {
        parent[ra as usize] = rb;
    }
}

/// Connected components of `values >= threshold` on `grid` (8 neighbours, periodic in longitude
/// when the grid is global in longitude), without those smaller than `min_area_km2`.
///
/// The caller has checked that `values.len() == grid.len()` and that the grid has fewer than
/// `u32::MAX` cells.
pub(super) fn segment(
    grid: &LatLonGrid,
    values: &[f32],
    threshold: f32,
    min_area_km2: f64,
    areas: &[f64],
) -> Segmentation {
    const OUTSIDE: u32 = u32::MAX;
    let (nlat, nlon) = grid.shape();
    let mut parent: Vec<u32> = values
        .iter()
        .enumerate()
        .map(|(i, v)| if *v >= threshold { i as u32 } else { OUTSIDE })
        .collect();
    let wrap = grid.is_global_in_lon() && nlon > 1;
    let inside = |parent: &[u32], r: usize, c: usize| parent[r * nlon + c] != OUTSIDE;
    for r in 0..nlat {
        for c in 0..nlon {
            if !inside(&parent, r, c) {
                continue;
            }
            let here = (r * nlon + c) as u32;
            let east = if c + 1 < nlon {
                Some(c + 1)
            } else if wrap {
                Some(0)
            } else {
                None
            };
            let west = if c > 0 {
                Some(c - 1)
            } else if wrap {
                Some(nlon - 1)
            } else {
                None
            };
            // East and the three cells below cover every 8-neighbour pair exactly once.
            if let Some(e) = east
                && inside(&parent, r, e)
            {
                union(&mut parent, here, (r * nlon + e) as u32);
            }
            if r + 1 < nlat {
                for cc in [west, Some(c), east].into_iter().flatten() {
                    if inside(&parent, r + 1, cc) {
                        union(&mut parent, here, ((r + 1) * nlon + cc) as u32);
                    }
                }
            }
        }
    }

    // Raster order meets each root before the rest of its component, so the order of first
    // encounter is the order of first cells.
    let mut index_of_root: HashMap<u32, usize> = HashMap::new();
    let mut cells: Vec<Vec<u32>> = Vec::new();
    let mut area: Vec<f64> = Vec::new();
    for i in 0..parent.len() {
        if parent[i] == OUTSIDE {
            continue;
        }
        let root = find(&mut parent, i as u32);
        let k = *index_of_root.entry(root).or_insert_with(|| {
            cells.push(Vec::new());
            area.push(0.0);
            cells.len() - 1
        });
        cells[k].push(i as u32);
        area[k] += areas[i / nlon.max(1)];
    }
    let kept: Vec<Vec<u32>> = cells
        .into_iter()
        .zip(area)
        .filter(|(_, a)| *a >= min_area_km2)
        .map(|(c, _)| c)
        .collect();
    let mut raster = vec![0u32; values.len()];
    for (k, comp) in kept.iter().enumerate() {
        for &i in comp {
            raster[i as usize] = k as u32 + 1;
        }
    }
    Segmentation {
        raster,
        cells: kept,
    }
}

/// Runs of equal non-zero labels along rows: `(first cell, end cell exclusive, label)`, sorted.
pub(super) fn runs(raster: &[u32], nlon: usize) -> Vec<(u32, u32, u32)> {
    let mut out = Vec::new();
    for (r, row) in raster.chunks(nlon.max(1)).enumerate() {
        let mut c = 0;
        while c < row.len() {
            let label = row[c];
            let start = c;
            while c < row.len() && row[c] == label {
                c += 1;
            }
            if label != 0 {
                let base = r * nlon;
                out.push(((base + start) as u32, (base + c) as u32, label));
            }
        }
    }
    out
}

/// Pairs `(label in a, label in b)` of components sharing at least one cell, sorted and unique.
pub(super) fn overlaps(a: &[(u32, u32, u32)], b: &[(u32, u32, u32)]) -> Vec<(u32, u32)> {
    let mut pairs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (sa, ea, la) = a[i];
        let (sb, eb, lb) = b[j];
        if sa < eb && sb < ea {
            pairs.push((la, lb));
        }
        if ea <= eb {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Great-circle distance between two points given in degrees, km (haversine).
pub(super) fn great_circle_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Longitudes of the grid brought into one turn starting at the grid's smallest longitude, for a
/// global grid; unchanged otherwise (a regional grid's longitudes are already continuous).
#[derive(Debug, Clone, Copy)]
pub(super) struct LonFrame {
    global: bool,
    west: f64,
}

impl LonFrame {
    pub(super) fn of(grid: &LatLonGrid) -> Self {
        Self {
            global: grid.is_global_in_lon() && grid.lon.len() > 1,
            west: grid.lon.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }

    pub(super) fn normalize(self, lon: f64) -> f64 {
        if self.global {
            self.west + (lon - self.west).rem_euclid(360.0)
        } else {
            lon
        }
    }
}

/// Per-component results of the atmospheric-river criterion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Transport {
    /// Area-weighted mean meridional component (NaN when no cell has both components).
    pub mean_v: f64,
    /// Fraction of cells whose direction is within 45° of the mean direction.
    pub coherence: f64,
}

/// The record of one component (id, node, step and time left for the caller), and its AR verdict
/// when `criterion` is given.
#[allow(clippy::too_many_arguments)]
pub(super) fn describe(
    grid: &LatLonGrid,
    frame: LonFrame,
    areas: &[f64],
    values: &[f32],
    wind: Option<(&[f32], &[f32])>,
    cells: &[u32],
    criterion: Option<&ArCriterion>,
    record: &mut ObjectRecord,
) {
    let nlon = grid.lon.len().max(1);
    let row = |i: u32| i as usize / nlon;
    let col = |i: u32| i as usize % nlon;

    // Unwrap longitudes so the component is continuous: on a global grid its west edge is the
    // first occupied longitude after the largest empty gap around the circle.
    let mut occupied: Vec<f64> = cells
        .iter()
        .map(|&i| frame.normalize(grid.lon[col(i)]))
        .collect();
    occupied.sort_by(f64::total_cmp);
    occupied.dedup();
    let west = if frame.global && occupied.len() > 1 {
        let mut best = (occupied[0] + 360.0 - occupied[occupied.len() - 1], 0);
        for k in 1..occupied.len() {
            let gap = occupied[k] - occupied[k - 1];
            if gap > best.0 {
                best = (gap, k);
            }
        }
        occupied[best.1]
    } else {
        occupied.first().copied().unwrap_or(0.0)
    };
    let unwrap = |i: u32| {
        let lon = grid.lon[col(i)];
        if frame.global {
            west + (lon - west).rem_euclid(360.0)
        } else {
            lon
        }
    };

    let mut area = 0.0;
    let mut sum_v = 0.0;
    let mut sum_lat = 0.0;
    let mut sum_lon = 0.0;
    let mut max_value = f32::NEG_INFINITY;
    let (mut lat_min, mut lat_max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut lon_min, mut lon_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &i in cells {
        let a = areas[row(i)];
        let (lat, lon) = (grid.lat[row(i)], unwrap(i));
        let v = values[i as usize];
        area += a;
        sum_v += a * v as f64;
        sum_lat += a * lat;
        sum_lon += a * lon;
        max_value = max_value.max(v);
        lat_min = lat_min.min(lat);
        lat_max = lat_max.max(lat);
        lon_min = lon_min.min(lon);
        lon_max = lon_max.max(lon);
    }
    // A component of zero-area cells (a single-row grid) still gets a position.
    let weight = |sum: f64, plain: f64| {
        if area > 0.0 {
            sum / area
        } else {
            plain / cells.len().max(1) as f64
        }
    };
    let centroid_lat = weight(
        sum_lat,
        cells.iter().map(|&i| grid.lat[row(i)]).sum::<f64>(),
    );
    let centroid_lon = weight(sum_lon, cells.iter().map(|&i| unwrap(i)).sum::<f64>());
    let mean_value = weight(
        sum_v,
        cells.iter().map(|&i| values[i as usize] as f64).sum(),
    );

    // Principal axes in the plane tangent at the centroid (km east, km north).
    let coslat = centroid_lat.to_radians().cos();
    let xy = |i: u32| {
        let x = EARTH_RADIUS_KM * (unwrap(i) - centroid_lon).to_radians() * coslat;
        let y = EARTH_RADIUS_KM * (grid.lat[row(i)] - centroid_lat).to_radians();
        (x, y)
    };
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for &i in cells {
        let a = if area > 0.0 { areas[row(i)] } else { 1.0 };
        let (x, y) = xy(i);
        sxx += a * x * x;
        syy += a * y * y;
        sxy += a * x * y;
    }
    let theta = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let (ct, st) = (theta.cos(), theta.sin());
    let mut lo = (f64::INFINITY, 0u32);
    let mut hi = (f64::NEG_INFINITY, 0u32);
    for &i in cells {
        let (x, y) = xy(i);
        let p = x * ct + y * st;
        if p < lo.0 {
            lo = (p, i);
        }
        if p > hi.0 {
            hi = (p, i);
        }
    }
    let chord = great_circle_km(
        grid.lat[row(lo.1)],
        unwrap(lo.1),
        grid.lat[row(hi.1)],
        unwrap(hi.1),
    );
    let length = chord.max(area.sqrt());
    let width = if length > 0.0 { area / length } else { 0.0 };
    let mut orientation = theta.to_degrees();
    if orientation <= -90.0 {
        orientation += 180.0;
    }

    record.centroid_lat = centroid_lat;
    record.centroid_lon = frame.normalize(centroid_lon);
    record.area_km2 = area;
    record.max_value = max_value;
    record.mean_value = mean_value as f32;
    record.lat_min = lat_min;
    record.lat_max = lat_max;
    record.lon_min = frame.normalize(lon_min);
    record.lon_max = frame.normalize(lon_max);
    record.length_km = length;
    record.width_km = width;
    record.orientation_deg = orientation;
    record.is_ar = criterion.map(|criterion| {
        let aspect = if width > 0.0 {
            length / width
        } else {
            f64::INFINITY
        };
        let geometry = length >= criterion.min_length_km && aspect >= criterion.min_aspect;
        let transport = wind.map(|(u, v)| transport(areas, nlon, u, v, cells));
        let poleward = !criterion.require_poleward
            || transport.is_some_and(|t| {
                if centroid_lat >= 0.0 {
                    t.mean_v > 0.0
                } else {
                    t.mean_v < 0.0
                }
            });
        let coherent = criterion.min_coherence <= 0.0
            || transport.is_some_and(|t| t.coherence >= criterion.min_coherence);
        geometry && poleward && coherent
    });
}

/// Mean meridional transport and direction coherence of a component's cells, ignoring cells where
/// a component is missing.
pub(super) fn transport(
    areas: &[f64],
    nlon: usize,
    u: &[f32],
    v: &[f32],
    cells: &[u32],
) -> Transport {
    let (mut su, mut sv, mut sa) = (0.0, 0.0, 0.0);
    for &i in cells {
        let (ui, vi) = (u[i as usize] as f64, v[i as usize] as f64);
        if ui.is_finite() && vi.is_finite() {
            let a = areas[i as usize / nlon.max(1)];
            su += a * ui;
            sv += a * vi;
            sa += a;
        }
    }
    if sa <= 0.0 {
        return Transport {
            mean_v: f64::NAN,
            coherence: 0.0,
        };
    }
    let (mu, mv) = (su / sa, sv / sa);
    let mean_norm = mu.hypot(mv);
    let cos45 = std::f64::consts::FRAC_1_SQRT_2;
    let (mut valid, mut aligned) = (0usize, 0usize);
    for &i in cells {
        let (ui, vi) = (u[i as usize] as f64, v[i as usize] as f64);
        if !(ui.is_finite() && vi.is_finite()) {
            continue;
        }
        valid += 1;
        let norm = ui.hypot(vi);
        if mean_norm > 0.0 && norm > 0.0 && ui * mu + vi * mv >= cos45 * norm * mean_norm {
            aligned += 1;
        }
    }
    Transport {
        mean_v: mv,
        coherence: if valid > 0 {
            aligned as f64 / valid as f64
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(nlat: usize, nlon: usize, dlat: f64, dlon: f64) -> LatLonGrid {
        LatLonGrid {
            lat: (0..nlat).map(|i| 40.0 - i as f64 * dlat).collect(),
            lon: (0..nlon).map(|j| j as f64 * dlon).collect(),
        }
    }

    #[test]
    fn eight_neighbours_and_the_seam_join_components() {
        // Global (8 × 45°): a diagonal pair joins, and column 7 touches column 0.
        let g = grid(3, 8, 10.0, 45.0);
        #[rustfmt::skip]
        let v = [
            1., 0., 0., 0., 0., 0., 0., 1.,
            0., 1., 0., 0., 1., 0., 0., 0.,
            0., 0., 0., 0., 0., 0., 0., 0.,
        ];
        let areas = row_areas_km2(&g);
        let s = segment(&g, &v, 0.5, 0.0, &areas);
        assert_eq!(s.cells, vec![vec![0, 7, 9], vec![12]]);
        assert_eq!(&s.raster[..8], &[1, 0, 0, 0, 0, 0, 0, 1]);
        // The same values on a regional grid do not wrap.
        let regional = grid(3, 8, 10.0, 5.0);
        let s = segment(&regional, &v, 0.5, 0.0, &row_areas_km2(&regional));
        assert_eq!(s.cells, vec![vec![0, 9], vec![7], vec![12]]);
    }

    #[test]
    fn runs_and_overlaps_pair_labels_sharing_cells() {
        let a = runs(&[1, 1, 0, 2, 0, 0, 3, 3], 4);
        assert_eq!(a, vec![(0, 2, 1), (3, 4, 2), (6, 8, 3)]);
        let b = runs(&[0, 1, 1, 1, 0, 2, 2, 0], 4);
        assert_eq!(overlaps(&a, &b), vec![(1, 1), (2, 1), (3, 2)]);
    }

    #[test]
    fn cell_areas_sum_to_the_sphere() {
        let g = LatLonGrid::regular(1.0);
        let total: f64 = row_areas_km2(&g).iter().map(|a| a * 360.0).sum();
        let sphere = 4.0 * std::f64::consts::PI * EARTH_RADIUS_KM * EARTH_RADIUS_KM;
        assert!(
            (total - sphere).abs() / sphere < 1e-9,
            "{total} vs {sphere}"
        );
    }
}
