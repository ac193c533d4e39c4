//! Wind vectors: arrows on a regular lattice of map pixels, pointing downwind.

use isotach_core::Field;

use crate::VizError;
use crate::contour::check_field_shape;
use crate::overlay::{Overlay, line_width};
use crate::projection::MapView;
use crate::sample::bilinear;

/// Arrows showing the vector field (`u` eastward, `v` northward) every `spacing_px` pixels.
#[derive(Debug, Clone)]
pub struct VectorLayer<'a> {
    /// Eastward component.
    pub u: &'a Field,
    /// Northward component, on the same grid as `u`.
    pub v: &'a Field,
    /// Distance between arrow centres in pixels (the density); see [`arrow_anchors`].
    pub spacing_px: u32,
    /// Speed drawn as an arrow 0.9 × `spacing_px` long (faster winds are capped at that length);
    /// `None`: the fastest speed among the arrows drawn.
    pub reference_speed: Option<f32>,
    /// Arrow colour, RGBA.
    pub rgba: [u8; 4],
}

impl<'a> VectorLayer<'a> {
    /// Near-black arrows every `spacing_px` pixels, scaled to the fastest arrow.
    pub fn new(u: &'a Field, v: &'a Field, spacing_px: u32) -> Self {
        Self {
            u,
            v,
            spacing_px,
            reference_speed: None,
            rgba: [20, 20, 20, 255],
        }
    }

    pub(crate) fn draw(&self, view: &MapView, overlay: &mut Overlay) -> Result<(), VizError> {
        check_field_shape("vectors", self.u)?;
        check_field_shape("vectors", self.v)?;
        if self.u.grid != self.v.grid {
            return Err(VizError::Layer {
                layer: "vectors",
                reason: format!(
                    "u ({}) and v ({}) are on different grids ({:?} vs {:?} lat × lon)",
                    self.u.variable,
                    self.v.variable,
                    self.u.grid.shape(),
                    self.v.grid.shape()
                ),
            });
        }
        if self.spacing_px < 4 {
            return Err(VizError::Layer {
                layer: "vectors",
                reason: format!("spacing_px {} is below 4 pixels", self.spacing_px),
            });
        }
        if let Some(s) = self.reference_speed
            && !(s.is_finite() && s > 0.0)
        {
            return Err(VizError::Layer {
                layer: "vectors",
                reason: format!("reference_speed {s} must be finite and positive"),
            });
        }
        // Wind and its screen direction at every anchor first, to find the fastest.
        let mut arrows = Vec::new();
        for (x, y) in arrow_anchors(view, self.spacing_px) {
            let centre = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let Some((lon, lat)) = view.xy_to_lonlat(centre.0, centre.1) else {
                continue;
            };
            let (Some(u), Some(v)) = (bilinear(self.u, lon, lat), bilinear(self.v, lon, lat))
            else {
                continue;
            };
            let Some((east, north)) = screen_axes(view, lon, lat, centre) else {
                continue;
            };
            let d = (u * east.0 + v * north.0, u * east.1 + v * north.1);
            let norm = d.0.hypot(d.1);
            let speed = u.hypot(v);
            if norm > 0.0 && speed.is_finite() {
                arrows.push((centre, (d.0 / norm, d.1 / norm), speed));
            }
        }
        let reference = match self.reference_speed {
            Some(s) => f64::from(s),
            None => arrows.iter().map(|a| a.2).fold(0.0, f64::max),
        };
        if reference <= 0.0 {
            return Ok(());
        }
        let scale = view.layout.scale;
        let width = line_width(scale);
        let full = 0.9 * f64::from(self.spacing_px);
        let mut ink = overlay.coverage(view.layout.map);
        for (c, d, speed) in arrows {
            let length = full * (speed / reference).min(1.0);
            if length < 2.0 {
                continue; // calm: a dot would read as noise
            }
            let tail = (c.0 - d.0 * length / 2.0, c.1 - d.1 * length / 2.0);
            let tip = (c.0 + d.0 * length / 2.0, c.1 + d.1 * length / 2.0);
            ink.line(tail, tip, width);
            let head = (0.35 * length).max(3.0 * f64::from(scale));
            for side in [-1.0_f64, 1.0] {
                let angle = side * 28f64.to_radians();
                let (s, co) = angle.sin_cos();
                // The shaft direction turned by ±28°, pointing back from the tip.
                let back = (-(d.0 * co - d.1 * s), -(d.0 * s + d.1 * co));
                ink.line(tip, (tip.0 + back.0 * head, tip.1 + back.1 * head), width);
            }
        }
        overlay.blend_coverage(&ink, self.rgba);
        Ok(())
    }
}

/// Unit vectors (in canvas pixels, y down) of east and north at (lon, lat), from the projection
/// by finite differences; `None` where the projection has no neighbourhood there.
fn screen_axes(
    view: &MapView,
    lon: f64,
    lat: f64,
    centre: (f64, f64),
) -> Option<((f64, f64), (f64, f64))> {
    const STEP_DEG: f64 = 1e-3;
    let unit = |a: Option<(f64, f64)>, b: Option<(f64, f64)>, span: f64| {
        let (p, q, k) = match (a, b) {
            (Some(p), Some(q)) => (p, q, 2.0),
            (Some(p), None) => (p, centre, 1.0),
            (None, Some(q)) => (centre, q, 1.0),
            (None, None) => return None,
        };
        let (dx, dy) = (p.0 - q.0, p.1 - q.1);
        let n = dx.hypot(dy);
        // A jump of many pixels over a thousandth of a degree is the map's seam, not a direction.
        (n > 0.0 && n / (k * span) < 1e4).then_some((dx / n, dy / n))
    };
    let east = unit(
        view.lonlat_to_xy(lon + STEP_DEG, lat),
        view.lonlat_to_xy(lon - STEP_DEG, lat),
        STEP_DEG,
    )?;
    let north = unit(
        view.lonlat_to_xy(lon, (lat + STEP_DEG).min(90.0)),
        view.lonlat_to_xy(lon, (lat - STEP_DEG).max(-90.0)),
        STEP_DEG,
    )?;
    Some((east, north))
}

/// The pixels where arrows are centred: (map.x + s/2 + i·s, map.y + s/2 + j·s) for `s` =
/// `spacing_px`, keeping those on the visible globe/disc.
pub fn arrow_anchors(view: &MapView, spacing_px: u32) -> Vec<(u32, u32)> {
    let m = view.layout.map;
    let s = spacing_px.max(1);
    let mut out = Vec::new();
    let mut y = m.y + s / 2;
    while y < m.bottom() {
        let mut x = m.x + s / 2;
        while x < m.right() {
            if view.pixel_to_lonlat(x, y).is_some() {
                out.push((x, y));
            }
            x += s;
        }
        y += s;
    }
    out
}
