use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use isotach_core::{
    CfTimeUnits, DatasetInfo, LatLonGrid, RegionKey, Tile, TileValues, TileWindow, TimeAxis,
    VariableInfo,
};
use zarrs::array::{Array, ArrayError, data_type};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::Group;

use crate::{ConnectorError, Result, Source, TileRequest, local_path};

type Store = FilesystemStore;

/// A Zarr store on a local disk, read chunk by chunk through `zarrs`.
///
/// The store follows xarray's conventions: coordinate arrays named after their dimension (`time`,
/// `lat`/`latitude`, `lon`/`longitude`), dimension names from `dimension_names` (v3) or
/// `_ARRAY_DIMENSIONS` (v2), CF `units` on the time coordinate.
pub struct ZarrSource {
    uri: String,
    info: DatasetInfo,
    arrays: HashMap<String, Array<Store>>,
}

impl std::fmt::Debug for ZarrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrSource")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl ZarrSource {
    /// Opens the store at `uri` (a path or `file://` URI) and reads its coordinates.
    pub fn open(uri: &str) -> Result<Self> {
        let path = local_path(uri)?;
        let open_err = |node: &str, message: String| ConnectorError::Open {
            uri: uri.to_owned(),
            node: node.to_owned(),
            message,
        };
        if !path.is_dir() {
            return Err(open_err(
                "/",
                format!("{} is not a directory", path.display()),
            ));
        }
        let store = Arc::new(Store::new(&path).map_err(|e| open_err("/", e.to_string()))?);
        let group = Group::open(store.clone(), "/").map_err(|e| open_err("/", e.to_string()))?;
        let children = group
            .child_arrays()
            .map_err(|e| open_err("/", e.to_string()))?;

        let mut arrays = HashMap::new();
        let mut dims_of = HashMap::new();
        for array in children {
            let name = array.path().as_str().trim_start_matches('/').to_owned();
            let dims = dimension_names(&array).ok_or_else(|| ConnectorError::Metadata {
                uri: uri.to_owned(),
                array: name.clone(),
                message: "has no dimension names (neither dimension_names nor _ARRAY_DIMENSIONS)"
                    .into(),
            })?;
            dims_of.insert(name.clone(), dims);
            arrays.insert(name, array);
        }

        let find_coord = |names: &[&str]| {
            names
                .iter()
                .find(|n| arrays.contains_key(**n))
                .map(|n| n.to_string())
        };
        let coord = |names: &[&str]| {
            find_coord(names).ok_or_else(|| ConnectorError::Metadata {
                uri: uri.to_owned(),
                array: names[0].to_owned(),
                message: format!("coordinate not found (looked for: {})", names.join(", ")),
            })
        };
        let time_name = coord(&["time"])?;
        let lat_name = coord(&["lat", "latitude"])?;
        let lon_name = coord(&["lon", "longitude"])?;

        let read = |name: &str| read_all_f64(uri, name, &arrays[name]);
        let lat = read(&lat_name)?;
        let lon = read(&lon_name)?;
        let time_values = read(&time_name)?;
        let time_units =
            text_attr(&arrays[&time_name], "units").ok_or_else(|| ConnectorError::Metadata {
                uri: uri.to_owned(),
                array: time_name.clone(),
                message: "has no CF units attribute (for example \"hours since 1900-01-01\")"
                    .into(),
            })?;
        if let Some(calendar) = text_attr(&arrays[&time_name], "calendar")
            && !matches!(
                calendar.as_str(),
                "standard" | "gregorian" | "proleptic_gregorian"
            )
        {
            return Err(ConnectorError::Metadata {
                uri: uri.to_owned(),
                array: time_name,
                message: format!(
                    "calendar {calendar:?} is not supported yet (have: standard, gregorian, proleptic_gregorian)"
                ),
            });
        }
        let units = CfTimeUnits::parse(&time_units).map_err(|e| ConnectorError::Metadata {
            uri: uri.to_owned(),
            array: time_name.clone(),
            message: e.to_string(),
        })?;
        let time = TimeAxis {
            times: time_values.iter().map(|v| units.instant(*v)).collect(),
        };

        let canonical = |d: &str| match d {
            d if d == lat_name => "lat".to_owned(),
            d if d == lon_name => "lon".to_owned(),
            d if d == time_name => "time".to_owned(),
            d => d.to_owned(),
        };
        let mut variables: Vec<VariableInfo> = arrays
            .iter()
            .filter(|(name, _)| !dims_of[*name].iter().any(|d| d == *name))
            .map(|(name, array)| VariableInfo {
                name: name.clone(),
                units: text_attr(array, "units").unwrap_or_default(),
                long_name: text_attr(array, "long_name").unwrap_or_else(|| name.clone()),
                dims: dims_of[name].iter().map(|d| canonical(d)).collect(),
            })
            .collect();
        variables.sort_by(|a, b| a.name.cmp(&b.name));

        let info = DatasetInfo {
            uri: uri.to_owned(),
            variables,
            time,
            grid: LatLonGrid { lat, lon },
        };
        Ok(Self {
            uri: uri.to_owned(),
            info,
            arrays,
        })
    }

    /// The path or URI the store was opened from.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Reads a whole array as f64, whatever its numeric type (for coordinates and tests).
    pub fn read_all(&self, name: &str) -> Result<Vec<f64>> {
        read_all_f64(&self.uri, name, self.array(name)?)
    }

    /// Reads `variable` over an index window of every dimension, as f32.
    pub fn read_subset(&self, variable: &str, ranges: &[std::ops::Range<u64>]) -> Result<Vec<f32>> {
        let array = self.array(variable)?;
        read_f32(&self.uri, variable, array, ranges)
    }

    /// The shape of an array.
    pub fn shape(&self, name: &str) -> Result<Vec<u64>> {
        Ok(self.array(name)?.shape().to_vec())
    }

    /// A text attribute of an array.
    pub fn attribute(&self, name: &str, key: &str) -> Result<Option<String>> {
        Ok(text_attr(self.array(name)?, key))
    }

    fn array(&self, name: &str) -> Result<&Array<Store>> {
        self.arrays.get(name).ok_or_else(|| {
            let mut available: Vec<String> = self.arrays.keys().cloned().collect();
            available.sort();
            ConnectorError::UnknownVariable {
                name: name.to_owned(),
                uri: self.uri.clone(),
                available,
            }
        })
    }

    fn surface_variable(&self, variable: &str) -> Result<&Array<Store>> {
        let array = self.array(variable)?;
        if array.dimensionality() != 3 {
            return Err(ConnectorError::Metadata {
                uri: self.uri.clone(),
                array: variable.to_owned(),
                message: format!(
                    "has {} dimensions; tiles are read from (time, lat, lon) arrays",
                    array.dimensionality()
                ),
            });
        }
        Ok(array)
    }
}

impl Source for ZarrSource {
    fn describe(&self) -> &DatasetInfo {
        &self.info
    }

    fn regions(&self, variable: &str) -> Result<Vec<(RegionKey, TileWindow)>> {
        let array = self.surface_variable(variable)?;
        let grid = array.chunk_grid_shape().to_vec();
        let mut regions = Vec::new();
        for row in 0..grid[1] {
            for col in 0..grid[2] {
                let subset = array.chunk_subset_bounded(&[0, row, col]).map_err(|e| {
                    ConnectorError::Metadata {
                        uri: self.uri.clone(),
                        array: variable.to_owned(),
                        message: e.to_string(),
                    }
                })?;
                let (start, shape) = (subset.start(), subset.shape());
                let window = TileWindow {
                    row0: start[1] as usize,
                    rows: shape[1] as usize,
                    col0: start[2] as usize,
                    cols: shape[2] as usize,
                };
                regions.push((
                    RegionKey {
                        row: row as u32,
                        col: col as u32,
                    },
                    window,
                ));
            }
        }
        Ok(regions)
    }

    fn read_tile(&self, variable: &str, request: &TileRequest) -> Result<Tile> {
        let array = self.surface_variable(variable)?;
        let w = request.window;
        let ranges = [
            request.step..request.step + 1,
            w.row0 as u64..(w.row0 + w.rows) as u64,
            w.col0 as u64..(w.col0 + w.cols) as u64,
        ];
        let values = read_f32(&self.uri, variable, array, &ranges)?;
        let grid = &self.info.grid;
        Ok(Tile {
            variable: variable.to_owned(),
            units: text_attr(array, "units").unwrap_or_default(),
            step: request.step,
            region: request.region,
            window: w,
            lat_bounds: [grid.lat[w.row0], grid.lat[w.row0 + w.rows - 1]],
            lon_bounds: [grid.lon[w.col0], grid.lon[w.col0 + w.cols - 1]],
            values: TileValues::from_vec(values),
        })
    }
}

fn dimension_names(array: &Array<Store>) -> Option<Vec<String>> {
    if let Some(names) = array.dimension_names() {
        return names.iter().cloned().collect();
    }
    let list = array.attributes().get("_ARRAY_DIMENSIONS")?.as_array()?;
    list.iter().map(|v| v.as_str().map(str::to_owned)).collect()
}

fn text_attr(array: &Array<Store>, key: &str) -> Option<String> {
    array
        .attributes()
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// The first chunk a failed subset read touched, to name it in the error.
fn chunk_of(array: &Array<Store>, ranges: &[std::ops::Range<u64>]) -> Vec<u64> {
    let starts: Vec<u64> = ranges.iter().map(|r| r.start).collect();
    match array.chunk_shape(&vec![0; ranges.len()]) {
        Ok(shape) => starts
            .iter()
            .zip(shape.iter())
            .map(|(s, c)| s / c.get())
            .collect(),
        Err(_) => starts,
    }
}

fn chunk_error(
    uri: &str,
    name: &str,
    array: &Array<Store>,
    ranges: &[std::ops::Range<u64>],
    e: ArrayError,
) -> ConnectorError {
    ConnectorError::Chunk {
        uri: uri.to_owned(),
        array: name.to_owned(),
        chunk: chunk_of(array, ranges),
        message: e.to_string(),
    }
}

fn read_f32(
    uri: &str,
    name: &str,
    array: &Array<Store>,
    ranges: &[std::ops::Range<u64>],
) -> Result<Vec<f32>> {
    let subset = ranges.to_vec();
    let dt = array.data_type();
    if *dt == data_type::float32() {
        array
            .retrieve_array_subset::<Vec<f32>>(&subset)
            .map_err(|e| chunk_error(uri, name, array, ranges, e))
    } else {
        Ok(read_f64(uri, name, array, ranges)?
            .into_iter()
            .map(|v| v as f32)
            .collect())
    }
}

fn read_f64(
    uri: &str,
    name: &str,
    array: &Array<Store>,
    ranges: &[std::ops::Range<u64>],
) -> Result<Vec<f64>> {
    let subset = ranges.to_vec();
    let err = |e| chunk_error(uri, name, array, ranges, e);
    let dt = array.data_type();
    if *dt == data_type::float64() {
        array
            .retrieve_array_subset::<Vec<f64>>(&subset)
            .map_err(err)
    } else if *dt == data_type::float32() {
        Ok(array
            .retrieve_array_subset::<Vec<f32>>(&subset)
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect())
    } else if *dt == data_type::int64() {
        Ok(array
            .retrieve_array_subset::<Vec<i64>>(&subset)
            .map_err(err)?
            .into_iter()
            .map(|v| v as f64)
            .collect())
    } else if *dt == data_type::int32() {
        Ok(array
            .retrieve_array_subset::<Vec<i32>>(&subset)
            .map_err(err)?
            .into_iter()
            .map(f64::from)
            .collect())
    } else {
        Err(ConnectorError::Metadata {
            uri: uri.to_owned(),
            array: name.to_owned(),
            message: format!(
                "data type {dt:?} is not numeric (have: float32, float64, int32, int64)"
            ),
        })
    }
}

fn read_all_f64(uri: &str, name: &str, array: &Array<Store>) -> Result<Vec<f64>> {
    let ranges: Vec<_> = array.shape().iter().map(|n| 0..*n).collect();
    read_f64(uri, name, array, &ranges)
}

/// True when `path` holds a Zarr hierarchy (v2 or v3 root metadata).
pub fn is_zarr_store(path: &Path) -> bool {
    path.join("zarr.json").is_file() || path.join(".zgroup").is_file()
}
