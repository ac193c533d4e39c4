//! Map projections: where a longitude/latitude lands on the map and back.
//!
//! Every projection works in *unit map coordinates* (u, v) ∈ [0, 1]², u to the right and v
//! downwards across [`Layout::map`](crate::Layout). The fragment shader (`src/shader.wgsl`)
//! inverts pixel → (lon, lat) with the same formulas in f32; [`MapView`] mirrors both directions
//! on the CPU in f64 so callers and tests can find the pixel of a place and the place of a pixel.

use crate::layout::{Layout, try_layout_with_aspect};
use crate::{Canvas, VizError};

/// Which pole a polar stereographic map is centred on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pole {
    /// The North Pole at the centre; `central_lon` points down the map.
    North,
    /// The South Pole at the centre; `central_lon` points up the map.
    South,
}

/// How the globe is laid flat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Projection {
    /// Plate carrée: longitude `central_lon - 180` at the left edge to `central_lon + 180` at the
    /// right, latitude 90 at the top to -90 at the bottom; the map is twice as wide as high.
    /// `central_lon = 180` (the default) puts longitude 0 at the left and the Pacific in the middle.
    Equirectangular {
        /// Longitude at the centre of the map, degrees.
        central_lon: f64,
    },
    /// The globe seen from infinitely far above (`centre_lon`, `centre_lat`): a disc filling a
    /// square map; the far side is not drawn.
    Orthographic {
        /// Longitude under the viewer, degrees.
        centre_lon: f64,
        /// Latitude under the viewer, degrees (−90..=90).
        centre_lat: f64,
    },
    /// Stereographic from the opposite pole: a disc filling a square map, the pole at the centre,
    /// `boundary_lat` on the rim (conformal, so shapes keep their angles).
    PolarStereographic {
        /// The pole at the centre.
        pole: Pole,
        /// Longitude pointing down (north) or up (south) from the pole, degrees.
        central_lon: f64,
        /// Latitude of the rim, degrees, between 1° and 179° away from the centre pole (e.g. 30
        /// for `North`, −50 for `South`).
        boundary_lat: f64,
    },
}

impl Default for Projection {
    fn default() -> Self {
        Projection::Equirectangular { central_lon: 180.0 }
    }
}

/// Small bisection count for finding where a line leaves the visible part of the map: 2⁻²⁰ of a
/// segment is far below a pixel.
const EDGE_BISECTIONS: u32 = 20;

impl Projection {
    /// Map width ÷ height: 2 for equirectangular, 1 for the disc projections.
    pub fn aspect(&self) -> u32 {
        match self {
            Projection::Equirectangular { .. } => 2,
            _ => 1,
        }
    }

    /// True for the projections drawn as a disc (orthographic, polar stereographic).
    pub fn is_disc(&self) -> bool {
        self.aspect() == 1
    }

    /// Refuses non-finite or out-of-range parameters, naming the parameter and its value.
    pub fn validate(&self) -> Result<(), VizError> {
        let bad = |parameter: &'static str, value: f64, reason: &'static str| {
            Err(VizError::Projection {
                parameter,
                value,
                reason,
            })
        };
        match *self {
            Projection::Equirectangular { central_lon } => {
                if !central_lon.is_finite() {
                    return bad("central_lon", central_lon, "must be finite");
                }
            }
            Projection::Orthographic {
                centre_lon,
                centre_lat,
            } => {
                if !centre_lon.is_finite() {
                    return bad("centre_lon", centre_lon, "must be finite");
                }
                if !(-90.0..=90.0).contains(&centre_lat) {
                    return bad("centre_lat", centre_lat, "must lie in -90..=90");
                }
            }
            Projection::PolarStereographic {
                pole,
                central_lon,
                boundary_lat,
            } => {
                if !central_lon.is_finite() {
                    return bad("central_lon", central_lon, "must be finite");
                }
                // Distance of the rim from the centre pole; the opposite pole is at infinity.
                let colat = self.polar_colatitude(pole, boundary_lat);
                if !(1.0..=179.0).contains(&colat) || boundary_lat.is_nan() {
                    return bad(
                        "boundary_lat",
                        boundary_lat,
                        "must lie between 1° and 179° from the centre pole",
                    );
                }
            }
        }
        Ok(())
    }

    fn polar_colatitude(&self, pole: Pole, lat: f64) -> f64 {
        match pole {
            Pole::North => 90.0 - lat,
            Pole::South => 90.0 + lat,
        }
    }

    /// Unit map coordinates (u right, v down, both 0..=1 on the map) of (`lon`, `lat`) in
    /// degrees; `None` where the place is not drawn (far side of the globe, beyond the polar
    /// boundary, latitude outside −90..=90, non-finite input). Equirectangular u is in 0..1.
    pub fn project(&self, lon: f64, lat: f64) -> Option<(f64, f64)> {
        if !lon.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return None;
        }
        match *self {
            Projection::Equirectangular { central_lon } => {
                let u = (lon - (central_lon - 180.0)).rem_euclid(360.0) / 360.0;
                Some((u.min(1.0), (90.0 - lat) / 180.0))
            }
            Projection::Orthographic {
                centre_lon,
                centre_lat,
            } => {
                let (phi, dlam) = (lat.to_radians(), (lon - centre_lon).to_radians());
                let phi0 = centre_lat.to_radians();
                let z = phi0.sin() * phi.sin() + phi0.cos() * phi.cos() * dlam.cos();
                if z < 0.0 {
                    return None;
                }
                let x = phi.cos() * dlam.sin();
                let y = phi0.cos() * phi.sin() - phi0.sin() * phi.cos() * dlam.cos();
                Some(((x + 1.0) / 2.0, (1.0 - y) / 2.0))
            }
            Projection::PolarStereographic {
                pole,
                central_lon,
                boundary_lat,
            } => {
                let rim = (self.polar_colatitude(pole, boundary_lat) / 2.0)
                    .to_radians()
                    .tan();
                let colat = self.polar_colatitude(pole, lat);
                if colat > self.polar_colatitude(pole, boundary_lat) {
                    return None;
                }
                let r = (colat / 2.0).to_radians().tan() / rim;
                let dlam = (lon - central_lon).to_radians();
                let (x, y) = match pole {
                    Pole::North => (r * dlam.sin(), -r * dlam.cos()),
                    Pole::South => (r * dlam.sin(), r * dlam.cos()),
                };
                Some(((x + 1.0) / 2.0, (1.0 - y) / 2.0))
            }
        }
    }

    /// The (lon, lat) in degrees shown at unit map coordinates (u, v); `None` off the globe or
    /// disc. Longitudes come back in 0..360.
    pub fn unproject(&self, u: f64, v: f64) -> Option<(f64, f64)> {
        if !(0.0..=1.0).contains(&u) || !(0.0..=1.0).contains(&v) {
            return None;
        }
        let (lon, lat) = match *self {
            Projection::Equirectangular { central_lon } => {
                (central_lon - 180.0 + u * 360.0, 90.0 - v * 180.0)
            }
            Projection::Orthographic {
                centre_lon,
                centre_lat,
            } => {
                let (x, y) = (2.0 * u - 1.0, 1.0 - 2.0 * v);
                let rho2 = x * x + y * y;
                if rho2 > 1.0 {
                    return None;
                }
                let z = (1.0 - rho2).sqrt();
                let phi0 = centre_lat.to_radians();
                let lat = (y * phi0.cos() + z * phi0.sin()).clamp(-1.0, 1.0).asin();
                let lon = x.atan2(z * phi0.cos() - y * phi0.sin());
                (centre_lon + lon.to_degrees(), lat.to_degrees())
            }
            Projection::PolarStereographic {
                pole,
                central_lon,
                boundary_lat,
            } => {
                let (x, y) = (2.0 * u - 1.0, 1.0 - 2.0 * v);
                let rho2 = x * x + y * y;
                if rho2 > 1.0 {
                    return None;
                }
                let rim = (self.polar_colatitude(pole, boundary_lat) / 2.0)
                    .to_radians()
                    .tan();
                let colat = 2.0 * (rho2.sqrt() * rim).atan().to_degrees();
                match pole {
                    Pole::North => (central_lon + x.atan2(-y).to_degrees(), 90.0 - colat),
                    Pole::South => (central_lon + x.atan2(y).to_degrees(), colat - 90.0),
                }
            }
        };
        Some((lon.rem_euclid(360.0), lat))
    }

    /// The shader's projection parameters: kind (0 equirectangular, 1 orthographic, 2 polar
    /// north, 3 polar south) and four floats.
    pub(crate) fn shader_params(&self) -> (u32, [f32; 4]) {
        match *self {
            Projection::Equirectangular { central_lon } => {
                (0, [(central_lon - 180.0) as f32, 0.0, 0.0, 0.0])
            }
            Projection::Orthographic {
                centre_lon,
                centre_lat,
            } => {
                let phi0 = centre_lat.to_radians();
                (
                    1,
                    [centre_lon as f32, phi0.sin() as f32, phi0.cos() as f32, 0.0],
                )
            }
            Projection::PolarStereographic {
                pole,
                central_lon,
                boundary_lat,
            } => {
                let rim = (self.polar_colatitude(pole, boundary_lat) / 2.0)
                    .to_radians()
                    .tan();
                let kind = if pole == Pole::North { 2 } else { 3 };
                (kind, [central_lon as f32, rim as f32, 0.0, 0.0])
            }
        }
    }
}

/// A laid-out canvas with a projection: the CPU mirror of what the shader draws where.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapView {
    /// Where title, map and colorbar go.
    pub layout: Layout,
    /// How the map shows the globe.
    pub projection: Projection,
}

impl MapView {
    /// Lays out `canvas` for `projection` (a 2:1 map for equirectangular, square for the discs);
    /// fails on invalid projection parameters or a canvas too small for a map 32 px wide and 16
    /// px high.
    pub fn new(canvas: Canvas, projection: Projection) -> Result<Self, VizError> {
        projection.validate()?;
        Ok(Self {
            layout: try_layout_with_aspect(canvas, projection.aspect())?,
            projection,
        })
    }

    /// Continuous canvas coordinates (x right, y down, pixel (i, j) covering [i, i+1)×[j, j+1))
    /// of (`lon`, `lat`); `None` where the place is not drawn.
    pub fn lonlat_to_xy(&self, lon: f64, lat: f64) -> Option<(f64, f64)> {
        let (u, v) = self.projection.project(lon, lat)?;
        let m = self.layout.map;
        Some((
            f64::from(m.x) + u * f64::from(m.width),
            f64::from(m.y) + v * f64::from(m.height),
        ))
    }

    /// The map pixel that shows (`lon`, `lat`); `None` where the place is not drawn.
    pub fn lonlat_to_pixel(&self, lon: f64, lat: f64) -> Option<(u32, u32)> {
        let (x, y) = self.lonlat_to_xy(lon, lat)?;
        let m = self.layout.map;
        // Both are within the map's span after projecting, so the casts stay on the canvas.
        let col = ((x.floor() as u32).max(m.x)).min(m.right() - 1);
        let row = ((y.floor() as u32).max(m.y)).min(m.bottom() - 1);
        Some((col, row))
    }

    /// The (lon, lat) the shader samples at the centre of pixel (x, y), longitude in 0..360;
    /// `None` outside the map or off the globe/disc.
    pub fn pixel_to_lonlat(&self, x: u32, y: u32) -> Option<(f64, f64)> {
        let m = self.layout.map;
        if !m.contains(x, y) {
            return None;
        }
        self.xy_to_lonlat(f64::from(x) + 0.5, f64::from(y) + 0.5)
    }

    /// The (lon, lat) at continuous canvas coordinates (x, y); `None` off the map.
    pub fn xy_to_lonlat(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let m = self.layout.map;
        let u = (x - f64::from(m.x)) / f64::from(m.width);
        let v = (y - f64::from(m.y)) / f64::from(m.height);
        self.projection.unproject(u, v)
    }

    /// The visible pieces of the straight (in lon/lat) line from `a` to `b`, as canvas-coordinate
    /// segments: split where it crosses the equirectangular seam (drawn on both sides) and clipped
    /// where it goes behind the globe or beyond the polar boundary. Longitudes take the short way
    /// round. Long lines are cut into pieces of at most `max_step_deg` so that they curve with the
    /// projection.
    pub(crate) fn segment_pieces(
        &self,
        a: (f64, f64),
        b: (f64, f64),
        max_step_deg: f64,
    ) -> Vec<[(f64, f64); 2]> {
        let mut out = Vec::new();
        let dlon = (b.0 - a.0 + 180.0).rem_euclid(360.0) - 180.0;
        let dlat = b.1 - a.1;
        let steps = (dlon.abs().max(dlat.abs()) / max_step_deg).ceil().max(1.0) as usize;
        let at = |t: f64| (a.0 + dlon * t, a.1 + dlat * t);
        for i in 0..steps {
            let (t0, t1) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
            let (p, q) = (at(t0), at(t1));
            match self.projection {
                Projection::Equirectangular { .. } => self.equirect_pieces(p, q, &mut out),
                _ => self.clipped_piece(p, q, &mut out),
            }
        }
        out
    }

    fn equirect_pieces(&self, p: (f64, f64), q: (f64, f64), out: &mut Vec<[(f64, f64); 2]>) {
        let (Some(pa), Some(_)) = (self.lonlat_to_xy(p.0, p.1), self.lonlat_to_xy(q.0, q.1)) else {
            return;
        };
        let m = self.layout.map;
        let w = f64::from(m.width);
        // Continue from p's position without wrapping, so the piece may run off one edge; the
        // copy one map-width over then shows the part that comes in on the other side.
        let qx = pa.0 + (q.0 - p.0) / 360.0 * w;
        let qy = f64::from(m.y) + (90.0 - q.1) / 180.0 * f64::from(m.height);
        out.push([pa, (qx, qy)]);
        let (left, right) = (f64::from(m.x), f64::from(m.right()));
        if qx < left || pa.0 < left {
            out.push([(pa.0 + w, pa.1), (qx + w, qy)]);
        }
        if qx >= right || pa.0 >= right {
            out.push([(pa.0 - w, pa.1), (qx - w, qy)]);
        }
    }

    fn clipped_piece(&self, p: (f64, f64), q: (f64, f64), out: &mut Vec<[(f64, f64); 2]>) {
        let at = |t: f64| (p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t);
        match (self.lonlat_to_xy(p.0, p.1), self.lonlat_to_xy(q.0, q.1)) {
            (Some(a), Some(b)) => out.push([a, b]),
            (None, None) => {}
            (visible_p, _) => {
                // One end is hidden: find the rim between them by bisection on the parameter.
                let (mut lo, mut hi) = if visible_p.is_some() {
                    (0.0, 1.0)
                } else {
                    (1.0, 0.0)
                };
                for _ in 0..EDGE_BISECTIONS {
                    let mid = (lo + hi) / 2.0;
                    let (lon, lat) = at(mid);
                    if self.lonlat_to_xy(lon, lat).is_some() {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                let (edge_lon, edge_lat) = at(lo);
                let (inside_lon, inside_lat) = if visible_p.is_some() { p } else { q };
                if let (Some(a), Some(b)) = (
                    self.lonlat_to_xy(inside_lon, inside_lat),
                    self.lonlat_to_xy(edge_lon, edge_lat),
                ) {
                    out.push([a, b]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Projection> {
        vec![
            Projection::default(),
            Projection::Equirectangular { central_lon: 0.0 },
            Projection::Orthographic {
                centre_lon: -40.0,
                centre_lat: 35.0,
            },
            Projection::Orthographic {
                centre_lon: 0.0,
                centre_lat: 90.0,
            },
            Projection::PolarStereographic {
                pole: Pole::North,
                central_lon: 0.0,
                boundary_lat: 30.0,
            },
            Projection::PolarStereographic {
                pole: Pole::South,
                central_lon: 90.0,
                boundary_lat: -50.0,
            },
        ]
    }

    #[test]
    fn project_and_unproject_round_trip() {
        for proj in all() {
            for (lon, lat) in [(10.0, 60.0), (300.0, 45.5), (200.0, 70.0), (50.0, -60.0)] {
                let Some((u, v)) = proj.project(lon, lat) else {
                    continue;
                };
                let (lon2, lat2) = proj
                    .unproject(u, v)
                    .unwrap_or_else(|| panic!("{proj:?}: ({u}, {v}) not on the map"));
                let dlon = (lon2 - lon + 180.0).rem_euclid(360.0) - 180.0;
                assert!(
                    dlon.abs() < 1e-9 && (lat2 - lat).abs() < 1e-9,
                    "{proj:?}: ({lon}, {lat}) came back as ({lon2}, {lat2})"
                );
            }
        }
    }

    #[test]
    fn known_places() {
        let eq = Projection::Equirectangular { central_lon: 0.0 };
        assert_eq!(eq.project(0.0, 0.0), Some((0.5, 0.5)));
        assert_eq!(eq.project(-90.0, 90.0), Some((0.25, 0.0)));
        let ortho = Projection::Orthographic {
            centre_lon: 20.0,
            centre_lat: 10.0,
        };
        assert_eq!(ortho.project(20.0, 10.0), Some((0.5, 0.5)));
        assert_eq!(ortho.project(200.0, -10.0), None, "antipode is hidden");
        let (u, v) = ortho.project(30.0, 10.0).unwrap_or_default();
        assert!(u > 0.5 && (v - 0.5).abs() < 0.01, "east is right: {u} {v}");
        let north = Projection::PolarStereographic {
            pole: Pole::North,
            central_lon: 0.0,
            boundary_lat: 30.0,
        };
        assert_eq!(north.project(123.0, 90.0), Some((0.5, 0.5)));
        let (u, v) = north.project(0.0, 30.0).unwrap_or_default();
        assert!(
            (u - 0.5).abs() < 1e-12 && (v - 1.0).abs() < 1e-12,
            "{u} {v}"
        );
        let (u, _) = north.project(90.0, 60.0).unwrap_or_default();
        assert!(u > 0.5, "90°E to the right when 0° points down");
        assert_eq!(north.project(0.0, 29.0), None);
        let south = Projection::PolarStereographic {
            pole: Pole::South,
            central_lon: 0.0,
            boundary_lat: -40.0,
        };
        let (u, v) = south.project(0.0, -40.0).unwrap_or_default();
        assert!(
            (u - 0.5).abs() < 1e-12 && v.abs() < 1e-12,
            "0° at the top: {u} {v}"
        );
        assert_eq!(south.project(0.0, -39.0), None);
    }

    #[test]
    fn invalid_parameters_are_named() {
        let err = |p: Projection| {
            p.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let e = err(Projection::Orthographic {
            centre_lon: 0.0,
            centre_lat: 95.0,
        });
        assert!(e.contains("centre_lat") && e.contains("95"), "{e}");
        let e = err(Projection::PolarStereographic {
            pole: Pole::North,
            central_lon: 0.0,
            boundary_lat: -89.5,
        });
        assert!(e.contains("boundary_lat") && e.contains("-89.5"), "{e}");
        let e = err(Projection::Equirectangular {
            central_lon: f64::NAN,
        });
        assert!(e.contains("central_lon"), "{e}");
        for p in all() {
            assert!(p.validate().is_ok(), "{p:?}");
        }
    }

    #[test]
    fn seam_crossing_is_drawn_on_both_sides() {
        let view = MapView::new(Canvas::new(640, 360), Projection::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let m = view.layout.map;
        let pieces = view.segment_pieces((359.0, 0.0), (1.0, 0.0), 90.0);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        let xs: Vec<f64> = pieces.iter().flat_map(|p| [p[0].0, p[1].0]).collect();
        assert!(xs.iter().any(|&x| x > f64::from(m.right()) - 3.0));
        assert!(xs.iter().any(|&x| x < f64::from(m.x) + 3.0));
    }

    #[test]
    fn lines_stop_at_the_limb() {
        let view = MapView::new(
            Canvas::new(400, 400),
            Projection::Orthographic {
                centre_lon: 0.0,
                centre_lat: 0.0,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Along the equator from 60°E to 120°E: visible up to 90°E, the rim.
        let pieces = view.segment_pieces((60.0, 0.0), (120.0, 0.0), 1.0);
        let far = pieces
            .iter()
            .flat_map(|p| [p[0].0, p[1].0])
            .fold(0.0, f64::max);
        let m = view.layout.map;
        assert!(
            (far - f64::from(m.right())).abs() < 0.5,
            "reaches the rim: {far} vs {}",
            m.right()
        );
    }
}
