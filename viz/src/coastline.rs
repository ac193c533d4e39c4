//! Coastlines from Natural Earth's land polygons, as packaged in the npm package `world-atlas`
//! (TopoJSON, `land-110m.json`, `land-50m.json`, `land-10m.json`).
//!
//! The data is installed by `viz/scripts/fetch-coastlines.sh` (the test command runs it) into
//! `.ci/cache/coastlines/world-atlas` of the workspace; `ISOTACH_COASTLINE_DIR` points elsewhere.

use std::path::{Path, PathBuf};

use crate::VizError;
use crate::land::LandMask;
use crate::overlay::{Overlay, line_width};
use crate::projection::{MapView, Pole, Projection};

/// Environment variable naming the directory that holds `land-110m.json`, `land-50m.json` and
/// `land-10m.json`.
pub const COASTLINE_DIR_ENV: &str = "ISOTACH_COASTLINE_DIR";

/// The command (from the workspace root) that installs the coastline data.
pub const COASTLINE_INSTALL_COMMAND: &str = "viz/scripts/fetch-coastlines.sh";

/// Where coastline data is looked for: `$ISOTACH_COASTLINE_DIR` when set, else the workspace's
/// `.ci/cache/coastlines/world-atlas` (the path is compiled in, for development and tests;
/// installed binaries set the variable).
pub fn default_coastline_dir() -> PathBuf {
    match std::env::var_os(COASTLINE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/cache/coastlines/world-atlas"),
    }
}

/// Natural Earth scale of the shorelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoastlineResolution {
    /// 1:110 million (about 5 000 points): globes and maps up to ~1 400 px around the world.
    Low110m,
    /// 1:50 million (about 60 000 points): up to ~5 800 px around the world.
    Medium50m,
    /// 1:10 million (about 400 000 points): wall-sized maps.
    High10m,
}

impl CoastlineResolution {
    /// The file in the `world-atlas` package.
    pub fn file_name(self) -> &'static str {
        match self {
            CoastlineResolution::Low110m => "land-110m.json",
            CoastlineResolution::Medium50m => "land-50m.json",
            CoastlineResolution::High10m => "land-10m.json",
        }
    }

    /// The resolution that suits `view`: by the map's pixels per degree (below 4 px/° the
    /// 110m set, below 16 px/° the 50m set, else 10m), so a vertex lands every few pixels.
    pub fn for_view(view: &MapView) -> Self {
        let px_per_deg = pixels_per_degree(view);
        if px_per_deg < 4.0 {
            CoastlineResolution::Low110m
        } else if px_per_deg < 16.0 {
            CoastlineResolution::Medium50m
        } else {
            CoastlineResolution::High10m
        }
    }
}

/// Map pixels per degree of latitude at the map's centre.
fn pixels_per_degree(view: &MapView) -> f64 {
    let width = f64::from(view.layout.map.width);
    let degrees_across = match view.projection {
        Projection::Equirectangular { .. } => 360.0,
        Projection::Orthographic { .. } => 180.0,
        Projection::PolarStereographic {
            pole, boundary_lat, ..
        } => {
            let colat = match pole {
                Pole::North => 90.0 - boundary_lat,
                Pole::South => 90.0 + boundary_lat,
            };
            2.0 * colat
        }
    };
    width / degrees_across
}

/// Shorelines as polylines of (lon, lat) degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct Coastlines {
    /// The file they were read from.
    pub source: PathBuf,
    /// Each line's points, longitude in -180..=180.
    pub lines: Vec<Vec<(f64, f64)>>,
    /// The land polygons' rings (outer rings and lakes alike; even-odd decides), closed, as
    /// stored: longitudes may jump across the antimeridian.
    pub land_rings: Vec<Vec<(f64, f64)>>,
}

impl Coastlines {
    /// Reads `resolution` from [`default_coastline_dir`]; a missing file is
    /// [`VizError::CoastlinesMissing`], naming the path and the install command.
    pub fn load(resolution: CoastlineResolution) -> Result<Self, VizError> {
        Self::load_from(&default_coastline_dir(), resolution)
    }

    /// Reads `resolution` from `dir`.
    pub fn load_from(dir: &Path, resolution: CoastlineResolution) -> Result<Self, VizError> {
        let path = dir.join(resolution.file_name());
        if !path.is_file() {
            return Err(VizError::CoastlinesMissing {
                path,
                env_var: COASTLINE_DIR_ENV,
                install: COASTLINE_INSTALL_COMMAND,
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| VizError::Io {
            path: path.clone(),
            source,
        })?;
        Self::parse_topojson(&text, &path)
    }

    /// Total number of points.
    pub fn point_count(&self) -> usize {
        self.lines.iter().map(Vec::len).sum()
    }

    /// Decodes every arc of a TopoJSON topology (quantized and delta-encoded when it has a
    /// `transform`). Edges that Natural Earth adds to close polygons (along the antimeridian,
    /// and along the bottom of the map under Antarctica) are not shorelines and are dropped.
    pub fn parse_topojson(text: &str, source: &Path) -> Result<Self, VizError> {
        let format = |reason: String| VizError::CoastlinesFormat {
            path: source.to_path_buf(),
            reason,
        };
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format(format!("not JSON: {e}")))?;
        if doc.get("type").and_then(|t| t.as_str()) != Some("Topology") {
            return Err(format(format!(
                "expected a TopoJSON Topology, found type {}",
                doc.get("type").unwrap_or(&serde_json::Value::Null)
            )));
        }
        let pair = |v: Option<&serde_json::Value>, name: &str| -> Result<[f64; 2], VizError> {
            let arr = v
                .and_then(|v| v.as_array())
                .filter(|a| a.len() == 2)
                .ok_or_else(|| format(format!("transform.{name} is not a pair of numbers")))?;
            let num = |i: usize| {
                arr[i]
                    .as_f64()
                    .ok_or_else(|| format(format!("transform.{name}[{i}] is not a number")))
            };
            Ok([num(0)?, num(1)?])
        };
        let transform = match doc.get("transform") {
            Some(t) => Some((
                pair(t.get("scale"), "scale")?,
                pair(t.get("translate"), "translate")?,
            )),
            None => None,
        };
        let arcs = doc
            .get("arcs")
            .and_then(|a| a.as_array())
            .ok_or_else(|| format("no \"arcs\" array".into()))?;
        let mut lines = Vec::new();
        let mut decoded: Vec<Vec<(f64, f64)>> = Vec::with_capacity(arcs.len());
        for (i, arc) in arcs.iter().enumerate() {
            let positions = arc
                .as_array()
                .ok_or_else(|| format(format!("arc {i} is not an array")))?;
            let mut points = Vec::with_capacity(positions.len());
            let (mut qx, mut qy) = (0.0, 0.0);
            for (j, p) in positions.iter().enumerate() {
                let xy = p
                    .as_array()
                    .filter(|a| a.len() >= 2)
                    .and_then(|a| Some((a[0].as_f64()?, a[1].as_f64()?)))
                    .ok_or_else(|| format(format!("arc {i} position {j} is not [x, y]")))?;
                let (lon, lat) = match transform {
                    Some(([sx, sy], [tx, ty])) => {
                        qx += xy.0;
                        qy += xy.1;
                        (qx * sx + tx, qy * sy + ty)
                    }
                    None => xy,
                };
                if !(lon.is_finite() && (-90.0..=90.0).contains(&lat)) {
                    return Err(format(format!(
                        "arc {i} position {j} decodes to ({lon}, {lat}), not a longitude/latitude"
                    )));
                }
                points.push((lon, lat));
            }
            split_off_closing_edges(points.clone(), &mut lines);
            decoded.push(points);
        }
        if lines.is_empty() {
            return Err(format("no shoreline arcs".into()));
        }
        let mut land_rings = Vec::new();
        if let Some(objects) = doc.get("objects").and_then(|o| o.as_object()) {
            for (name, object) in objects {
                collect_rings(object, &decoded, &mut land_rings)
                    .map_err(|reason| format(format!("object {name}: {reason}")))?;
            }
        }
        Ok(Self {
            source: source.to_path_buf(),
            lines,
            land_rings,
        })
    }
}

/// Appends the rings of a TopoJSON geometry (Polygon, MultiPolygon, or a GeometryCollection of
/// them) built from the decoded `arcs` (index `!i` is arc `i` reversed).
fn collect_rings(
    geometry: &serde_json::Value,
    arcs: &[Vec<(f64, f64)>],
    rings: &mut Vec<Vec<(f64, f64)>>,
) -> Result<(), String> {
    let kind = geometry.get("type").and_then(|t| t.as_str()).unwrap_or("");
    let polygons: Vec<&serde_json::Value> = match kind {
        "GeometryCollection" => {
            for g in geometry
                .get("geometries")
                .and_then(|g| g.as_array())
                .ok_or("GeometryCollection without geometries")?
            {
                collect_rings(g, arcs, rings)?;
            }
            return Ok(());
        }
        "Polygon" => vec![geometry.get("arcs").ok_or("Polygon without arcs")?],
        "MultiPolygon" => geometry
            .get("arcs")
            .and_then(|a| a.as_array())
            .ok_or("MultiPolygon without arcs")?
            .iter()
            .collect(),
        // Lines and points carry no area.
        _ => return Ok(()),
    };
    for polygon in polygons {
        for ring in polygon.as_array().ok_or("polygon is not a list of rings")? {
            let mut points: Vec<(f64, f64)> = Vec::new();
            for index in ring.as_array().ok_or("ring is not a list of arc indices")? {
                let i = index
                    .as_i64()
                    .ok_or_else(|| format!("arc index {index} is not an integer"))?;
                let (arc, reversed) = if i >= 0 { (i, false) } else { (!i, true) };
                let arc = usize::try_from(arc)
                    .ok()
                    .and_then(|a| arcs.get(a))
                    .ok_or_else(|| {
                        format!("arc index {i} is out of range (have {})", arcs.len())
                    })?;
                let skip = usize::from(!points.is_empty());
                if reversed {
                    points.extend(arc.iter().rev().skip(skip));
                } else {
                    points.extend(arc.iter().skip(skip));
                }
            }
            if points.len() >= 3 {
                rings.push(points);
            }
        }
    }
    Ok(())
}

/// Cuts `points` where an edge runs along the antimeridian or the bottom of the map, pushing the
/// remaining runs of two or more points.
fn split_off_closing_edges(points: Vec<(f64, f64)>, lines: &mut Vec<Vec<(f64, f64)>>) {
    let on_antimeridian = |p: (f64, f64)| p.0.abs() >= 180.0 - 1e-6;
    let at_bottom = |p: (f64, f64)| p.1 <= -89.9;
    let mut run: Vec<(f64, f64)> = Vec::new();
    for p in points {
        if let Some(&last) = run.last()
            && ((on_antimeridian(last) && on_antimeridian(p)) || (at_bottom(last) && at_bottom(p)))
        {
            if run.len() >= 2 {
                lines.push(std::mem::take(&mut run));
            }
            run.clear();
        }
        run.push(p);
    }
    if run.len() >= 2 {
        lines.push(run);
    }
}

impl Coastlines {
    /// Paints land in `land_rgba` (when given), then the shorelines in `rgba`.
    pub(crate) fn draw(
        &self,
        view: &MapView,
        overlay: &mut Overlay,
        rgba: [u8; 4],
        land_rgba: Option<[u8; 4]>,
    ) -> Result<(), VizError> {
        if let Some(land) = land_rgba {
            // Half a pixel per cell at the map's centre, within 0.05°..0.5°.
            let res = (0.5 / pixels_per_degree(view)).clamp(0.05, 0.5);
            LandMask::rasterise(&self.land_rings, res).draw(view, overlay, land);
        }
        let width = line_width(view.layout.scale);
        let mut lines = overlay.coverage(view.layout.map);
        for line in &self.lines {
            for pair in line.windows(2) {
                lines.geo_line(view, pair[0], pair[1], width);
            }
        }
        overlay.blend_coverage(&lines, rgba);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_quantized_arcs_and_drops_closing_edges() {
        // Two arcs, quantized by 0.5°, translated to (-180, -90): the first closes along the
        // antimeridian (its last edge), the second runs along the bottom of the map.
        let text = r#"{"type":"Topology","transform":{"scale":[0.5,0.5],"translate":[-180,-90]},
            "arcs":[[[20,200],[2,0],[0,2],[-22,0],[0,-2]],[[0,0],[720,0]]],
            "objects":{"land":{"type":"GeometryCollection","geometries":[]}}}"#;
        let c =
            Coastlines::parse_topojson(text, Path::new("t.json")).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.land_rings.is_empty());
        assert_eq!(
            c.lines,
            vec![vec![
                (-170.0, 10.0),
                (-169.0, 10.0),
                (-169.0, 11.0),
                (-180.0, 11.0)
            ]]
        );
        assert_eq!(c.point_count(), 4);
    }

    #[test]
    fn errors_name_the_file_and_the_fix() {
        let e = Coastlines::load_from(Path::new("/nonexistent/dir"), CoastlineResolution::Low110m)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("/nonexistent/dir/land-110m.json")
                && e.contains(COASTLINE_DIR_ENV)
                && e.contains(COASTLINE_INSTALL_COMMAND),
            "{e}"
        );
        let e = Coastlines::parse_topojson(r#"{"type":"FeatureCollection"}"#, Path::new("x.json"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("x.json") && e.contains("Topology"), "{e}");
    }
}
