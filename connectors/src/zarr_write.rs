use std::path::{Path, PathBuf};
use std::sync::Arc;

use isotach_core::{CfTimeUnits, LatLonGrid, TimeAxis};
use serde_json::{Map, Value, json};
use zarrs::array::codec::{BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode};
use zarrs::array::{Array, ArrayBuilder, ArrayMetadataOptions, data_type};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::{Group, GroupBuilder};
use zarrs::metadata_ext::group::consolidated_metadata::ConsolidatedMetadata;
use zarrs::node::Node;

use crate::{ConnectorError, Result};

/// Array metadata as written: without the `_zarrs` attribute (a JSON object naming the writer),
/// which xarray shows as a variable attribute and then refuses to write with `to_netcdf`.
fn metadata_options() -> ArrayMetadataOptions {
    ArrayMetadataOptions::default().with_include_zarrs_metadata(false)
}

/// Blosc with byte shuffle and zstd level 3: shuffling groups the slowly varying exponent bytes of
/// smooth float fields, which zstd alone barely compresses; level 3 keeps writes fast.
const BLOSC_ZSTD_LEVEL: u8 = 3;

/// Writes a CF-annotated Zarr v3 store: coordinates, a time axis with CF units, and chunked float32
/// variables compressed with blosc (zstd, byte shuffle), in the layout `xarray.open_zarr` expects.
pub struct ZarrWriter {
    path: PathBuf,
    store: Arc<FilesystemStore>,
}

/// Shape, chunking and dimension names of one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableLayout {
    /// Dimension names, outermost first; the first must be `time`.
    pub dims: Vec<String>,
    /// Length of each dimension.
    pub shape: Vec<u64>,
    /// Chunk length along each dimension.
    pub chunks: Vec<u64>,
}

/// A variable being written, one time step at a time.
pub struct ZarrVariableWriter {
    name: String,
    store_path: PathBuf,
    array: Array<FilesystemStore>,
}

impl ZarrWriter {
    /// Creates a new store at `path` with root group `attributes`. The folder must not exist yet or
    /// be empty: a store is never silently merged into another.
    pub fn create(path: &Path, attributes: Map<String, Value>) -> Result<Self> {
        let err = |message: String| ConnectorError::Write {
            path: path.display().to_string(),
            message,
        };
        if path.exists()
            && path
                .read_dir()
                .map_err(|e| err(e.to_string()))?
                .next()
                .is_some()
        {
            return Err(err(
                "the folder exists and is not empty; remove it or choose another path".into(),
            ));
        }
        std::fs::create_dir_all(path).map_err(|e| err(e.to_string()))?;
        let store = Arc::new(FilesystemStore::new(path).map_err(|e| err(e.to_string()))?);
        GroupBuilder::new()
            .attributes(attributes)
            .build(store.clone(), "/")
            .map_err(|e| err(e.to_string()))?
            .store_metadata()
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            store,
        })
    }

    /// Opens a store that [`ZarrWriter::create`] made, to write more steps into its variables (another
    /// process of a cluster run writes its share of the steps this way).
    pub fn open(path: &Path) -> Result<Self> {
        let store = Arc::new(
            FilesystemStore::new(path).map_err(|e| ConnectorError::Write {
                path: path.display().to_string(),
                message: e.to_string(),
            })?,
        );
        Ok(Self {
            path: path.to_owned(),
            store,
        })
    }

    /// A writer for variable `name`, declared earlier by [`ZarrWriter::create_variable`].
    pub fn open_variable(&self, name: &str) -> Result<ZarrVariableWriter> {
        let array =
            Array::open(self.store.clone(), &format!("/{name}")).map_err(|e| self.err(name, e))?;
        Ok(ZarrVariableWriter {
            name: name.to_owned(),
            store_path: self.path.clone(),
            array,
        })
    }

    /// Writes the `lat` and `lon` coordinates of `grid` with their CF attributes.
    pub fn write_lat_lon(&self, grid: &LatLonGrid) -> Result<()> {
        let attrs = |pairs: [(&str, &str); 4]| -> Map<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect()
        };
        self.write_coordinate(
            "lat",
            &grid.lat,
            attrs([
                ("units", "degrees_north"),
                ("standard_name", "latitude"),
                ("long_name", "latitude"),
                ("axis", "Y"),
            ]),
        )?;
        self.write_coordinate(
            "lon",
            &grid.lon,
            attrs([
                ("units", "degrees_east"),
                ("standard_name", "longitude"),
                ("long_name", "longitude"),
                ("axis", "X"),
            ]),
        )
    }

    /// Writes a 1-D float64 coordinate named after its own dimension.
    pub fn write_coordinate(
        &self,
        name: &str,
        values: &[f64],
        attributes: Map<String, Value>,
    ) -> Result<()> {
        let array = ArrayBuilder::new(
            vec![values.len() as u64],
            [values.len().max(1) as u64],
            data_type::float64(),
            f64::NAN,
        )
        .dimension_names(Some([name]))
        .attributes(attributes)
        .build(self.store.clone(), &format!("/{name}"))
        .map_err(|e| self.err(name, e))?;
        array
            .store_metadata_opt(&metadata_options())
            .map_err(|e| self.err(name, e))?;
        array
            .store_array_subset(&[0..values.len() as u64], values)
            .map_err(|e| self.err(name, e))
    }

    /// Writes the time coordinate as int64 in `units` (whole units only, as ERA5 does).
    pub fn write_time(
        &self,
        axis: &TimeAxis,
        units: CfTimeUnits,
        extra: Map<String, Value>,
    ) -> Result<()> {
        let values: Vec<i64> = axis
            .times
            .iter()
            .map(|t| units.value(*t).round() as i64)
            .collect();
        let mut attributes = Map::new();
        attributes.insert("units".into(), json!(units.to_string()));
        attributes.insert("calendar".into(), json!(units.calendar.name()));
        attributes.insert("standard_name".into(), json!("time"));
        attributes.insert("long_name".into(), json!("time"));
        attributes.insert("axis".into(), json!("T"));
        attributes.extend(extra);
        let n = values.len() as u64;
        let array = ArrayBuilder::new(vec![n], [n.max(1)], data_type::int64(), i64::MIN)
            .dimension_names(Some(["time"]))
            .attributes(attributes)
            .build(self.store.clone(), "/time")
            .map_err(|e| self.err("time", e))?;
        array
            .store_metadata_opt(&metadata_options())
            .map_err(|e| self.err("time", e))?;
        array
            .store_array_subset(&[0..n], &values)
            .map_err(|e| self.err("time", e))
    }

    /// Declares a float32 variable (NaN fill, blosc-zstd) and returns its writer.
    pub fn create_variable(
        &self,
        name: &str,
        layout: &VariableLayout,
        attributes: Map<String, Value>,
    ) -> Result<ZarrVariableWriter> {
        if layout.dims.first().map(String::as_str) != Some("time")
            || layout.dims.len() != layout.shape.len()
            || layout.shape.len() != layout.chunks.len()
        {
            return Err(self.err(name, format!("inconsistent layout {layout:?}: dims, shape and chunks must match and start with time")));
        }
        let level =
            BloscCompressionLevel::try_from(BLOSC_ZSTD_LEVEL).map_err(|e| self.err(name, e))?;
        let blosc = BloscCodec::new(
            BloscCompressor::Zstd,
            level,
            None,
            BloscShuffleMode::Shuffle,
            Some(4),
        )
        .map_err(|e| self.err(name, e))?;
        let array = ArrayBuilder::new(
            layout.shape.clone(),
            layout.chunks.as_slice(),
            data_type::float32(),
            f32::NAN,
        )
        .bytes_to_bytes_codecs(vec![Arc::new(blosc)])
        .dimension_names(Some(layout.dims.iter().map(String::as_str)))
        .attributes(attributes)
        .build(self.store.clone(), &format!("/{name}"))
        .map_err(|e| self.err(name, e))?;
        array
            .store_metadata_opt(&metadata_options())
            .map_err(|e| self.err(name, e))?;
        Ok(ZarrVariableWriter {
            name: name.to_owned(),
            store_path: self.path.clone(),
            array,
        })
    }

    /// Writes every array's metadata into the root `zarr.json` (`consolidated_metadata`), so the
    /// store opens with one read and over HTTP, which cannot list keys. Call it last.
    pub fn consolidate(&self) -> Result<()> {
        let node = Node::open(&self.store, "/").map_err(|e| self.err("zarr.json", e))?;
        let metadata = node
            .consolidate_metadata()
            .ok_or_else(|| self.err("zarr.json", "the root is not a group"))?;
        let mut group =
            Group::open(self.store.clone(), "/").map_err(|e| self.err("zarr.json", e))?;
        group.set_consolidated_metadata(Some(ConsolidatedMetadata {
            metadata,
            ..Default::default()
        }));
        group
            .store_metadata()
            .map_err(|e| self.err("zarr.json", e))?;
        self.sort_root_metadata()
    }

    /// Rewrites the root `zarr.json` with its keys in sorted order: zarrs keeps consolidated
    /// metadata in a hash map, and the same store must be the same bytes on every run.
    fn sort_root_metadata(&self) -> Result<()> {
        let path = self.path.join("zarr.json");
        let text = std::fs::read(&path).map_err(|e| self.err("zarr.json", e))?;
        let value: Value = serde_json::from_slice(&text).map_err(|e| self.err("zarr.json", e))?;
        let sorted = sort_keys(value);
        let text = serde_json::to_vec_pretty(&sorted).map_err(|e| self.err("zarr.json", e))?;
        std::fs::write(&path, text).map_err(|e| self.err("zarr.json", e))
    }

    fn err(&self, node: &str, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Write {
            path: format!("{}/{node}", self.path.display()),
            message: e.to_string(),
        }
    }
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

impl ZarrVariableWriter {
    /// Writes every value of time step `step` (all dimensions after time, row-major).
    pub fn write_step(&self, step: u64, values: &[f32]) -> Result<()> {
        let shape = self.array.shape();
        let expected: u64 = shape[1..].iter().product();
        if values.len() as u64 != expected {
            return Err(self.err(format!(
                "step {step}: got {} values, expected {expected} ({:?})",
                values.len(),
                &shape[1..]
            )));
        }
        if step >= shape[0] {
            return Err(self.err(format!(
                "step {step} is past the time axis of length {}",
                shape[0]
            )));
        }
        let mut ranges = vec![step..step + 1];
        ranges.extend(shape[1..].iter().map(|n| 0..*n));
        self.array
            .store_array_subset(&ranges, values)
            .map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Write {
            path: format!("{}/{}", self.store_path.display(), self.name),
            message: e.to_string(),
        }
    }
}
