use std::sync::Arc;

use isotach_core::{Field, LatLonGrid};
use timely::dataflow::Stream;
use timely::dataflow::operators::vec::Map;

use crate::{EngineError, ErrorSlot};

/// The most cells [`regrid_target`] builds: 100 million, about 400 MB per f32 field.
const MAX_TARGET_CELLS: f64 = 1e8;

/// Bilinear interpolation of whole fields onto another latitude/longitude grid.
///
/// ```
/// use std::sync::Arc;
/// use isotach_core::{Field, LatLonGrid};
/// use isotach_engine::operators::regrid_field;
/// // Global in longitude: 90° columns, so 315°E lies across the seam, between 270°E and 0°E.
/// let grid = LatLonGrid { lat: vec![10.0, 0.0], lon: vec![0.0, 90.0, 180.0, 270.0] };
/// let field = Field {
///     variable: "t".into(),
///     units: "K".into(),
///     long_name: "temperature".into(),
///     step: 0,
///     time: Default::default(),
///     grid: Arc::new(grid),
///     values: vec![
///         2.0, 6.0, f32::NAN, 14.0, // 10°N
///         0.0, 4.0, 8.0, 12.0, //      0°N
///     ],
/// };
/// let target = LatLonGrid { lat: vec![5.0, 20.0], lon: vec![45.0, 135.0, -45.0] };
/// let out = regrid_field(&field, &target, "t_fine").unwrap();
/// assert_eq!(out.values[0], 3.0); // 5°N 45°E: mean of 0, 2, 4, 6
/// assert!(out.values[1].is_nan()); // a NaN corner gives NaN
/// assert_eq!(out.values[2], 7.0); // -45° is 315°E: mean of 12, 14, 0, 2
/// assert!(out.values[3].is_nan()); // 20°N is outside the source: no extrapolation
/// ```
pub trait Regrid<'scope> {
    /// For every field named `input`, adds a field `output` interpolated onto `target` (see
    /// [`regrid_field`]); every field, `input` included, passes through unchanged. A failure is
    /// recorded in `errors` and the regridded field is left out.
    fn regrid(
        self,
        input: String,
        output: String,
        target: Arc<LatLonGrid>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<Field>>;
}

impl<'scope> Regrid<'scope> for Stream<'scope, u64, Vec<Field>> {
    fn regrid(
        self,
        input: String,
        output: String,
        target: Arc<LatLonGrid>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<Field>> {
        // The weight tables depend only on the source grid, which every field of one variable
        // shares: build them once per source grid.
        let mut cached: Option<(Arc<LatLonGrid>, Arc<Weights>)> = None;
        self.flat_map(move |field| {
            let regridded = if field.variable == input {
                let weights = match &cached {
                    Some((source, weights)) if Arc::ptr_eq(source, &field.grid) => {
                        Ok(weights.clone())
                    }
                    _ => Weights::new(&field.grid, &target).map(|w| {
                        let w = Arc::new(w);
                        cached = Some((field.grid.clone(), w.clone()));
                        w
                    }),
                };
                match weights.and_then(|w| w.apply(&field, target.clone(), &output)) {
                    Ok(out) => Some(out),
                    Err(message) => {
                        errors.set(EngineError::Operator {
                            step: field.step,
                            region: "whole grid".into(),
                            message,
                        });
                        None
                    }
                }
            } else {
                None
            };
            std::iter::once(field).chain(regridded)
        })
    }
}

/// A regular grid at `resolution_deg` covering `source`, in the source's orientation: latitudes
/// from the source's first latitude towards its last in steps of `resolution_deg`, stopping at the
/// last one inside the source's range; longitudes eastward from the source's first longitude,
/// all the way round (short of 360°) when the source is global in longitude, else up to its last
/// longitude.
///
/// Errors name the resolution when it is not a positive number, or when the grid would have fewer
/// than 2 points along an axis or more than 100 million cells.
///
/// ```
/// let era5 = isotach_core::LatLonGrid::regular(0.25);
/// let target = isotach_engine::operators::regrid_target(&era5, 0.75).unwrap();
/// assert_eq!(target.shape(), (241, 480));
/// assert_eq!((target.lat[0], target.lat[240]), (90.0, -90.0));
/// assert_eq!(target.lon[479], 359.25);
/// ```
pub fn regrid_target(source: &LatLonGrid, resolution_deg: f64) -> Result<LatLonGrid, String> {
    if !(resolution_deg.is_finite() && resolution_deg > 0.0) {
        return Err(format!(
            "regrid: resolution must be a positive number of degrees, got {resolution_deg}"
        ));
    }
    let (Some(&lat0), Some(&lat1), Some(&lon0), Some(&lon1)) = (
        source.lat.first(),
        source.lat.last(),
        source.lon.first(),
        source.lon.last(),
    ) else {
        return Err(format!(
            "regrid: the source grid {:?} has no cells",
            source.shape()
        ));
    };
    // Points whose index is a hair short of a whole number because of rounding still count.
    let slack = 1e-9;
    let nlat = ((lat1 - lat0).abs() / resolution_deg + slack).floor() + 1.0;
    let nlon = if source.is_global_in_lon() {
        (360.0 / resolution_deg - slack).ceil()
    } else {
        ((lon1 - lon0) / resolution_deg + slack).floor() + 1.0
    };
    if !(nlat >= 2.0 && nlon >= 2.0) {
        return Err(format!(
            "regrid: resolution {resolution_deg}° gives {nlat} × {nlon} points over latitudes \
             {lat0}..{lat1} and longitudes {lon0}..{lon1}; at least 2 per axis are needed"
        ));
    }
    if nlat * nlon > MAX_TARGET_CELLS {
        return Err(format!(
            "regrid: resolution {resolution_deg}° gives {nlat} × {nlon} cells, more than \
             {MAX_TARGET_CELLS}"
        ));
    }
    let lat_sign = if lat1 < lat0 { -1.0 } else { 1.0 };
    let (lat_lo, lat_hi) = (lat0.min(lat1), lat0.max(lat1));
    let lat = (0..nlat as usize)
        // The clamp only removes a rounding overshoot past the source's last latitude, which
        // would otherwise put the last target row outside the source and make it all NaN.
        .map(|k| (lat0 + lat_sign * k as f64 * resolution_deg).clamp(lat_lo, lat_hi))
        .collect();
    let lon_end = if source.is_global_in_lon() {
        f64::INFINITY
    } else {
        lon1
    };
    let lon = (0..nlon as usize)
        .map(|k| (lon0 + k as f64 * resolution_deg).min(lon_end))
        .collect();
    Ok(LatLonGrid { lat, lon })
}

/// Bilinear interpolation of `field` onto `target`, as xarray's
/// `da.interp(lat=target.lat, lon=target.lon, method="linear")` (which interpolates along latitude,
/// then longitude, with scipy's `interp1d`):
///
/// - the cell below and the cell above a target coordinate (in ascending order) contribute; a
///   target exactly on a source coordinate uses that node and the one below it (the first two
///   for the lowest node), so a NaN on either side gives NaN even where its weight is zero, as in
///   xarray. Any NaN corner gives NaN.
/// - latitudes outside the source's range give NaN (no extrapolation); the source's latitudes may
///   ascend or descend.
/// - when the source is global in longitude, longitudes are periodic: target longitudes are taken
///   modulo 360 and one beyond the last source column interpolates between the last and the first
///   columns across the seam. Otherwise target longitudes outside the source's range give NaN.
///
/// The new field is named `output` and keeps the units, long name, step and time. Errors name the
/// source coordinates that cannot be interpolated (fewer than 2 points, not strictly monotonic,
/// longitudes not ascending) or the value count when it does not match the grid.
pub fn regrid_field(field: &Field, target: &LatLonGrid, output: &str) -> Result<Field, String> {
    Weights::new(&field.grid, target)?.apply(field, Arc::new(target.clone()), output)
}

/// The two source indices that contribute to one target coordinate, `lo` at the lower coordinate,
/// and the weight of `hi`.
#[derive(Debug, Clone, Copy)]
struct Pair {
    lo: usize,
    hi: usize,
    w: f64,
}

/// Per-row and per-column interpolation tables from one source grid to one target grid; `None`
/// where the target coordinate is outside the source.
#[derive(Debug)]
struct Weights {
    source_shape: (usize, usize),
    target_shape: (usize, usize),
    rows: Vec<Option<Pair>>,
    cols: Vec<Option<Pair>>,
}

impl Weights {
    fn new(source: &LatLonGrid, target: &LatLonGrid) -> Result<Self, String> {
        let (nlat, nlon) = source.shape();
        check_axis(&source.lat, "latitude")?;
        check_axis(&source.lon, "longitude")?;
        if source.lon.windows(2).any(|w| w[1] <= w[0]) {
            return Err(format!(
                "regrid: source longitudes must ascend, got {} … {}",
                source.lon[0],
                source.lon[nlon - 1]
            ));
        }
        let descending = source.lat[1] < source.lat[0];
        let lat_asc: Vec<f64> = if descending {
            source.lat.iter().rev().copied().collect()
        } else {
            source.lat.clone()
        };
        if lat_asc.windows(2).any(|w| w[1] <= w[0]) {
            return Err(format!(
                "regrid: source latitudes must be strictly monotonic, got {} … {}",
                source.lat[0],
                source.lat[nlat - 1]
            ));
        }
        let rows = target
            .lat
            .iter()
            .map(|&y| {
                bracket(&lat_asc, y).map(|p| {
                    if descending {
                        Pair {
                            lo: nlat - 1 - p.lo,
                            hi: nlat - 1 - p.hi,
                            w: p.w,
                        }
                    } else {
                        p
                    }
                })
            })
            .collect();

        let lon0 = source.lon[0];
        let global = source.is_global_in_lon();
        // A global source gains the first column again, 360° on, so that the seam is an ordinary
        // interval (what padding with mode="wrap" does in xarray).
        let mut lon_ext = source.lon.clone();
        if global {
            lon_ext.push(lon0 + 360.0);
        }
        let cols = target
            .lon
            .iter()
            .map(|&x| {
                let x = lon0 + (x - lon0).rem_euclid(360.0);
                bracket(&lon_ext, x).map(|p| Pair {
                    lo: p.lo % nlon,
                    hi: p.hi % nlon,
                    w: p.w,
                })
            })
            .collect();
        Ok(Self {
            source_shape: (nlat, nlon),
            target_shape: target.shape(),
            rows,
            cols,
        })
    }

    fn apply(&self, field: &Field, target: Arc<LatLonGrid>, output: &str) -> Result<Field, String> {
        let (nlat, nlon) = self.source_shape;
        if field.grid.shape() != self.source_shape || field.values.len() != nlat * nlon {
            return Err(format!(
                "regrid {:?}: {} values on a {:?} grid do not match the {nlat} × {nlon} grid \
                 the weights were built for",
                field.variable,
                field.values.len(),
                field.grid.shape()
            ));
        }
        if target.shape() != self.target_shape {
            return Err(format!(
                "regrid {:?}: target grid {:?} is not the {:?} the weights were built for",
                field.variable,
                target.shape(),
                self.target_shape
            ));
        }
        let src = &field.values;
        let mut values = Vec::with_capacity(target.len());
        for row in &self.rows {
            let Some(r) = row else {
                values.extend(std::iter::repeat_n(f32::NAN, self.cols.len()));
                continue;
            };
            let below = &src[r.lo * nlon..(r.lo + 1) * nlon];
            let above = &src[r.hi * nlon..(r.hi + 1) * nlon];
            // Latitude first, then longitude, in f64, as xarray does: NaN anywhere propagates.
            let along_lat = |c: usize| {
                let a = f64::from(below[c]);
                a + r.w * (f64::from(above[c]) - a)
            };
            values.extend(self.cols.iter().map(|col| match col {
                Some(c) => {
                    let west = along_lat(c.lo);
                    (west + c.w * (along_lat(c.hi) - west)) as f32
                }
                None => f32::NAN,
            }));
        }
        Ok(Field {
            variable: output.to_owned(),
            units: field.units.clone(),
            long_name: field.long_name.clone(),
            step: field.step,
            time: field.time,
            grid: target,
            values,
        })
    }
}

fn check_axis(coords: &[f64], axis: &str) -> Result<(), String> {
    if coords.len() < 2 {
        return Err(format!(
            "regrid: the source has {} {axis}s; interpolation needs at least 2",
            coords.len()
        ));
    }
    if let Some(bad) = coords.iter().find(|c| !c.is_finite()) {
        return Err(format!(
            "regrid: source {axis} {bad} is not a finite number"
        ));
    }
    Ok(())
}

/// The interval of ascending `coords` that holds `x`, chosen as scipy's `interp1d` chooses it
/// (`searchsorted(side="left")` clipped to the first and last intervals), or `None` outside
/// `coords` or for NaN.
fn bracket(coords: &[f64], x: f64) -> Option<Pair> {
    let (&first, &last) = (coords.first()?, coords.last()?);
    if coords.len() < 2 || !(x >= first && x <= last) {
        return None;
    }
    let hi = coords
        .partition_point(|&c| c < x)
        .clamp(1, coords.len() - 1);
    let lo = hi - 1;
    Some(Pair {
        lo,
        hi,
        w: (x - coords[lo]) / (coords[hi] - coords[lo]),
    })
}
