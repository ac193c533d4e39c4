//! [`NetcdfSource`]: a CF-annotated NetCDF-3 file as a [`Source`] of tiles.

use isotach_core::{
    Calendar, CfTimeUnits, DatasetInfo, LatLonGrid, RegionKey, Tile, TileWindow, TimeAxis,
    VariableInfo,
};
use serde_json::{Map, Value};

use super::NetcdfFile;
use super::header::NcType;
use crate::{ConnectorError, Result, Source, TileRequest};

/// Tiles cover at most this many rows and columns of the grid.
const BLOCK: usize = 256;

/// A NetCDF-3 classic file (CDF-1, CDF-2, CDF-5) following the CF conventions, read as a
/// [`Source`].
///
/// Coordinates are the variables `time`, `lat` or `latitude`, and `lon` or `longitude`, each
/// one-dimensional along the dimension it names; the time coordinate carries CF `units` and an
/// optional `calendar` (standard or noleap). Every other numeric variable is a data variable.
/// Tiles are blocks of at most 256 × 256 cells of `(time, lat, lon)` variables, decoded as
/// `xarray.open_dataset` shows them (missing values NaN, packed values unpacked).
///
/// ```no_run
/// use isotach_connectors::{NetcdfSource, Source};
/// let source = NetcdfSource::open("file:///data/era5_ivt.nc")?;
/// let regions = source.regions("ivt")?;
/// # Ok::<(), isotach_connectors::ConnectorError>(())
/// ```
#[derive(Debug)]
pub struct NetcdfSource {
    file: NetcdfFile,
    info: DatasetInfo,
    /// Dimension names of the time, latitude and longitude coordinates.
    axes: [String; 3],
}

impl NetcdfSource {
    /// Opens the file at `uri` with settings from the environment and reads its coordinates.
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, &crate::StoreOptions::default())
    }

    /// Opens the file at `uri` (path, `file://`, `http(s)://`, `s3://`, `gs://`, `az://`) with
    /// `options` layered over the environment; remote files are read with range requests.
    pub fn open_with(uri: &str, options: &crate::StoreOptions) -> Result<Self> {
        Self::from_file(NetcdfFile::from_ranges(
            uri,
            crate::store::byte_ranges(uri, options)?,
        )?)
    }

    /// Wraps an opened file (local or behind any byte-range reader) and reads its coordinates.
    pub fn from_file(file: NetcdfFile) -> Result<Self> {
        let uri = file.uri().to_owned();
        let meta_err = |array: &str, message: String| ConnectorError::Metadata {
            uri: uri.clone(),
            array: array.to_owned(),
            message,
        };
        let coordinate = |names: &[&str]| -> Result<(String, String)> {
            let name = names
                .iter()
                .find(|n| file.variable(n).is_ok())
                .ok_or_else(|| {
                    meta_err(
                        names[0],
                        format!("coordinate not found (looked for: {})", names.join(", ")),
                    )
                })?;
            match file.dimension_names(name)?.as_slice() {
                [dim] => Ok((name.to_string(), dim.clone())),
                dims => Err(meta_err(
                    name,
                    format!("a coordinate must have one dimension, it has {dims:?}"),
                )),
            }
        };
        let (time_name, time_dim) = coordinate(&["time"])?;
        let (lat_name, lat_dim) = coordinate(&["lat", "latitude"])?;
        let (lon_name, lon_dim) = coordinate(&["lon", "longitude"])?;

        let read = |name: &str| -> Result<Vec<f64>> {
            let shape = file.shape(name)?;
            file.read_decoded(name, &vec![0; shape.len()], &shape)
        };
        let lat = read(&lat_name)?;
        let lon = read(&lon_name)?;
        let time_values = read(&time_name)?;
        let time_attrs = &file.variable(&time_name)?.attributes;
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
        if let Some(step) = time_values.iter().position(|v| !v.is_finite()) {
            return Err(meta_err(
                &time_name,
                format!("time step {step} is missing ({})", time_values[step]),
            ));
        }
        let time = TimeAxis {
            times: time_values.iter().map(|v| units.instant(*v)).collect(),
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
        let mut variables = Vec::new();
        let mut coordinates = Vec::new();
        for var in file.variables() {
            let dims = file.dimension_names(&var.name)?;
            if var.nc_type == NcType::Char {
                continue;
            }
            let shape = file.shape(&var.name)?;
            // Blocks read at once: one step, 256 x 256 cells of the grid, whole other dimensions.
            let chunks = dims
                .iter()
                .zip(&shape)
                .map(|(d, len)| match d {
                    d if *d == time_dim => (*len).min(1),
                    d if *d == lat_dim || *d == lon_dim => (*len).min(BLOCK as u64),
                    _ => *len,
                })
                .collect();
            let text = |key: &str| var.attributes.get(key).and_then(Value::as_str);
            let info = VariableInfo {
                name: var.name.clone(),
                units: text("units").unwrap_or_default().to_owned(),
                long_name: text("long_name").unwrap_or(&var.name).to_owned(),
                dims: dims.iter().map(|d| canonical(d)).collect(),
                shape,
                chunks,
                dtype: var.nc_type.dtype().to_owned(),
                codecs: Vec::new(),
                attributes: var.attributes.clone(),
            };
            if dims.contains(&var.name) {
                coordinates.push(info);
            } else {
                variables.push(info);
            }
        }
        variables.sort_by(|a, b| a.name.cmp(&b.name));
        coordinates.sort_by(|a, b| a.name.cmp(&b.name));

        let info = DatasetInfo {
            uri: uri.clone(),
            variables,
            coordinates,
            time,
            grid: LatLonGrid { lat, lon },
            // NetCDF-3 variables are read on (time, lat, lon) only.
            vertical: Vec::new(),
            attributes: file.attributes().clone(),
        };
        Ok(Self {
            file,
            info,
            axes: [time_dim, lat_dim, lon_dim],
        })
    }

    /// The path or URI the file was opened from.
    pub fn uri(&self) -> &str {
        self.file.uri()
    }

    /// The file, for its header and raw reads.
    pub fn file(&self) -> &NetcdfFile {
        &self.file
    }

    /// A whole variable decoded to f64 (missing values NaN), for coordinates and tests.
    pub fn read_all(&self, name: &str) -> Result<Vec<f64>> {
        let shape = self.file.shape(name)?;
        self.file.read_decoded(name, &vec![0; shape.len()], &shape)
    }

    /// The shape of a variable.
    pub fn shape(&self, name: &str) -> Result<Vec<u64>> {
        self.file.shape(name)
    }

    /// The attributes of a variable, as stored (text as strings, numbers as numbers or arrays).
    pub fn attributes(&self, name: &str) -> Result<&Map<String, Value>> {
        Ok(&self.file.variable(name)?.attributes)
    }

    /// Checks that `variable` is laid out `(time, lat, lon)`.
    fn surface_variable(&self, variable: &str) -> Result<()> {
        let dims = self.file.dimension_names(variable)?;
        if dims != self.axes {
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
        let (rows, cols) = self.info.grid.shape();
        let mut regions = Vec::new();
        for (row, row0) in (0..rows).step_by(BLOCK).enumerate() {
            for (col, col0) in (0..cols).step_by(BLOCK).enumerate() {
                let key = RegionKey {
                    row: row as u32,
                    col: col as u32,
                };
                let window = TileWindow {
                    row0,
                    rows: BLOCK.min(rows - row0),
                    col0,
                    cols: BLOCK.min(cols - col0),
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
        let values = self.file.cf_decoding(variable)?.decode_f32(raw);
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
