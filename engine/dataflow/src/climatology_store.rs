//! Reading an anomaly's climatology from a Zarr store, checked against the run before any work.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use isotach_connectors::{Source, ZarrSource};
use isotach_core::{ClimatologyPeriod, ClimatologyStore, LatLonGrid, SpecError};

use crate::operators::StoredClimatology;
use crate::{EngineError, Result};

/// Coordinates equal within this many degrees are the same grid line.
const COORDINATE_TOLERANCE_DEG: f64 = 1e-6;

/// Reads `store`'s climatology of `input` (in `units`, on `grid`) by `by`, keeping the cells of
/// `grid` (the store's grid may be larger, such as a global climatology for a regional run), and
/// checks that it has a value for every period of `times` (the instants of the selected steps).
/// Every error names the step field (`field`), the store and what does not fit.
pub fn load_climatology(
    field: &str,
    store: &ClimatologyStore,
    by: ClimatologyPeriod,
    (input, units): (&str, &str),
    grid: &LatLonGrid,
    times: &[DateTime<Utc>],
) -> Result<StoredClimatology> {
    let refuse = |message: String| {
        EngineError::Spec(SpecError::Invalid {
            field: field.to_owned(),
            message: format!("climatology store {}: {message}", store.uri),
        })
    };
    let source = ZarrSource::open(&store.uri).map_err(|e| refuse(e.to_string()))?;
    let info = source.describe();
    let variable = info
        .variables
        .iter()
        .find(|v| v.name == store.variable)
        .ok_or_else(|| {
            let have: Vec<&str> = info.variables.iter().map(|v| v.name.as_str()).collect();
            refuse(format!(
                "variable {:?} not found (have: {})",
                store.variable,
                have.join(", ")
            ))
        })?;
    let period_dim = match by {
        ClimatologyPeriod::Month => "month",
        ClimatologyPeriod::DayOfYear => "dayofyear",
    };
    if variable.dims != [period_dim, "lat", "lon"] {
        return Err(refuse(format!(
            "{:?} has dimensions ({}); a climatology by {period_dim} is laid out ({period_dim}, \
             lat, lon), as xarray's groupby(\"time.{period_dim}\").mean() writes it",
            store.variable,
            variable.dims.join(", ")
        )));
    }
    if variable.units != units {
        return Err(refuse(format!(
            "{:?} is in {:?}, but {input:?} is in {units:?}",
            store.variable, variable.units
        )));
    }
    let periods = source
        .read_all(period_dim)
        .map_err(|e| refuse(e.to_string()))?;
    let largest = match by {
        ClimatologyPeriod::Month => 12.0,
        ClimatologyPeriod::DayOfYear => 366.0,
    };
    if let Some(bad) = periods
        .iter()
        .find(|p| !(p.fract() == 0.0 && (1.0..=largest).contains(*p)))
    {
        return Err(refuse(format!(
            "{period_dim} holds {bad}, not a {period_dim} from 1 to {largest}"
        )));
    }

    let (rows, columns) = locate(grid, &info.grid).map_err(refuse)?;
    let (store_rows, store_columns) = info.grid.shape();
    let all = source
        .read_subset(
            &store.variable,
            &[
                0..periods.len() as u64,
                0..store_rows as u64,
                0..store_columns as u64,
            ],
        )
        .map_err(|e| refuse(e.to_string()))?;
    let plane = store_rows * store_columns;
    let mut means = BTreeMap::new();
    for (k, period) in periods.iter().enumerate() {
        let stored = &all[k * plane..(k + 1) * plane];
        let cut: Vec<f32> = rows
            .iter()
            .flat_map(|r| columns.iter().map(move |c| stored[r * store_columns + c]))
            .collect();
        means.insert(*period as u16, cut);
    }

    let mut missing: Vec<u16> = times
        .iter()
        .map(|t| by.of(*t))
        .filter(|p| !means.contains_key(p))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        missing.dedup();
        return Err(refuse(format!(
            "no {period_dim} {missing:?} for the selected steps (it has {:?})",
            means.keys().collect::<Vec<_>>()
        )));
    }
    Ok(StoredClimatology {
        by,
        columns: grid.lon.len(),
        means,
    })
}

/// The rows and columns of `outer` holding each latitude and longitude of `grid` (longitudes
/// compared modulo 360°), or what does not match.
fn locate(
    grid: &LatLonGrid,
    outer: &LatLonGrid,
) -> std::result::Result<(Vec<usize>, Vec<usize>), String> {
    let find = |values: &[f64], wanted: f64, periodic: bool| {
        values.iter().position(|v| {
            let d = if periodic {
                (v - wanted)
                    .rem_euclid(360.0)
                    .min((wanted - v).rem_euclid(360.0))
            } else {
                (v - wanted).abs()
            };
            d <= COORDINATE_TOLERANCE_DEG
        })
    };
    let ends = |v: &[f64]| {
        (
            v.first().copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN),
        )
    };
    let describe = |g: &LatLonGrid| {
        let ((lat0, lat1), (lon0, lon1)) = (ends(&g.lat), ends(&g.lon));
        format!(
            "{} × {} (lat {lat0} to {lat1}, lon {lon0} to {lon1})",
            g.lat.len(),
            g.lon.len()
        )
    };
    let mismatch = |what: &str, value: f64| {
        format!(
            "its grid {} has no {what} {value}, which the input's grid {} has",
            describe(outer),
            describe(grid)
        )
    };
    let rows = grid
        .lat
        .iter()
        .map(|lat| find(&outer.lat, *lat, false).ok_or_else(|| mismatch("latitude", *lat)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let columns = grid
        .lon
        .iter()
        .map(|lon| find(&outer.lon, *lon, true).ok_or_else(|| mismatch("longitude", *lon)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((rows, columns))
}
