//! [`NetcdfSource`]: a CF-annotated NetCDF file (NetCDF-3 or NetCDF-4) as a [`Source`] of tiles.

use std::collections::BTreeMap;

use isotach_core::{
    Calendar, CfTimeUnits, DatasetInfo, LatLonGrid, RegionKey, Tile, TileWindow, TimeAxis,
    VariableInfo,
};
use serde_json::{Map, Value};

use super::header::NcType;
use super::{NetcdfData, NetcdfFile, NetcdfVariable};
use crate::cf::CfDecoding;
use crate::{ConnectorError, Result, Source, TileRequest};

/// Tiles cover this many rows and columns of the grid, unless the storage chunks say otherwise.
const BLOCK: usize = 256;
/// Tiles that follow storage chunks hold at most this many cells (16 MiB of float32).
const MAX_TILE_CELLS: u64 = 1 << 22;

/// Rows and columns of a tile. When every `(time, lat, lon)` data variable is stored in chunks of
/// the same latitude × longitude shape, tiles are whole chunks (or whole multiples of small ones,
/// about 256 on a side), so that concurrent readers decode different chunks instead of waiting
/// for each other's decode of one; otherwise (NetCDF-3, contiguous, mixed chunking) 256 × 256.
fn tile_block<'a>(
    variables: impl Iterator<Item = &'a NetcdfVariable>,
    axes: &[String; 3],
) -> [usize; 2] {
    let mut common = None;
    for var in variables.filter(|v| v.dims == *axes && v.nc_type.is_some()) {
        let Some([_, rows, cols]) = var.chunks.as_deref() else {
            return [BLOCK; 2];
        };
        match common {
            None => common = Some((*rows, *cols)),
            Some(shape) if shape == (*rows, *cols) => {}
            Some(_) => return [BLOCK; 2],
        }
    }
    let grow = |n: u64| n * (BLOCK as u64 / n).max(1);
    match common {
        Some((rows, cols)) if rows > 0 && cols > 0 => {
            let (rows, cols) = (grow(rows), grow(cols));
            if rows.saturating_mul(cols) <= MAX_TILE_CELLS {
                [rows as usize, cols as usize]
            } else {
                [BLOCK; 2]
            }
        }
        _ => [BLOCK; 2],
    }
}

/// A NetCDF file following the CF conventions, read as a [`Source`]: NetCDF-3 classic (CDF-1,
/// CDF-2, CDF-5) always, NetCDF-4 (HDF5) with the `netcdf4` feature (on by default). The format
/// is told by the file's first bytes, not its name.
///
/// Coordinates are the variables `time`, `lat` or `latitude`, and `lon` or `longitude`, each
/// one-dimensional along the dimension it names; the time coordinate carries CF `units` and an
/// optional `calendar` (standard or noleap). Every other numeric variable is a data variable.
/// Tiles are one step of `(time, lat, lon)` variables: 256 × 256 cells, or whole storage chunks
/// when the data variables share their chunking; values are decoded as `xarray.open_dataset`
/// shows them (missing values NaN, packed values unpacked).
///
/// ```no_run
/// use isotach_connectors::{NetcdfSource, Source};
/// let source = NetcdfSource::open("file:///data/era5_ivt.nc")?;
/// let regions = source.regions("ivt")?;
/// # Ok::<(), isotach_connectors::ConnectorError>(())
/// ```
#[derive(Debug)]
pub struct NetcdfSource {
    file: Box<dyn NetcdfData>,
    variables: BTreeMap<String, NetcdfVariable>,
    info: DatasetInfo,
    /// Dimension names of the time, latitude and longitude coordinates.
    axes: [String; 3],
    /// Rows and columns of a tile.
    block: [usize; 2],
}

impl NetcdfSource {
    /// Opens the file at `uri` with settings from the environment and reads its coordinates.
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, &crate::StoreOptions::default())
    }

    /// Opens the file at `uri` (path, `file://`, `http(s)://`, `s3://`, `gs://`, `az://`) with
    /// `options` layered over the environment; remote files are read with range requests.
    pub fn open_with(uri: &str, options: &crate::StoreOptions) -> Result<Self> {
        let ranges = crate::store::byte_ranges(uri, options)?;
        // Shorter files, and those that cannot be read, are left to the NetCDF-3 reader, whose
        // errors say what is wrong with them.
        let signature = super::HDF5_SIGNATURE.len();
        let is_hdf5 = ranges.len().is_ok_and(|len| len >= signature as u64)
            && ranges
                .read_at(0, signature)
                .is_ok_and(|magic| magic == super::HDF5_SIGNATURE);
        if is_hdf5 {
            return Self::from_netcdf4(uri, ranges);
        }
        Self::from_data(Box::new(NetcdfFile::from_ranges(uri, ranges)?))
    }

    #[cfg(feature = "netcdf4")]
    fn from_netcdf4(uri: &str, ranges: std::sync::Arc<dyn super::ByteRanges>) -> Result<Self> {
        let file = match crate::StoreLocation::parse(uri)? {
            crate::StoreLocation::Local(path) => super::Netcdf4File::open(path)?,
            _ => super::Netcdf4File::from_ranges(uri, ranges)?,
        };
        Self::from_data(Box::new(file))
    }

    #[cfg(not(feature = "netcdf4"))]
    fn from_netcdf4(uri: &str, _: std::sync::Arc<dyn super::ByteRanges>) -> Result<Self> {
        Err(ConnectorError::Open {
            uri: uri.to_owned(),
            node: "/".into(),
            message: "is a NetCDF-4 (HDF5) file, and this build reads NetCDF-3 only: build \
                      isotach-connectors with its `netcdf4` feature"
                .into(),
        })
    }

    /// Wraps an opened file (NetCDF-3 or NetCDF-4, local or behind any byte-range reader) and
    /// reads its coordinates.
    pub fn from_data(file: Box<dyn NetcdfData>) -> Result<Self> {
        let uri = file.uri().to_owned();
        let variables: BTreeMap<String, NetcdfVariable> = file
            .netcdf_variables()?
            .into_iter()
            .map(|v| (v.name.clone(), v))
            .collect();
        let meta_err = |array: &str, message: String| ConnectorError::Metadata {
            uri: uri.clone(),
            array: array.to_owned(),
            message,
        };
        let coordinate = |names: &[&str]| -> Result<(String, String)> {
            let var = names
                .iter()
                .find_map(|n| variables.get(*n))
                .ok_or_else(|| {
                    meta_err(
                        names[0],
                        format!("coordinate not found (looked for: {})", names.join(", ")),
                    )
                })?;
            match var.dims.as_slice() {
                [dim] => Ok((var.name.clone(), dim.clone())),
                dims => Err(meta_err(
                    &var.name,
                    format!("a coordinate must have one dimension, it has {dims:?}"),
                )),
            }
        };
        let (time_name, time_dim) = coordinate(&["time"])?;
        let (lat_name, lat_dim) = coordinate(&["lat", "latitude"])?;
        let (lon_name, lon_dim) = coordinate(&["lon", "longitude"])?;

        let read = |name: &str| {
            crate::source::check_coordinate_len(&uri, name, &variables[name].shape)?;
            read_all(file.as_ref(), &variables[name])
        };
        let lat = read(&lat_name)?;
        let lon = read(&lon_name)?;
        let time_values = read(&time_name)?;
        let time_attrs = &variables[&time_name].attributes;
        let units = match time_attrs.get("units") {
            Some(Value::String(units)) => units.clone(),
            _ => {
                return Err(meta_err(
                    &time_name,
                    "has no CF units attribute (for example \"hours since 1900-01-01\")".into(),
                ));
            }
        };
        let calendar = match time_attrs.get("calendar") {
            None => Calendar::Standard,
            Some(Value::String(name)) => {
                Calendar::parse(name).map_err(|e| meta_err(&time_name, e.to_string()))?
            }
            Some(other) => {
                return Err(meta_err(
                    &time_name,
                    format!("calendar attribute {other} is not text"),
                ));
            }
        };
        let units = CfTimeUnits::parse(&units)
            .map_err(|e| meta_err(&time_name, e.to_string()))?
            .in_calendar(calendar);
        let time = TimeAxis {
            times: units
                .instants(&time_values)
                .map_err(|e| meta_err(&time_name, e))?,
        };

        let canonical = |d: &str| {
            if d == lat_dim {
                "lat".to_owned()
            } else if d == lon_dim {
                "lon".to_owned()
            } else if d == time_dim {
                "time".to_owned()
            } else {
                d.to_owned()
            }
        };
        let axes = [time_dim.clone(), lat_dim.clone(), lon_dim.clone()];
        let block = tile_block(variables.values(), &axes);
        let mut data_variables = Vec::new();
        let mut coordinates = Vec::new();
        for var in variables.values() {
            let Some(nc_type) = var.nc_type.filter(|t| *t != NcType::Char) else {
                continue;
            };
            // Blocks read at once: one step, a tile of the grid, whole other dimensions.
            let chunks = var
                .dims
                .iter()
                .zip(&var.shape)
                .map(|(d, len)| match d {
                    d if *d == time_dim => (*len).min(1),
                    d if *d == lat_dim => (*len).min(block[0] as u64),
                    d if *d == lon_dim => (*len).min(block[1] as u64),
                    _ => *len,
                })
                .collect();
            let text = |key: &str| var.attributes.get(key).and_then(Value::as_str);
            let info = VariableInfo {
                name: var.name.clone(),
                units: text("units").unwrap_or_default().to_owned(),
                long_name: text("long_name").unwrap_or(&var.name).to_owned(),
                dims: var.dims.iter().map(|d| canonical(d)).collect(),
                shape: var.shape.clone(),
                chunks,
                dtype: nc_type.dtype().to_owned(),
                codecs: Vec::new(),
                attributes: var.attributes.clone(),
            };
            if var.dims.contains(&var.name) {
                coordinates.push(info);
            } else {
                data_variables.push(info);
            }
        }

        let info = DatasetInfo {
            uri: uri.clone(),
            variables: data_variables,
            coordinates,
            time,
            grid: LatLonGrid { lat, lon },
            // Variables are read on (time, lat, lon) only.
            vertical: Vec::new(),
            attributes: file.global_attributes().clone(),
        };
        Ok(Self {
            file,
            variables,
            info,
            axes,
            block,
        })
    }

    /// The path or URI the file was opened from.
    pub fn uri(&self) -> &str {
        self.file.uri()
    }

    /// The file, for its format, global attributes and raw reads.
    pub fn file(&self) -> &dyn NetcdfData {
        self.file.as_ref()
    }

    /// Every variable of the file (coordinates, data and text variables), by name.
    pub fn variables(&self) -> &BTreeMap<String, NetcdfVariable> {
        &self.variables
    }

    /// The variable called `name`; unknown, the error lists the variables the file has.
    pub fn variable(&self, name: &str) -> Result<&NetcdfVariable> {
        self.variables.get(name).ok_or_else(|| {
            super::unknown_variable(self.uri(), name, self.variables.keys().map(String::as_str))
        })
    }

    /// A whole variable decoded to f64 (missing values NaN, packed values unpacked), for
    /// coordinates and tests.
    pub fn read_all(&self, name: &str) -> Result<Vec<f64>> {
        read_all(self.file.as_ref(), self.variable(name)?)
    }

    /// The shape of a variable.
    pub fn shape(&self, name: &str) -> Result<Vec<u64>> {
        Ok(self.variable(name)?.shape.clone())
    }

    /// The attributes of a variable, as stored (text as strings, numbers as numbers or arrays).
    pub fn attributes(&self, name: &str) -> Result<&Map<String, Value>> {
        Ok(&self.variable(name)?.attributes)
    }

    /// Checks that `variable` is laid out `(time, lat, lon)`.
    fn surface_variable(&self, variable: &str) -> Result<()> {
        let dims = &self.variable(variable)?.dims;
        if *dims != self.axes {
            return Err(ConnectorError::Metadata {
                uri: self.uri().to_owned(),
                array: variable.to_owned(),
                message: format!(
                    "has dimensions {dims:?}; tiles are read from ({}, {}, {}) variables",
                    self.axes[0], self.axes[1], self.axes[2]
                ),
            });
        }
        Ok(())
    }
}

impl Source for NetcdfSource {
    fn describe(&self) -> &DatasetInfo {
        &self.info
    }

    fn regions(&self, variable: &str) -> Result<Vec<(RegionKey, TileWindow)>> {
        self.surface_variable(variable)?;
        // Before any tile is planned, not at the first tile.
        self.file.check_decodable(variable)?;
        let (rows, cols) = self.info.grid.shape();
        let mut regions = Vec::new();
        let [block_rows, block_cols] = self.block;
        for (row, row0) in (0..rows).step_by(block_rows).enumerate() {
            for (col, col0) in (0..cols).step_by(block_cols).enumerate() {
                let key = RegionKey {
                    row: row as u32,
                    col: col as u32,
                };
                let window = TileWindow {
                    row0,
                    rows: block_rows.min(rows - row0),
                    col0,
                    cols: block_cols.min(cols - col0),
                };
                regions.push((key, window));
            }
        }
        Ok(regions)
    }

    fn read_tile(&self, variable: &str, request: &TileRequest) -> Result<Tile> {
        self.surface_variable(variable)?;
        let w = request.window;
        let grid = &self.info.grid;
        let (rows, cols) = grid.shape();
        let inside = request.step < self.info.time.len() as u64
            && w.rows > 0
            && w.cols > 0
            && w.row0.checked_add(w.rows).is_some_and(|end| end <= rows)
            && w.col0.checked_add(w.cols).is_some_and(|end| end <= cols);
        if !inside {
            return Err(ConnectorError::Chunk {
                uri: self.uri().to_owned(),
                array: variable.to_owned(),
                chunk: vec![request.step, w.row0 as u64, w.col0 as u64],
                message: format!(
                    "step {} and window {w:?} are not inside the {} steps and {rows} x {cols} grid",
                    request.step,
                    self.info.time.len()
                ),
            });
        }
        let raw = self.file.read(
            variable,
            &[request.step, w.row0 as u64, w.col0 as u64],
            &[1, w.rows as u64, w.cols as u64],
        )?;
        let values = cf_decoding(self.uri(), self.variable(variable)?)?.decode_f32(raw);
        let units = self
            .attributes(variable)?
            .get("units")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Tile::on_grid(
            variable,
            units,
            (request.step, request.region, w),
            grid,
            values,
        ))
    }
}

/// How a variable's stored values become physical ones, from its attributes (`_FillValue`,
/// `missing_value`, `scale_factor`, `add_offset`, `_Unsigned`), as xarray decodes them.
/// NetCDF's default fill values are not masked unless an attribute names them, as in xarray.
fn cf_decoding(uri: &str, var: &NetcdfVariable) -> Result<CfDecoding> {
    let size = var.nc_type.map_or(1, NcType::size);
    CfDecoding::from_attributes(&var.attributes, size).map_err(|message| ConnectorError::Metadata {
        uri: uri.to_owned(),
        array: var.name.clone(),
        message,
    })
}

/// A whole variable, decoded to f64.
fn read_all(file: &dyn NetcdfData, var: &NetcdfVariable) -> Result<Vec<f64>> {
    let raw = file.read(&var.name, &vec![0; var.shape.len()], &var.shape)?;
    Ok(cf_decoding(file.uri(), var)?.decode_f64(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variable(name: &str, chunks: Option<[u64; 3]>) -> NetcdfVariable {
        NetcdfVariable {
            name: name.to_owned(),
            dims: ["time", "lat", "lon"].map(String::from).to_vec(),
            shape: vec![48, 721, 1440],
            nc_type: Some(NcType::Float),
            chunks: chunks.map(|c| c.to_vec()),
            attributes: Map::new(),
        }
    }

    fn block(chunks: &[Option<[u64; 3]>]) -> [usize; 2] {
        let variables: Vec<NetcdfVariable> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| variable(&format!("v{i}"), *c))
            .collect();
        tile_block(variables.iter(), &["time", "lat", "lon"].map(String::from))
    }

    #[test]
    fn tiles_follow_shared_chunks_and_fall_back_to_256() {
        // Whole fields per step, as ERA5 downloads often are: one tile per chunk.
        assert_eq!(
            block(&[Some([1, 721, 1440]), Some([1, 721, 1440])]),
            [721, 1440]
        );
        // Small chunks: whole multiples of them, near 256.
        assert_eq!(block(&[Some([1, 128, 128])]), [256, 256]);
        assert_eq!(block(&[Some([4, 100, 90])]), [200, 180]);
        // Chunked differently, stored whole, or chunks too large for a tile: 256 × 256.
        assert_eq!(
            block(&[Some([1, 721, 1440]), Some([1, 128, 128])]),
            [256, 256]
        );
        assert_eq!(block(&[Some([1, 721, 1440]), None]), [256, 256]);
        assert_eq!(block(&[Some([1, 4000, 8000])]), [256, 256]);
        assert_eq!(block(&[]), [256, 256]);
    }
}
