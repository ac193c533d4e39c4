//! The latitude/longitude graticule: meridians and parallels through the projection.

use crate::VizError;
use crate::overlay::{Coverage, Overlay, line_width};
use crate::projection::MapView;

/// Meridians every `lon_step_deg` (from longitude 0) and parallels every `lat_step_deg` (from the
/// equator), the poles excluded. Meridians on multiples of 90° run pole to pole, the others stop
/// at ±80° so they do not merge where they converge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GraticuleLayer {
    /// Degrees between meridians.
    pub lon_step_deg: f64,
    /// Degrees between parallels.
    pub lat_step_deg: f64,
    /// Line colour, RGBA (translucent by default so the field shows through).
    pub rgba: [u8; 4],
}

impl Default for GraticuleLayer {
    /// Every 30°, dark grey at 45 % opacity.
    fn default() -> Self {
        Self {
            lon_step_deg: 30.0,
            lat_step_deg: 30.0,
            rgba: [40, 40, 40, 115],
        }
    }
}

/// Drawing step along meridians and parallels, degrees: short enough to curve smoothly.
const TRACE_STEP_DEG: f64 = 1.0;
/// How far towards the poles the meridians not on a multiple of 90° run, degrees.
const MERIDIAN_REACH_DEG: f64 = 80.0;

impl GraticuleLayer {
    pub(crate) fn draw(&self, view: &MapView, overlay: &mut Overlay) -> Result<(), VizError> {
        for (name, step) in [
            ("lon_step_deg", self.lon_step_deg),
            ("lat_step_deg", self.lat_step_deg),
        ] {
            if !(0.1..=180.0).contains(&step) {
                return Err(VizError::Layer {
                    layer: "graticule",
                    reason: format!("{name} {step} must lie in 0.1..=180 degrees"),
                });
            }
        }
        let width = line_width(view.layout.scale);
        let mut lines = overlay.coverage(view.layout.map);
        let trace = |lines: &mut Coverage, points: &[(f64, f64)]| {
            for pair in points.windows(2) {
                lines.geo_line(view, pair[0], pair[1], width);
            }
        };
        let meridians = (360.0 / self.lon_step_deg).ceil() as usize;
        for i in 0..meridians {
            let lon = i as f64 * self.lon_step_deg;
            if lon >= 360.0 - 1e-9 {
                break;
            }
            // Only the meridians every 90° reach the poles; the others stop at ±80° so they do not
            // merge into a blot where they converge.
            let reach = if (lon / 90.0).fract().abs() < 1e-9 {
                90.0
            } else {
                MERIDIAN_REACH_DEG
            };
            let n = (2.0 * reach / TRACE_STEP_DEG).round() as usize;
            let points: Vec<(f64, f64)> = (0..=n)
                .map(|k| (lon, -reach + k as f64 * TRACE_STEP_DEG))
                .collect();
            trace(&mut lines, &points);
        }
        let rings = (90.0 / self.lat_step_deg).ceil() as i64;
        for k in -rings..=rings {
            let lat = k as f64 * self.lat_step_deg;
            if lat.abs() >= 90.0 - 1e-9 {
                continue;
            }
            let n = (360.0 / TRACE_STEP_DEG) as usize;
            let points: Vec<(f64, f64)> =
                (0..=n).map(|j| (j as f64 * TRACE_STEP_DEG, lat)).collect();
            trace(&mut lines, &points);
        }
        overlay.blend_coverage(&lines, self.rgba);
        Ok(())
    }
}
