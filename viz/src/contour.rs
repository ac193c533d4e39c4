//! Contours: isolines found by marching squares on the CPU, drawn through the projection and
//! labelled with their level.

use isotach_core::Field;

use crate::VizError;
use crate::overlay::{Overlay, line_width};
use crate::projection::MapView;

/// Isolines of `field` at `levels`, drawn in `rgba` and (optionally) labelled with the level.
#[derive(Debug, Clone)]
pub struct ContourLayer<'a> {
    /// The field contoured (it may differ from the scene's scalar field, e.g. pressure over
    /// temperature).
    pub field: &'a Field,
    /// The values to draw isolines at.
    pub levels: Vec<f64>,
    /// Line and label colour, RGBA (alpha < 255 for translucent lines).
    pub rgba: [u8; 4],
    /// Whether each isoline is labelled with its level (spaced along the lines).
    pub labels: bool,
}

impl<'a> ContourLayer<'a> {
    /// Near-black labelled isolines of `field` at `levels`.
    pub fn new(field: &'a Field, levels: Vec<f64>) -> Self {
        Self {
            field,
            levels,
            rgba: [20, 20, 20, 255],
            labels: true,
        }
    }

    pub(crate) fn draw(&self, view: &MapView, overlay: &mut Overlay) -> Result<(), VizError> {
        check_field_shape("contours", self.field)?;
        if self.levels.is_empty() {
            return Err(VizError::Layer {
                layer: "contours",
                reason: format!("no levels given for field {}", self.field.variable),
            });
        }
        if let Some(bad) = self.levels.iter().find(|l| !l.is_finite()) {
            return Err(VizError::Layer {
                layer: "contours",
                reason: format!("level {bad} is not finite"),
            });
        }
        let scale = view.layout.scale;
        let width = line_width(scale);
        let mut lines = overlay.coverage(view.layout.map);
        let mut all_segments = Vec::with_capacity(self.levels.len());
        for &level in &self.levels {
            let segments = contour_segments(self.field, level);
            for &[a, b] in &segments {
                lines.geo_line(view, a, b, width);
            }
            all_segments.push((level, segments));
        }
        overlay.blend_coverage(&lines, self.rgba);
        if self.labels {
            place_labels(view, overlay, &all_segments, self.rgba);
        }
        Ok(())
    }
}

/// Fails unless the field's values fill its grid.
pub(crate) fn check_field_shape(layer: &'static str, field: &Field) -> Result<(), VizError> {
    let (nlat, nlon) = field.grid.shape();
    if field.values.len() != nlat * nlon || nlat < 2 || nlon < 2 {
        return Err(VizError::Layer {
            layer,
            reason: format!(
                "field {}: {} values on a grid of {nlat} lat × {nlon} lon (need at least 2 × 2, \
                 and one value per cell)",
                field.variable,
                field.values.len()
            ),
        });
    }
    Ok(())
}

/// A straight piece of isoline between two (lon, lat) points.
type Segment = [(f64, f64); 2];

/// Labels per level at most, and the spacing between labels, in label heights.
const MAX_LABELS_PER_LEVEL: usize = 8;
const LABEL_SPACING_HEIGHTS: f64 = 12.0;

/// Places level labels along the lines: at segment midpoints on the map, clear of each other.
fn place_labels(
    view: &MapView,
    overlay: &mut Overlay,
    levels: &[(f64, Vec<Segment>)],
    rgba: [u8; 4],
) {
    let scale = view.layout.scale;
    let spacing = LABEL_SPACING_HEIGHTS * 8.0 * f64::from(scale);
    let map = view.layout.map;
    let ink = [rgba[0], rgba[1], rgba[2], 255];
    let paper = [255, 255, 255, 200];
    let mut placed: Vec<(f64, f64)> = Vec::new();
    for (level, segments) in levels {
        let text = format_level(*level);
        let half_w = f64::from(crate::text::text_width(&text, scale)) / 2.0 + f64::from(scale);
        let half_h = 4.0 * f64::from(scale) + f64::from(scale);
        let mut count = 0;
        // Every 7th segment is enough candidates, and spreads the search along the lines.
        for [a, b] in segments.iter().step_by(7) {
            if count >= MAX_LABELS_PER_LEVEL {
                break;
            }
            let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
            let Some((x, y)) = view.lonlat_to_xy(mid.0, mid.1) else {
                continue;
            };
            // All four corners of the label's box on the visible map (inside the disc too).
            let inside = [(-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (1.0, 1.0)]
                .iter()
                .all(|&(sx, sy)| {
                    let (cx, cy) = (x + sx * half_w, y + sy * half_h);
                    cx >= f64::from(map.x)
                        && cx <= f64::from(map.right())
                        && cy >= f64::from(map.y)
                        && cy <= f64::from(map.bottom())
                        && view.xy_to_lonlat(cx, cy).is_some()
                });
            let clear = placed
                .iter()
                .all(|&(px, py)| (px - x).hypot(py - y) >= spacing);
            if inside && clear {
                overlay.label(x, y, &text, scale, ink, paper);
                placed.push((x, y));
                count += 1;
            }
        }
    }
}

/// A level as its label: the shortest decimal that reads back as the level ("280", "0.5").
fn format_level(level: f64) -> String {
    if level == 0.0 {
        return "0".into(); // no "-0"
    }
    format!("{level}")
}

/// The isoline of `field` at `level` as straight segments between (lon, lat) points, by marching
/// squares over the grid cells (periodic in longitude for global grids; cells with a missing
/// corner are skipped; saddles resolved by the cell's mean value).
///
/// ```
/// # use std::sync::Arc;
/// # use isotach_core::{Field, LatLonGrid};
/// let grid = LatLonGrid::regular(10.0);
/// let values = grid.lat.iter().flat_map(|&lat| grid.lon.iter().map(move |_| lat as f32)).collect();
/// # let field = Field { variable: "lat".into(), units: "".into(), long_name: "".into(), step: 0,
/// #     time: chrono::DateTime::UNIX_EPOCH, grid: Arc::new(grid), values };
/// // value = latitude: the 25 isoline runs along latitude 25.
/// let segs = isotach_viz::contour_segments(&field, 25.0);
/// assert!(!segs.is_empty() && segs.iter().all(|s| (s[0].1 - 25.0).abs() < 1e-9));
/// ```
pub fn contour_segments(field: &Field, level: f64) -> Vec<[(f64, f64); 2]> {
    let (nlat, nlon) = field.grid.shape();
    if field.values.len() != nlat * nlon || nlat < 2 || nlon < 2 {
        return Vec::new();
    }
    let lat = &field.grid.lat;
    let lon = &field.grid.lon;
    let periodic = field.grid.is_global_in_lon();
    let dlon = lon[1] - lon[0];
    let columns = if periodic { nlon } else { nlon - 1 };
    let value = |r: usize, c: usize| f64::from(field.values[r * nlon + c % nlon]);
    // Column c's longitude, continuing past the last column for the wrap-around cell.
    let lon_of = |c: usize| {
        if c < nlon {
            lon[c]
        } else {
            lon[nlon - 1] + dlon
        }
    };
    let mut out = Vec::new();
    for r in 0..nlat - 1 {
        for c in 0..columns {
            // Corners clockwise from the top-left: (r, c), (r, c+1), (r+1, c+1), (r+1, c).
            let v = [
                value(r, c),
                value(r, c + 1),
                value(r + 1, c + 1),
                value(r + 1, c),
            ];
            let above = v.map(|x| x >= level);
            // Most cells lie wholly on one side: leave them before any other work. (A missing
            // corner compares false, so cells with one are skipped below.)
            if above == [above[0]; 4] || v.iter().any(|x| !x.is_finite()) {
                continue;
            }
            let corners = [(r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c)];
            // Crossing on edge k (corner k to corner k+1).
            let mut crossings: [Option<(f64, f64)>; 4] = [None; 4];
            let mut count = 0;
            for k in 0..4 {
                let j = (k + 1) % 4;
                if above[k] != above[j] {
                    let t = (level - v[k]) / (v[j] - v[k]);
                    let (ra, ca) = corners[k];
                    let (rb, cb) = corners[j];
                    crossings[k] = Some((
                        lon_of(ca) + (lon_of(cb) - lon_of(ca)) * t,
                        lat[ra] + (lat[rb] - lat[ra]) * t,
                    ));
                    count += 1;
                }
            }
            let p = |k: usize| crossings[k].unwrap_or_default();
            if count == 2 {
                let mut ends = crossings.iter().flatten();
                if let (Some(&a), Some(&b)) = (ends.next(), ends.next()) {
                    out.push([a, b]);
                }
            } else if count == 4 {
                let centre_above = v.iter().sum::<f64>() / 4.0 >= level;
                if centre_above == above[0] {
                    // Corners 1 and 3 are cut off on their own.
                    out.push([p(0), p(1)]);
                    out.push([p(2), p(3)]);
                } else {
                    out.push([p(3), p(0)]);
                    out.push([p(1), p(2)]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use isotach_core::LatLonGrid;

    use super::*;

    fn field(grid: LatLonGrid, f: impl Fn(f64, f64) -> f32) -> Field {
        let values = grid
            .lat
            .iter()
            .flat_map(|&lat| grid.lon.iter().map(move |&lon| (lon, lat)))
            .map(|(lon, lat)| f(lon, lat))
            .collect();
        Field {
            variable: "z".into(),
            units: "m".into(),
            long_name: "height".into(),
            step: 0,
            time: chrono::DateTime::UNIX_EPOCH,
            grid: Arc::new(grid),
            values,
        }
    }

    #[test]
    fn circle_isoline_lies_on_the_circle() {
        // Distance from (180, 0) in degrees of the plate carrée plane; the 30 isoline is a circle.
        let f = field(LatLonGrid::regular(1.0), |lon, lat| {
            ((lon - 180.0).hypot(lat)) as f32
        });
        let segs = contour_segments(&f, 30.0);
        assert!(segs.len() > 100, "{}", segs.len());
        for s in &segs {
            for (lon, lat) in s {
                let r = (lon - 180.0).hypot(*lat);
                // Linear interpolation of a cone is exact along grid edges up to the cone's
                // curvature inside a 1° cell.
                assert!((r - 30.0).abs() < 0.05, "({lon}, {lat}) at radius {r}");
            }
        }
    }

    #[test]
    fn global_grids_close_across_the_seam_and_skip_missing() {
        let f = field(LatLonGrid::regular(2.0), |lon, _| {
            if (100.0..=120.0).contains(&lon) {
                f32::NAN
            } else {
                (lon.to_radians().sin()) as f32
            }
        });
        // sin(lon) = -0.01 near 180.57° and 359.43°, the latter inside the cell from 358° to 360°
        // that joins the last column to the first.
        let segs = contour_segments(&f, -0.01);
        assert!(
            segs.iter()
                .all(|s| (s[0].0 - 180.57).abs() < 0.05 || (s[0].0 - 359.43).abs() < 0.05),
            "{segs:?}"
        );
        assert!(segs.iter().any(|s| s[0].0 > 358.0), "wrap cell used");
        // The NaN band removes isolines there: sin = 0.94 near 70° and 110°, the latter inside it.
        let segs = contour_segments(&f, 0.94);
        assert!(segs.iter().all(|s| !(99.0..=121.0).contains(&s[0].0)));
        assert!(!segs.is_empty());
    }

    #[test]
    fn saddles_give_two_segments() {
        let grid = LatLonGrid {
            lat: vec![1.0, 0.0],
            lon: vec![0.0, 1.0],
        };
        let mut f = field(grid, |_, _| 0.0);
        f.values = vec![1.0, 0.0, 0.0, 1.0];
        assert_eq!(contour_segments(&f, 0.5).len(), 2);
        assert_eq!(format_level(280.0), "280");
        assert_eq!(format_level(-0.0), "0");
        assert_eq!(format_level(0.25), "0.25");
    }
}
