//! [`Netcdf4File`]: a NetCDF-4 file (HDF5 underneath) read in pure Rust through `netcdf-reader`,
//! from a local path (memory-mapped) or any [`ByteRanges`] (HTTP, S3, GCS, Azure).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use netcdf_reader::{
    BlockCacheStorage, NcAttrValue, NcFile, NcFormat, NcOpenOptions, NcSliceInfo, NcSliceInfoElem,
    NcType as Nc4Type, RangeRequestStorage,
};
use serde_json::{Map, Value};

use super::header::NcType;
use super::{ByteRanges, NetcdfData, NetcdfVariable};
use crate::cf::RawValues;
use crate::{ConnectorError, Result};

/// Remote files are read in blocks of this size, so that the many small reads of HDF5 metadata
/// (object headers, B-trees, heaps) become a few range requests.
const REMOTE_BLOCK_BYTES: usize = 256 * 1024;
/// Blocks kept of a remote file (16 MiB).
const REMOTE_BLOCKS: usize = 64;
/// The most one read may decode: shapes in a broken file can claim terabytes.
const MAX_READ_BYTES: usize = 4 << 30;

/// Opens the file a second time for its layout only: no chunk is ever decoded through it.
fn layout_options() -> hdf5_reader::OpenOptions {
    hdf5_reader::OpenOptions::default().with_chunk_cache_bytes(0)
}

/// HDF5's registered ids of the filters netCDF 4.9 writes beyond HDF5's own
/// (`nc_def_var_zstandard`, `nc_def_var_bzip2`, `nc_def_var_blosc`; netCDF4-python's
/// `compression="zstd"`, `"bzip2"`, `"blosc_lz4"` and the other blosc compressors).
const ZSTD_FILTER: u16 = 32015;
const BZIP2_FILTER: u16 = 307;
const BLOSC_FILTER: u16 = 32001;

/// What one filtered chunk may decode to: the reader refuses larger chunks anyway
/// (`max_chunk_bytes`), and a corrupt or hostile stream must fail there, not fill memory first.
const MAX_CHUNK_BYTES: usize = hdf5_reader::DEFAULT_MAX_CHUNK_BYTES;

fn decode_error(filter: &str, why: impl fmt::Display) -> hdf5_reader::error::Error {
    hdf5_reader::error::Error::DecompressionError(format!("{filter}: {why}"))
}

/// Decodes a stream to its end, refusing more than [`MAX_CHUNK_BYTES`].
fn decode_bounded(
    filter: &str,
    decoder: impl std::io::Read,
) -> hdf5_reader::error::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    decoder
        .take(MAX_CHUNK_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| decode_error(filter, e))?;
    if out.len() > MAX_CHUNK_BYTES {
        return Err(decode_error(
            filter,
            format!("the chunk decodes to more than {MAX_CHUNK_BYTES} bytes"),
        ));
    }
    Ok(out)
}

fn open_options() -> NcOpenOptions {
    let mut filters = hdf5_reader::FilterRegistry::new();
    filters.register(
        ZSTD_FILTER,
        Box::new(|_, compressed, _| {
            let decoder = zstd::stream::read::Decoder::with_buffer(compressed)
                .map_err(|e| decode_error("zstd", e))?;
            decode_bounded("zstd", decoder)
        }),
    );
    filters.register(
        BZIP2_FILTER,
        Box::new(|_, compressed, _| {
            decode_bounded("bzip2", bzip2::read::BzDecoder::new(compressed))
        }),
    );
    // The chunk is one blosc frame; its header gives the decoded size, which the filter's
    // parameters also record (the fourth: the chunk's bytes).
    filters.register(
        BLOSC_FILTER,
        Box::new(|filter, compressed, _| {
            use zarrs::array::codec::{blosc_decompress_bytes, blosc_validate};
            let len = blosc_validate(compressed)
                .ok_or_else(|| decode_error("blosc", "not a valid blosc frame"))?;
            let declared = filter.client_data.get(3).map(|n| *n as usize);
            if len > MAX_CHUNK_BYTES || declared.is_some_and(|n| n != len) {
                return Err(decode_error(
                    "blosc",
                    format!("the frame holds {len} bytes, the chunk {declared:?}"),
                ));
            }
            blosc_decompress_bytes(compressed, len, 1).map_err(|e| decode_error("blosc", e))
        }),
    );
    NcOpenOptions {
        max_read_bytes: MAX_READ_BYTES,
        max_chunk_bytes: MAX_CHUNK_BYTES,
        filter_registry: Some(filters),
        ..NcOpenOptions::default()
    }
}

/// A NetCDF-4 (or NetCDF-4 classic model) file: the root group's dimensions, variables and
/// attributes, and hyperslab reads of its numeric variables (deflate, zstd, bzip2, blosc,
/// shuffle, fletcher32, szip, n-bit and scale-offset filters; contiguous, compact and chunked
/// layouts).
///
/// ```no_run
/// use isotach_connectors::{Netcdf4File, NetcdfData};
/// let file = Netcdf4File::open("era5_ivt.nc")?;
/// let first_step = file.read("ivt", &[0, 0, 0], &[1, 721, 1440])?;
/// # Ok::<(), isotach_connectors::ConnectorError>(())
/// ```
pub struct Netcdf4File {
    uri: String,
    file: NcFile,
    attributes: Map<String, Value>,
    variables: Vec<NetcdfVariable>,
}

impl fmt::Debug for Netcdf4File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Netcdf4File")
            .field("uri", &self.uri)
            .field("format", &self.file.format())
            .finish_non_exhaustive()
    }
}

impl Netcdf4File {
    /// Opens a local file (memory-mapped); errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let uri = path.display().to_string();
        let file =
            NcFile::open_with_options(path, open_options()).map_err(|e| open_error(&uri, e))?;
        let layout = hdf5_reader::Hdf5File::open_with_options(path, layout_options())
            .map_err(|e| open_error(&uri, e))?;
        Self::from_nc(uri, file, &layout)
    }

    /// Opens a file behind any byte-range reader: `uri` names it in errors.
    pub fn from_ranges(uri: &str, source: Arc<dyn ByteRanges>) -> Result<Self> {
        let len = source.len().map_err(|e| open_error(uri, e))?;
        let ranges = RangeRequestStorage::new(len, move |offset, len| {
            source.read_at(offset, len).map_err(Into::into)
        });
        let storage: hdf5_reader::storage::DynStorage = Arc::new(BlockCacheStorage::new(
            Arc::new(ranges),
            REMOTE_BLOCK_BYTES,
            REMOTE_BLOCKS,
        ));
        let file = NcFile::from_storage_with_options(storage.clone(), open_options())
            .map_err(|e| open_error(uri, e))?;
        // The same cached blocks: the layout costs no second round of requests.
        let layout = hdf5_reader::Hdf5File::from_storage_with_options(storage, layout_options())
            .map_err(|e| open_error(uri, e))?;
        Self::from_nc(uri.to_owned(), file, &layout)
    }

    /// `layout`, the same file seen as HDF5, gives each variable's chunk shape (which
    /// netcdf-reader does not show), so that tiles can follow the chunks.
    fn from_nc(uri: String, file: NcFile, layout: &hdf5_reader::Hdf5File) -> Result<Self> {
        if !matches!(file.format(), NcFormat::Nc4 | NcFormat::Nc4Classic) {
            return Err(open_error(
                &uri,
                format!("is {:?}, not a NetCDF-4 file", file.format()),
            ));
        }
        let attributes = file
            .global_attributes()
            .map_err(|e| open_error(&uri, e))?
            .iter()
            .map(|a| (a.name.clone(), attribute_value(&a.value)))
            .collect();
        let variables = file
            .variables()
            .map_err(|e| open_error(&uri, e))?
            .iter()
            .map(|v| NetcdfVariable {
                name: v.name().to_owned(),
                dims: v.dimensions().iter().map(|d| d.name.clone()).collect(),
                shape: v.shape(),
                nc_type: numeric_type(v.dtype()),
                chunks: layout
                    .dataset(&format!("/{}", v.name()))
                    .ok()
                    .and_then(|d| d.chunks())
                    .map(|dims| dims.into_iter().map(u64::from).collect()),
                attributes: v
                    .attributes()
                    .iter()
                    .map(|a| (a.name.clone(), attribute_value(&a.value)))
                    .collect(),
            })
            .collect();
        Ok(Self {
            uri,
            file,
            attributes,
            variables,
        })
    }

    fn variable(&self, name: &str) -> Result<&NetcdfVariable> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                super::unknown_variable(
                    &self.uri,
                    name,
                    self.variables.iter().map(|v| v.name.as_str()),
                )
            })
    }
}

impl NetcdfData for Netcdf4File {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn data_model(&self) -> &'static str {
        match self.file.format() {
            NcFormat::Nc4Classic => "NETCDF4_CLASSIC",
            _ => "NETCDF4",
        }
    }

    fn global_attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    fn netcdf_variables(&self) -> Result<Vec<NetcdfVariable>> {
        Ok(self.variables.clone())
    }

    fn check_decodable(&self, name: &str) -> Result<()> {
        let var = self.variable(name)?;
        if var.nc_type.is_none() || var.shape.contains(&0) {
            return Ok(());
        }
        let rank = var.shape.len();
        // A filter that is not decoded is a Metadata error; a chunk that fails otherwise is left
        // to the tiles that read it (a run may never need this one).
        match self.read(name, &vec![0; rank], &vec![1; rank]) {
            Err(e @ ConnectorError::Metadata { .. }) => Err(e),
            _ => Ok(()),
        }
    }

    fn read(&self, name: &str, start: &[u64], count: &[u64]) -> Result<RawValues> {
        let var = self.variable(name)?;
        let chunk_err = |message: String| ConnectorError::Chunk {
            uri: self.uri.clone(),
            array: name.to_owned(),
            chunk: start.to_vec(),
            message,
        };
        super::check_hyperslab(&self.uri, name, &var.shape, start, count)?;
        let Some(nc_type) = var.nc_type.filter(|t| *t != NcType::Char) else {
            return Err(ConnectorError::Metadata {
                uri: self.uri.clone(),
                array: name.to_owned(),
                message: "is not a numeric variable; only numeric variables are read".to_owned(),
            });
        };
        if count.contains(&0) {
            return Ok(super::file::raw_values(nc_type, &[]));
        }
        let selection = NcSliceInfo {
            selections: start
                .iter()
                .zip(count)
                .map(|(s, n)| NcSliceInfoElem::Slice {
                    start: *s,
                    end: s + n,
                    step: 1,
                })
                .collect(),
        };
        let read = |e: netcdf_reader::Error| match e {
            netcdf_reader::Error::Hdf5(hdf5_reader::error::Error::UnsupportedFilter(what)) => {
                ConnectorError::Metadata {
                    uri: self.uri.clone(),
                    array: name.to_owned(),
                    message: unsupported_filter(&what),
                }
            }
            e => chunk_err(e.to_string()),
        };
        macro_rules! slice {
            ($t:ty, $variant:ident) => {
                RawValues::$variant(
                    self.file
                        .read_variable_slice::<$t>(name, &selection)
                        .map_err(read)?
                        .into_raw_vec_and_offset()
                        .0,
                )
            };
        }
        Ok(match nc_type {
            NcType::Byte => slice!(i8, I8),
            NcType::UByte | NcType::Char => slice!(u8, U8),
            NcType::Short => slice!(i16, I16),
            NcType::UShort => slice!(u16, U16),
            NcType::Int => slice!(i32, I32),
            NcType::UInt => slice!(u32, U32),
            NcType::Int64 => slice!(i64, I64),
            NcType::UInt64 => slice!(u64, U64),
            NcType::Float => slice!(f32, F32),
            NcType::Double => slice!(f64, F64),
        })
    }
}

/// Why a variable cannot be read, from hdf5-reader's "filter id N" (the filter by number and,
/// for the ones met in the wild, by name, with the filters that are decoded) or its description
/// of a filter option it lacks.
fn unsupported_filter(what: &str) -> String {
    let Some(id) = what
        .strip_prefix("filter id ")
        .and_then(|n| n.parse::<u16>().ok())
    else {
        return format!("is stored with a filter option that is not decoded: {what}");
    };
    let known = match id {
        32000 => " (LZF, h5py's own)",
        32004 => " (LZ4)",
        32008 => " (bitshuffle)",
        32013 => " (ZFP)",
        32017 => " (SZ)",
        32026 => " (Blosc2)",
        _ => "",
    };
    format!(
        "is stored with HDF5 filter {id}{known}, which is not decoded here (decoded: deflate, \
         shuffle, fletcher32, szip, n-bit, scale-offset, zstd, bzip2, blosc)"
    )
}

fn open_error(uri: &str, why: impl fmt::Display) -> ConnectorError {
    ConnectorError::Open {
        uri: uri.to_owned(),
        node: "/".into(),
        message: why.to_string(),
    }
}

/// The classic type of a NetCDF-4 variable; `None` for the types only NetCDF-4 has.
fn numeric_type(dtype: &Nc4Type) -> Option<NcType> {
    Some(match dtype {
        Nc4Type::Byte => NcType::Byte,
        Nc4Type::Char => NcType::Char,
        Nc4Type::Short => NcType::Short,
        Nc4Type::Int => NcType::Int,
        Nc4Type::Float => NcType::Float,
        Nc4Type::Double => NcType::Double,
        Nc4Type::UByte => NcType::UByte,
        Nc4Type::UShort => NcType::UShort,
        Nc4Type::UInt => NcType::UInt,
        Nc4Type::Int64 => NcType::Int64,
        Nc4Type::UInt64 => NcType::UInt64,
        _ => return None,
    })
}

/// An attribute as JSON, the way the classic reader shows them: text as a string, one number as
/// a number, several as an array; NaN and infinities as strings.
fn attribute_value(value: &NcAttrValue) -> Value {
    fn numbers<T: Copy>(values: &[T], one: impl Fn(T) -> Value) -> Value {
        match values {
            [single] => one(*single),
            many => Value::Array(many.iter().map(|v| one(*v)).collect()),
        }
    }
    match value {
        NcAttrValue::Chars(text) => Value::String(text.clone()),
        NcAttrValue::Strings(texts) => match texts.as_slice() {
            [single] => Value::String(single.clone()),
            many => Value::Array(many.iter().cloned().map(Value::String).collect()),
        },
        NcAttrValue::Bytes(v) => numbers(v, Value::from),
        NcAttrValue::UBytes(v) => numbers(v, Value::from),
        NcAttrValue::Shorts(v) => numbers(v, Value::from),
        NcAttrValue::UShorts(v) => numbers(v, Value::from),
        NcAttrValue::Ints(v) => numbers(v, Value::from),
        NcAttrValue::UInts(v) => numbers(v, Value::from),
        NcAttrValue::Int64s(v) => numbers(v, Value::from),
        NcAttrValue::UInt64s(v) => numbers(v, Value::from),
        NcAttrValue::Floats(v) => numbers(v, |x| super::header::float_value(f64::from(x))),
        NcAttrValue::Doubles(v) => numbers(v, super::header::float_value),
        #[allow(unreachable_patterns)]
        other => Value::String(format!("{other:?}")),
    }
}
