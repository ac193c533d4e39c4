use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::Float32Array;
use isotach_core::TileValues;
use isotach_core::{
    Calendar, CfTimeUnits, DatasetInfo, LatLonGrid, RegionKey, Tile, TileWindow, TimeAxis,
    VariableInfo, VerticalAxis,
};
use serde_json::{Map, Value};
use zarrs::array::{Array, ArrayMetadata, ArrayShardedExt, ChunkGrid};
use zarrs::group::Group;
use zarrs::metadata::v2::ArrayMetadataV2;
use zarrs::metadata::v3::ArrayMetadataV3;
use zarrs::storage::{ReadableStorageTraits, StoreKey};

use crate::cf::CfDecoding;
use crate::chunk_cache::{ChunkCache, ChunkCacheStats};
use crate::store::{OpenedStore, StoreOptions, explain};
use crate::zarr_blocks::{
    Numeric, Reading, ShardIndexes, cached_blocks, into_vec, keep_bytes, read_raw, read_window,
};
use crate::{ConnectorError, Result, Source, TileRequest};

pub(crate) type Storage = dyn ReadableStorageTraits;

/// A Zarr store (v2 or v3) read chunk by chunk through `zarrs`, from a local path, HTTP or an
/// object store.
///
/// The store follows xarray's conventions: arrays at the root, coordinate arrays named after their
/// dimension (`time`, `lat`/`latitude`, `lon`/`longitude`), dimension names from
/// `dimension_names` (v3) or `_ARRAY_DIMENSIONS` (v2), CF attributes. Values are CF-decoded as
/// xarray decodes them: fill and missing values become NaN, packed integers are unpacked.
/// Consolidated metadata (`.zmetadata`, or `consolidated_metadata` in a v3 `zarr.json`) is used
/// when present, and is required over HTTP, which cannot list keys.
///
/// Tiles are Arrow buffers. When an array's chunks (inner chunks, when sharded) span several time
/// steps, each is decoded and CF-decoded once into an LRU shared by every reader of the source,
/// bounded by bytes ([`Source::offer_cache_bytes`]: `read_tiles` offers part of its memory budget;
/// 128 MiB until then), and each step's tile is cut from it: a slice of the chunk's buffer when
/// the step is a contiguous range of the chunk (the tile spans the chunk's whole width), a copy
/// otherwise. Readers that ask for a chunk being decoded wait for that decode. A chunk larger than
/// the bound is read around the cache, window by window.
pub struct ZarrSource {
    uri: String,
    info: DatasetInfo,
    arrays: HashMap<String, ZarrArray>,
    /// Decoded blocks of every array whose blocks span several steps.
    chunks: ChunkCache,
    /// What is worth keeping of all those arrays ([`keep_bytes`]): more cache than this is never
    /// used.
    cacheable_bytes: u64,
    _store: OpenedStore,
}

pub(crate) struct ZarrArray {
    /// The array's index in its source: the first half of its blocks' cache keys.
    pub(crate) id: usize,
    pub(crate) array: Arc<Array<Storage>>,
    pub(crate) cf: CfDecoding,
    /// The stored type, when numeric (others are refused when read).
    pub(crate) kind: Option<Numeric>,
    /// Blocks that span several time steps (chunks, or inner chunks of shards): decoded whole,
    /// once, into the source's cache, and tiles cut from them.
    pub(crate) blocks: Option<ChunkGrid>,
    /// Shard indexes read once per shard (sharded arrays).
    pub(crate) shards: Option<ShardIndexes>,
}

/// The decoded-chunk cache's bound until a reader offers it a share of its budget
/// ([`Source::offer_cache_bytes`]): half of the default read budget.
const DEFAULT_CACHE_BYTES: u64 = 128 << 20;

impl std::fmt::Debug for ZarrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrSource")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl ZarrSource {
    /// Opens the store at `uri` (path, `file://`, `http(s)://`, `s3://`, `gs://`, `az://`) with
    /// settings from the environment, and reads its coordinates.
    pub fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, &StoreOptions::default())
    }

    /// Opens the store at `uri` with `options` layered over the environment.
    pub fn open_with(uri: &str, options: &StoreOptions) -> Result<Self> {
        let store = OpenedStore::open(uri, options)?;
        let open_err = |node: &str, message: String| ConnectorError::Open {
            uri: uri.to_owned(),
            node: node.to_owned(),
            message,
        };
        let (root_attributes, listed) = discover(&store)?;

        let mut arrays = HashMap::new();
        let mut dims_of = HashMap::new();
        let mut cacheable_bytes = 0u64;
        let mut keep_per_array = HashMap::new();
        for (name, metadata) in listed {
            let declared = declared_codecs(&store, &name, metadata.as_ref());
            let array = match metadata {
                Some(metadata) => {
                    Array::new_with_metadata(store.readable.clone(), &format!("/{name}"), metadata)
                }
                None => Array::open(store.readable.clone(), &format!("/{name}")),
            }
            .map_err(|e| {
                open_err(
                    &name,
                    format!("{e} (codecs as stored: {declared}; readable: {READABLE_CODECS})"),
                )
            })?;
            let dims = dimension_names(&array).ok_or_else(|| ConnectorError::Metadata {
                uri: uri.to_owned(),
                array: name.clone(),
                message: "has no dimension names (neither dimension_names nor _ARRAY_DIMENSIONS)"
                    .into(),
            })?;
            if dims.len() != array.dimensionality() {
                return Err(ConnectorError::Metadata {
                    uri: uri.to_owned(),
                    array: name,
                    message: format!(
                        "names {} dimensions {dims:?} for a {}-dimensional array",
                        dims.len(),
                        array.dimensionality()
                    ),
                });
            }
            check_sizes(&array).map_err(|message| ConnectorError::Metadata {
                uri: uri.to_owned(),
                array: name.clone(),
                message,
            })?;
            let cf = cf_decoding(&array).map_err(|message| ConnectorError::Metadata {
                uri: uri.to_owned(),
                array: name.clone(),
                message,
            })?;
            let blocks = cached_blocks(&array, &dims);
            let id = arrays.len();
            if let Some(grid) = &blocks {
                let keep = keep_bytes(grid);
                keep_per_array.insert(id, keep);
                cacheable_bytes = cacheable_bytes.saturating_add(keep);
            }
            let z = ZarrArray {
                id,
                kind: Numeric::of(array.data_type()),
                shards: ShardIndexes::new(&array),
                array: Arc::new(array),
                cf,
                blocks,
            };
            dims_of.insert(name.clone(), dims);
            arrays.insert(name, z);
        }

        let find_coord = |names: &[&str]| {
            names
                .iter()
                .find(|n| arrays.contains_key(**n))
                .map(|n| n.to_string())
        };
        let coord = |names: &[&str]| {
            find_coord(names).ok_or_else(|| {
                let mut have: Vec<&str> = arrays.keys().map(String::as_str).collect();
                have.sort_unstable();
                ConnectorError::Metadata {
                    uri: uri.to_owned(),
                    array: names[0].to_owned(),
                    message: format!(
                        "coordinate not found (looked for: {}; arrays: {})",
                        names.join(", "),
                        have.join(", ")
                    ),
                }
            })
        };
        let lat_name = coord(&["lat", "latitude"])?;
        let lon_name = coord(&["lon", "longitude"])?;
        let read = |name: &str| {
            crate::source::check_coordinate_len(uri, name, arrays[name].array.shape())?;
            read_all_f64(uri, name, &arrays[name])
        };
        let lat = read(&lat_name)?;
        let lon = read(&lon_name)?;
        // A store without time (a climatology by month, say) has an empty time axis; a pipeline
        // refuses it as a source when it validates the time range.
        let time = match find_coord(&["time"]) {
            Some(time_name) => Self::time_axis(uri, &time_name, &arrays, read(&time_name)?)?,
            None => TimeAxis { times: Vec::new() },
        };
        let time_name = find_coord(&["time"]).unwrap_or_default();

        let canonical = |d: &str| match d {
            d if d == lat_name => "lat".to_owned(),
            d if d == lon_name => "lon".to_owned(),
            d if d == time_name => "time".to_owned(),
            d => d.to_owned(),
        };
        let describe = |name: &String, z: &ZarrArray| VariableInfo {
            name: name.clone(),
            units: text_attr(&z.array, "units").unwrap_or_default(),
            long_name: text_attr(&z.array, "long_name").unwrap_or_else(|| name.clone()),
            dims: dims_of[name].iter().map(|d| canonical(d)).collect(),
            shape: z.array.shape().to_vec(),
            chunks: z
                .array
                .chunk_shape(&vec![0; z.array.dimensionality()])
                .map(|s| s.iter().map(|c| c.get()).collect())
                .unwrap_or_default(),
            dtype: z
                .array
                .data_type()
                .to_string()
                .split(" / ")
                .next()
                .unwrap_or_default()
                .to_owned(),
            codecs: codec_names(&z.array),
            attributes: z.array.attributes().clone(),
        };
        let is_coordinate = |name: &str| dims_of[name].iter().any(|d| d == name);
        let mut variables: Vec<VariableInfo> = Vec::new();
        let mut coordinates: Vec<VariableInfo> = Vec::new();
        for (name, z) in &arrays {
            if is_coordinate(name) {
                coordinates.push(describe(name, z));
            } else {
                variables.push(describe(name, z));
            }
        }
        variables.sort_by(|a, b| a.name.cmp(&b.name));
        coordinates.sort_by(|a, b| a.name.cmp(&b.name));

        // Level coordinates of (time, level, lat, lon) variables, with their values.
        let mut vertical: Vec<VerticalAxis> = Vec::new();
        for variable in &variables {
            let [time, level, lat, lon] = variable.dims.as_slice() else {
                continue;
            };
            if (time.as_str(), lat.as_str(), lon.as_str()) != ("time", "lat", "lon")
                || vertical.iter().any(|axis| &axis.name == level)
                || !coordinates.iter().any(|c| &c.name == level)
            {
                continue;
            }
            vertical.push(VerticalAxis {
                name: level.clone(),
                units: text_attr(&arrays[level].array, "units").unwrap_or_default(),
                values: read(level)?,
            });
        }
        vertical.sort_by(|a, b| a.name.cmp(&b.name));

        let info = DatasetInfo {
            uri: uri.to_owned(),
            variables,
            coordinates,
            time,
            grid: LatLonGrid { lat, lon },
            vertical,
            attributes: root_attributes,
        };
        Ok(Self {
            uri: uri.to_owned(),
            info,
            arrays,
            chunks: ChunkCache::new(DEFAULT_CACHE_BYTES, keep_per_array),
            cacheable_bytes,
            _store: store,
        })
    }

    /// The path or URI the store was opened from.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The instants of the CF-encoded `time_name` coordinate holding `values`.
    fn time_axis(
        uri: &str,
        time_name: &str,
        arrays: &HashMap<String, ZarrArray>,
        values: Vec<f64>,
    ) -> Result<TimeAxis> {
        let time_array = &arrays[time_name].array;
        let time_error = |message: String| ConnectorError::Metadata {
            uri: uri.to_owned(),
            array: time_name.to_owned(),
            message,
        };
        let time_units = text_attr(time_array, "units").ok_or_else(|| {
            time_error("has no CF units attribute (for example \"hours since 1900-01-01\")".into())
        })?;
        let calendar = match text_attr(time_array, "calendar") {
            Some(name) => Calendar::parse(&name).map_err(|e| time_error(e.to_string()))?,
            None => Calendar::Standard,
        };
        let units = CfTimeUnits::parse(&time_units)
            .map_err(|e| time_error(e.to_string()))?
            .in_calendar(calendar);
        Ok(TimeAxis {
            times: units.instants(&values).map_err(time_error)?,
        })
    }

    /// Reads a whole array, CF-decoded, as f64 (coordinates, tests).
    pub fn read_all(&self, name: &str) -> Result<Vec<f64>> {
        read_all_f64(&self.uri, name, self.array(name)?)
    }

    /// Reads `variable` over an index window of every dimension, CF-decoded, as f32.
    pub fn read_subset(&self, variable: &str, ranges: &[Range<u64>]) -> Result<Vec<f32>> {
        let z = self.array(variable)?;
        self.check_window(variable, z, ranges)?;
        Ok(into_vec(read_window(
            self.reading(variable),
            z,
            &self.chunks,
            ranges,
        )?))
    }

    /// What the decoded-chunk cache holds and has done: chunks decoded, reads served from it,
    /// evictions, bytes held and the bound.
    pub fn chunk_cache_stats(&self) -> ChunkCacheStats {
        self.chunks.stats()
    }

    fn reading<'a>(&'a self, name: &'a str) -> Reading<'a> {
        Reading {
            uri: &self.uri,
            name,
        }
    }

    /// The shape of an array.
    pub fn shape(&self, name: &str) -> Result<Vec<u64>> {
        Ok(self.array(name)?.array.shape().to_vec())
    }

    /// A text attribute of an array.
    pub fn attribute(&self, name: &str, key: &str) -> Result<Option<String>> {
        Ok(text_attr(&self.array(name)?.array, key))
    }

    fn array(&self, name: &str) -> Result<&ZarrArray> {
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

    fn check_window(&self, name: &str, z: &ZarrArray, ranges: &[Range<u64>]) -> Result<()> {
        let shape = z.array.shape();
        let fits = ranges.len() == shape.len()
            && ranges
                .iter()
                .zip(shape)
                .all(|(r, n)| r.start <= r.end && r.end <= *n);
        if fits {
            Ok(())
        } else {
            Err(ConnectorError::Metadata {
                uri: self.uri.clone(),
                array: name.to_owned(),
                message: format!("window {ranges:?} does not fit the shape {shape:?}"),
            })
        }
    }

    /// The array of a variable tiles are read from, and the range of levels a tile holds (`None`
    /// for a field on (time, lat, lon)).
    fn tile_variable(&self, variable: &str) -> Result<(&ZarrArray, Option<Range<u64>>)> {
        let z = self.array(variable)?;
        match z.array.dimensionality() {
            3 => Ok((z, None)),
            4 if self.info.vertical_axis_of(variable).is_some() => {
                Ok((z, Some(0..z.array.shape()[1])))
            }
            n => Err(ConnectorError::Metadata {
                uri: self.uri.clone(),
                array: variable.to_owned(),
                message: format!(
                    "has {n} dimensions; tiles are read from (time, lat, lon) arrays, or from \
                     (time, level, lat, lon) arrays with a level coordinate"
                ),
            }),
        }
    }
}

impl Source for ZarrSource {
    fn describe(&self) -> &DatasetInfo {
        &self.info
    }

    fn regions(&self, variable: &str) -> Result<Vec<(RegionKey, TileWindow)>> {
        let array = &self.tile_variable(variable)?.0.array;
        let block = read_block_shape(array).map_err(|message| ConnectorError::Metadata {
            uri: self.uri.clone(),
            array: variable.to_owned(),
            message,
        })?;
        let horizontal = |dims: &[u64]| (dims[dims.len() - 2], dims[dims.len() - 1]);
        let (rows, cols) = horizontal(array.shape());
        let (block_rows, block_cols) = horizontal(&block);
        let mut regions = Vec::new();
        for row in 0..rows.div_ceil(block_rows) {
            for col in 0..cols.div_ceil(block_cols) {
                let (row0, col0) = (row * block_rows, col * block_cols);
                let window = TileWindow {
                    row0: row0 as usize,
                    rows: block_rows.min(rows - row0) as usize,
                    col0: col0 as usize,
                    cols: block_cols.min(cols - col0) as usize,
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
        let (z, levels) = self.tile_variable(variable)?;
        let w = request.window;
        let end = |start: u64, len: u64| start.saturating_add(len);
        let ranges: Vec<Range<u64>> = [request.step..end(request.step, 1)]
            .into_iter()
            .chain(levels)
            .chain([
                w.row0 as u64..end(w.row0 as u64, w.rows as u64),
                w.col0 as u64..end(w.col0 as u64, w.cols as u64),
            ])
            .collect();
        self.check_window(variable, z, &ranges)?;
        if w.is_empty() {
            return Err(ConnectorError::Metadata {
                uri: self.uri.clone(),
                array: variable.to_owned(),
                message: format!("tile window {w:?} is empty"),
            });
        }
        let values = read_window(self.reading(variable), z, &self.chunks, &ranges)?;
        let mut tile = Tile::on_grid(
            variable,
            text_attr(&z.array, "units").unwrap_or_default(),
            (request.step, request.region, w),
            &self.info.grid,
            Vec::new(),
        );
        tile.values = TileValues(Float32Array::new(values, None));
        Ok(tile)
    }

    fn offer_cache_bytes(&self, bytes: u64) -> u64 {
        if self.cacheable_bytes == 0 {
            return 0;
        }
        let kept = bytes.min(self.cacheable_bytes);
        self.chunks.set_capacity(kept);
        kept
    }
}

/// The root attributes and the arrays at the root: with their metadata when the store has
/// consolidated metadata, by name only (opened one by one) when it must be listed.
#[allow(clippy::type_complexity)]
fn discover(
    store: &OpenedStore,
) -> Result<(Map<String, Value>, Vec<(String, Option<ArrayMetadata>)>)> {
    let uri = store.uri.as_str();
    let open_err = |node: &str, message: String| ConnectorError::Open {
        uri: uri.to_owned(),
        node: node.to_owned(),
        message,
    };
    let get_json = |key: &str| -> Result<Option<Value>> {
        let store_key = StoreKey::new(key).map_err(|e| open_err(key, e.to_string()))?;
        match store.readable.get(&store_key) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| open_err(key, format!("is not valid JSON: {e}"))),
            Err(e) => Err(open_err(key, explain(e.to_string()))),
        }
    };
    let object = |value: &Value, key: &str| -> Result<Map<String, Value>> {
        value
            .as_object()
            .cloned()
            .ok_or_else(|| open_err(key, "is not a JSON object".into()))
    };

    let mut attributes = Map::new();
    let mut consolidated: Option<Vec<(String, ArrayMetadata)>> = None;
    if let Some(root) = get_json("zarr.json")? {
        let root = object(&root, "zarr.json")?;
        if root.get("node_type").and_then(Value::as_str) == Some("array") {
            return Err(open_err(
                "zarr.json",
                "the root is an array, not a group of variables".into(),
            ));
        }
        if let Some(Value::Object(attrs)) = root.get("attributes") {
            attributes = attrs.clone();
        }
        if let Some(nodes) = root
            .get("consolidated_metadata")
            .and_then(|c| c.get("metadata"))
            .and_then(Value::as_object)
        {
            let mut arrays = Vec::new();
            for (name, node) in nodes {
                if name.contains('/')
                    || node.get("node_type").and_then(Value::as_str) != Some("array")
                {
                    continue;
                }
                let metadata: ArrayMetadataV3 = serde_json::from_value(node.clone())
                    .map_err(|e| open_err(name, format!("consolidated metadata: {e}")))?;
                arrays.push((name.clone(), ArrayMetadata::V3(metadata)));
            }
            consolidated = Some(arrays);
        }
    } else if get_json(".zgroup")?.is_some() {
        if let Some(attrs) = get_json(".zattrs")? {
            attributes = object(&attrs, ".zattrs")?;
        }
        if let Some(zmetadata) = get_json(".zmetadata")? {
            let nodes = zmetadata
                .get("metadata")
                .and_then(Value::as_object)
                .ok_or_else(|| open_err(".zmetadata", "has no \"metadata\" object".into()))?;
            let mut arrays = Vec::new();
            for (key, zarray) in nodes {
                let Some(name) = key.strip_suffix("/.zarray") else {
                    continue;
                };
                if name.contains('/') {
                    continue;
                }
                let mut metadata: ArrayMetadataV2 = serde_json::from_value(zarray.clone())
                    .map_err(|e| open_err(name, format!(".zmetadata: {e}")))?;
                if let Some(Value::Object(attrs)) = nodes.get(&format!("{name}/.zattrs")) {
                    metadata.attributes = attrs.clone();
                }
                arrays.push((name.to_owned(), ArrayMetadata::V2(metadata)));
            }
            consolidated = Some(arrays);
        }
    } else {
        return Err(open_err(
            "/",
            "is not a Zarr store (neither zarr.json nor .zgroup at its root)".into(),
        ));
    }

    if let Some(arrays) = consolidated {
        return Ok((
            attributes,
            arrays.into_iter().map(|(n, m)| (n, Some(m))).collect(),
        ));
    }
    let Some(listable) = &store.listable else {
        return Err(open_err(
            "/",
            "has no consolidated metadata and its protocol cannot list keys; write it with \
             consolidated metadata (xarray: to_zarr(..., consolidated=True))"
                .into(),
        ));
    };
    let group = Group::open(listable.clone(), "/").map_err(|e| open_err("/", e.to_string()))?;
    let paths = group
        .child_array_paths()
        .map_err(|e| open_err("/", e.to_string()))?;
    Ok((
        attributes,
        paths
            .iter()
            .map(|p| (p.as_str().trim_start_matches('/').to_owned(), None))
            .collect(),
    ))
}

/// The unit a tile is cut from: the inner chunk of a sharded array (read without decoding the
/// whole shard), else the chunk.
fn read_block_shape(array: &Array<Storage>) -> std::result::Result<Vec<u64>, String> {
    let shape = match array.subchunk_shape() {
        Some(inner) => inner.to_vec(),
        None => array
            .chunk_shape(&vec![0; array.dimensionality()])
            .map_err(|e| e.to_string())?
            .to_vec(),
    };
    Ok(shape.iter().map(|n| n.get()).collect())
}

/// The largest chunk (decoded) a store may declare: beyond it, metadata is corrupt or hostile.
const MAX_CHUNK_BYTES: u64 = 4 << 30;

/// Refuses shapes and chunk shapes whose sizes overflow or are absurd, before any read computes
/// with them.
fn check_sizes(array: &Array<Storage>) -> std::result::Result<(), String> {
    let size = array.data_type().fixed_size().ok_or_else(|| {
        format!(
            "data type {} has no fixed size (have: numeric types)",
            array.data_type()
        )
    })? as u64;
    let bytes = |dims: &[u64]| dims.iter().try_fold(size, |a, n| a.checked_mul(*n));
    let shape = array.shape();
    if bytes(shape).is_none() {
        return Err(format!("shape {shape:?} holds more than 2^64 bytes"));
    }
    let chunk = array
        .chunk_shape(&vec![0; array.dimensionality()])
        .map_err(|e| e.to_string())?;
    let chunk: Vec<u64> = chunk.iter().map(|c| c.get()).collect();
    match bytes(&chunk) {
        Some(b) if b <= MAX_CHUNK_BYTES => {}
        _ => {
            return Err(format!(
                "chunk shape {chunk:?} is larger than {} GiB decoded",
                MAX_CHUNK_BYTES >> 30
            ));
        }
    }
    Ok(())
}

/// What this build decodes, for errors about codecs it does not.
const READABLE_CODECS: &str = "bytes, blosc (lz4, lz4hc, zstd, blosclz, zlib; shuffle, \
    bitshuffle), zstd, gzip, zlib, bz2, crc32c, sharding_indexed, transpose";

/// The codecs (v3) or filters and compressor (v2) of an array exactly as its metadata declares
/// them, configurations included, read from the raw JSON so that it works when zarrs refuses it.
fn declared_codecs(store: &OpenedStore, name: &str, metadata: Option<&ArrayMetadata>) -> String {
    let raw: Option<Value> = match metadata {
        Some(m) => serde_json::to_value(m).ok(),
        None => ["zarr.json", ".zarray"].iter().find_map(|file| {
            let key = StoreKey::new(format!("{name}/{file}")).ok()?;
            let bytes = store.readable.get(&key).ok()??;
            serde_json::from_slice(&bytes).ok()
        }),
    };
    let Some(raw) = raw else {
        return "unknown".into();
    };
    let mut codecs: Vec<&Value> = Vec::new();
    for key in ["filters", "codecs"] {
        if let Some(Value::Array(list)) = raw.get(key) {
            codecs.extend(list);
        }
    }
    if let Some(compressor) = raw.get("compressor").filter(|c| !c.is_null()) {
        codecs.push(compressor);
    }
    if codecs.is_empty() {
        return "none".into();
    }
    codecs
        .iter()
        .map(|c| match (c.get("name"), c.get("id")) {
            (Some(Value::String(n)), _) => match c.get("configuration") {
                Some(config) => format!("{n} {config}"),
                None => n.clone(),
            },
            (_, Some(Value::String(id))) => format!("{id} {c}"),
            _ => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn dimension_names(array: &Array<Storage>) -> Option<Vec<String>> {
    if let Some(names) = array.dimension_names() {
        return names.iter().cloned().collect();
    }
    let list = array.attributes().get("_ARRAY_DIMENSIONS")?.as_array()?;
    list.iter().map(|v| v.as_str().map(str::to_owned)).collect()
}

fn text_attr(array: &Array<Storage>, key: &str) -> Option<String> {
    array
        .attributes()
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// The CF decoding of an array as xarray applies it: attributes, plus, for Zarr v2, the array's
/// `fill_value` (xarray treats it as `_FillValue`; for v3 only the attribute counts).
fn cf_decoding(array: &Array<Storage>) -> std::result::Result<CfDecoding, String> {
    let size = array.data_type().fixed_size().unwrap_or(8);
    let mut cf = CfDecoding::from_attributes(array.attributes(), size)?;
    if let ArrayMetadata::V2(v2) = array.metadata()
        && !array.attributes().contains_key("_FillValue")
        && let Ok(fill) = serde_json::to_value(&v2.fill_value)
    {
        let mut map = Map::new();
        map.insert("_FillValue".into(), fill);
        for value in CfDecoding::from_attributes(&map, size)?.missing {
            cf = cf.with_missing(value);
        }
    }
    Ok(cf)
}

/// The codecs (v3) or filters and compressor (v2), by name, as the metadata spells them.
fn codec_names(array: &Array<Storage>) -> Vec<String> {
    let describe = |codec: &Value| -> String {
        let name = codec
            .get("name")
            .or_else(|| codec.get("id"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let config = codec.get("configuration").unwrap_or(codec);
        match config.get("cname").and_then(Value::as_str) {
            Some(cname) => format!("{name}({cname})"),
            None => name,
        }
    };
    match array.metadata() {
        ArrayMetadata::V3(v3) => serde_json::to_value(&v3.codecs)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let inner = c
                    .get("configuration")
                    .and_then(|cfg| cfg.get("codecs"))
                    .and_then(Value::as_array);
                match inner {
                    Some(inner) => format!(
                        "{}[{}]",
                        describe(c),
                        inner.iter().map(describe).collect::<Vec<_>>().join(", ")
                    ),
                    None => describe(c),
                }
            })
            .collect(),
        ArrayMetadata::V2(v2) => {
            let mut names: Vec<String> = v2
                .filters
                .iter()
                .flatten()
                .filter_map(|f| serde_json::to_value(f).ok())
                .map(|f| describe(&f))
                .collect();
            if let Some(compressor) = v2
                .compressor
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok())
            {
                names.push(describe(&compressor));
            }
            names
        }
    }
}

fn read_all_f64(uri: &str, name: &str, z: &ZarrArray) -> Result<Vec<f64>> {
    let ranges: Vec<_> = z.array.shape().iter().map(|n| 0..*n).collect();
    Ok(z.cf.decode_f64(&read_raw(Reading { uri, name }, z, &ranges)?))
}

/// True when `path` holds a Zarr hierarchy (v2 or v3 root metadata).
pub fn is_zarr_store(path: &Path) -> bool {
    path.join("zarr.json").is_file() || path.join(".zgroup").is_file()
}
