//! [`NetcdfFile`]: the header, the byte layout of every variable (checked against the length of
//! the file when it is opened), and hyperslab reads.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::header::{self, Dimension, Format, NcType, Variable};
use super::{ByteRanges, LocalFile, NetcdfData, NetcdfVariable};
use crate::cf::{CfDecoding, RawValues};
use crate::{ConnectorError, Result};

/// Pieces of a hyperslab separated by at most this many bytes are fetched in one read (the gap is
/// read and dropped): one request per tile rather than one per row over HTTP.
const MAX_GAP_BYTES: u64 = 64 * 1024;
/// A merged read stops growing at this many bytes.
const MAX_READ_BYTES: u64 = 16 * 1024 * 1024;
/// A merged read stops growing at this many pieces (bounds the bookkeeping of thin slices).
const MAX_PIECES: usize = 64 * 1024;

/// Where a variable's values lie.
#[derive(Debug, Clone)]
struct Layout {
    /// Lengths of the dimensions after the record dimension (all of them, for a fixed-size
    /// variable).
    inner_shape: Vec<u64>,
    /// True when the first dimension is the unlimited one.
    record: bool,
    /// Bytes of the whole variable, or of one record's slab of it (unpadded).
    bytes: u64,
}

/// A NetCDF-3 classic file (CDF-1, CDF-2 or CDF-5) with its header parsed and checked.
///
/// ```no_run
/// use isotach_connectors::NetcdfFile;
/// let file = NetcdfFile::open("era5.nc")?;
/// let shape = file.shape("t2m")?; // [time, lat, lon]
/// let first_step = file.read_decoded("t2m", &[0, 0, 0], &[1, shape[1], shape[2]])?;
/// # Ok::<(), isotach_connectors::ConnectorError>(())
/// ```
pub struct NetcdfFile {
    uri: String,
    source: Arc<dyn ByteRanges>,
    file_len: u64,
    format: Format,
    numrecs: u64,
    recsize: u64,
    dimensions: Vec<Dimension>,
    attributes: Map<String, Value>,
    variables: Vec<Variable>,
    layouts: Vec<Layout>,
}

impl fmt::Debug for NetcdfFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetcdfFile")
            .field("uri", &self.uri)
            .field("format", &self.format)
            .field("numrecs", &self.numrecs)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl NetcdfFile {
    /// Opens a local file and parses its header; errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let uri = path.display().to_string();
        let file = LocalFile::open(path).map_err(|e| ConnectorError::Open {
            uri: uri.clone(),
            node: "/".to_owned(),
            message: e.to_string(),
        })?;
        Self::from_ranges(&uri, Arc::new(file))
    }

    /// Parses the header of the file behind `source`; `uri` names it in errors. Any
    /// `ByteRanges` implementation works, including a `Vec<u8>` holding the whole file.
    pub fn from_ranges(uri: &str, source: Arc<dyn ByteRanges>) -> Result<Self> {
        let open_err = |message: String| ConnectorError::Open {
            uri: uri.to_owned(),
            node: "header".to_owned(),
            message,
        };
        let file_len = source
            .len()
            .map_err(|e| open_err(format!("cannot read the file length: {e}")))?;
        let header = header::parse(source.as_ref(), file_len).map_err(open_err)?;
        let meta_err = |array: &str, message: String| ConnectorError::Metadata {
            uri: uri.to_owned(),
            array: array.to_owned(),
            message,
        };

        let record_dim = header.dimensions.iter().position(|(_, len)| *len == 0);
        let mut layouts = Vec::new();
        for var in &header.variables {
            let record = record_dim.is_some() && var.dim_ids.first() == record_dim.as_ref();
            if let Some(pos) = var
                .dim_ids
                .iter()
                .skip(1)
                .position(|d| Some(*d) == record_dim)
            {
                return Err(meta_err(
                    &var.name,
                    format!(
                        "the unlimited dimension is its dimension {}; it must be the first",
                        pos + 1
                    ),
                ));
            }
            let inner_ids = if record {
                &var.dim_ids[1..]
            } else {
                &var.dim_ids[..]
            };
            let inner_shape: Vec<u64> = inner_ids.iter().map(|d| header.dimensions[*d].1).collect();
            let bytes = inner_shape
                .iter()
                .try_fold(var.nc_type.size() as u64, |acc, n| acc.checked_mul(*n))
                .ok_or_else(|| {
                    meta_err(
                        &var.name,
                        format!(
                            "shape {inner_shape:?} of {} values overflows",
                            var.nc_type.name()
                        ),
                    )
                })?;
            if !record
                && var
                    .begin
                    .checked_add(bytes)
                    .is_none_or(|end| end > file_len)
            {
                return Err(meta_err(
                    &var.name,
                    format!(
                        "data at bytes {}..{} (begin {} + {bytes} bytes) lie past the end of the \
                         {file_len}-byte file (truncated?)",
                        var.begin,
                        var.begin.saturating_add(bytes),
                        var.begin
                    ),
                ));
            }
            layouts.push(Layout {
                inner_shape,
                record,
                bytes,
            });
        }

        // Records hold one slab of every record variable, each padded to 4 bytes, except when
        // there is exactly one record variable: then records are not padded.
        let record_vars: Vec<usize> = (0..layouts.len()).filter(|i| layouts[*i].record).collect();
        let recsize = match record_vars.as_slice() {
            [only] => Some(layouts[*only].bytes),
            many => many.iter().try_fold(0u64, |acc, i| {
                acc.checked_add(layouts[*i].bytes.checked_add(3)? & !3)
            }),
        }
        .ok_or_else(|| meta_err("/", "the record size overflows".to_owned()))?;
        let numrecs = match header.numrecs {
            Some(n) => n,
            None => {
                let first = record_vars
                    .iter()
                    .map(|i| header.variables[*i].begin)
                    .min()
                    .unwrap_or(file_len);
                file_len
                    .saturating_sub(first)
                    .checked_div(recsize)
                    .unwrap_or(0)
            }
        };
        for i in &record_vars {
            let (var, layout) = (&header.variables[*i], &layouts[*i]);
            if numrecs == 0 || layout.bytes == 0 {
                continue;
            }
            let end = (numrecs - 1)
                .checked_mul(recsize)
                .and_then(|offset| offset.checked_add(var.begin))
                .and_then(|start| start.checked_add(layout.bytes));
            if end.is_none_or(|end| end > file_len) {
                return Err(meta_err(
                    &var.name,
                    format!(
                        "{numrecs} records of {recsize} bytes from byte {} lie past the end of \
                         the {file_len}-byte file (truncated, or a wrong numrecs?)",
                        var.begin
                    ),
                ));
            }
        }

        let dimensions = header
            .dimensions
            .into_iter()
            .map(|(name, len)| Dimension {
                name,
                len: if len == 0 { numrecs } else { len },
                unlimited: len == 0,
            })
            .collect();
        Ok(Self {
            uri: uri.to_owned(),
            source,
            file_len,
            format: header.format,
            numrecs,
            recsize,
            dimensions,
            attributes: header.attributes,
            variables: header.variables,
            layouts,
        })
    }

    /// The path or URI the file was opened as.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Which classic variant the file is.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The number of records (the length of the unlimited dimension), computed from the file size
    /// when the header holds the streaming value.
    pub fn numrecs(&self) -> u64 {
        self.numrecs
    }

    /// The dimensions, in header order (variables refer to them by index).
    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }

    /// The global attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// The variables, in header order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// The variable called `name`; unknown, the error lists the variables the file has.
    pub fn variable(&self, name: &str) -> Result<&Variable> {
        Ok(&self.variables[self.index(name)?])
    }

    /// The dimension names of a variable, outermost first.
    pub fn dimension_names(&self, name: &str) -> Result<Vec<String>> {
        let var = self.variable(name)?;
        Ok(var
            .dim_ids
            .iter()
            .map(|d| self.dimensions[*d].name.clone())
            .collect())
    }

    /// The shape of a variable (a record variable's first length is [`Self::numrecs`]).
    pub fn shape(&self, name: &str) -> Result<Vec<u64>> {
        Ok(self.shape_of(self.index(name)?))
    }

    /// The hyperslab `start[d]..start[d] + count[d]` of every dimension `d`, as stored (row-major,
    /// converted from big-endian). Text (`char`) variables are refused.
    pub fn read(&self, name: &str, start: &[u64], count: &[u64]) -> Result<RawValues> {
        let index = self.index(name)?;
        let (var, layout) = (&self.variables[index], &self.layouts[index]);
        if var.nc_type == NcType::Char {
            return Err(ConnectorError::Metadata {
                uri: self.uri.clone(),
                array: name.to_owned(),
                message: "is a char (text) variable; only numeric variables are read".to_owned(),
            });
        }
        let shape = self.shape_of(index);
        let chunk_err = |chunk: Vec<u64>, message: String| ConnectorError::Chunk {
            uri: self.uri.clone(),
            array: name.to_owned(),
            chunk,
            message,
        };
        super::check_hyperslab(&self.uri, name, &shape, start, count)?;
        let elem = var.nc_type.size() as u64;
        // Within the shape, whose bytes were checked against the file length.
        let total_bytes = count
            .iter()
            .try_fold(elem, |acc, n| acc.checked_mul(*n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| chunk_err(start.to_vec(), format!("count {count:?} is too large")))?;
        if total_bytes == 0 {
            return Ok(raw_values(var.nc_type, &[]));
        }
        let mut gather = Gather {
            source: self.source.as_ref(),
            out: Vec::with_capacity(total_bytes),
            start: 0,
            end: 0,
            pieces: Vec::new(),
            label: Vec::new(),
        };
        let result = if layout.record {
            (start[0]..start[0] + count[0]).try_for_each(|record| {
                let base = var.begin + record * self.recsize;
                pieces(
                    base,
                    &layout.inner_shape,
                    &start[1..],
                    &count[1..],
                    elem,
                    |o, l| gather.push(o, l, || vec![record]),
                )
            })
        } else {
            pieces(
                var.begin,
                &layout.inner_shape,
                start,
                count,
                elem,
                |o, l| gather.push(o, l, || start.to_vec()),
            )
        };
        result
            .and_then(|()| gather.flush())
            .map_err(|(chunk, message)| chunk_err(chunk, message))?;
        Ok(raw_values(var.nc_type, &gather.out))
    }

    /// The whole variable, as stored.
    pub fn read_all_raw(&self, name: &str) -> Result<RawValues> {
        let shape = self.shape(name)?;
        self.read(name, &vec![0; shape.len()], &shape)
    }

    /// How a variable's stored values become physical ones, from its attributes (`_FillValue`,
    /// `missing_value`, `scale_factor`, `add_offset`, `_Unsigned`), as xarray decodes them. The
    /// default fill values of NetCDF-3 (`NC_FILL_FLOAT` and friends) are not masked unless an
    /// attribute names them, as in xarray.
    pub fn cf_decoding(&self, name: &str) -> Result<CfDecoding> {
        let var = self.variable(name)?;
        let size = var.nc_type.size();
        let decoding = CfDecoding::from_attributes(&var.attributes, size).map_err(|message| {
            ConnectorError::Metadata {
                uri: self.uri.clone(),
                array: name.to_owned(),
                message,
            }
        })?;
        Ok(decoding)
    }

    /// A hyperslab decoded to f64 (missing values NaN, packed values unpacked); see
    /// [`Self::read`] and [`Self::cf_decoding`].
    pub fn read_decoded(&self, name: &str, start: &[u64], count: &[u64]) -> Result<Vec<f64>> {
        let decoding = self.cf_decoding(name)?;
        Ok(decoding.decode_f64(&self.read(name, start, count)?))
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.variables
            .iter()
            .position(|v| v.name == name)
            .ok_or_else(|| {
                super::unknown_variable(
                    &self.uri,
                    name,
                    self.variables.iter().map(|v| v.name.as_str()),
                )
            })
    }

    fn shape_of(&self, index: usize) -> Vec<u64> {
        let layout = &self.layouts[index];
        let mut shape = Vec::with_capacity(layout.inner_shape.len() + 1);
        if layout.record {
            shape.push(self.numrecs);
        }
        shape.extend_from_slice(&layout.inner_shape);
        shape
    }
}

/// Calls `emit(offset, len)` for every contiguous piece of the hyperslab `start`/`count` of a
/// row-major array of `shape` with `elem`-byte values at `base`, in increasing offset order. Every
/// count is at least 1 and the hyperslab lies inside the array.
fn pieces<E>(
    base: u64,
    shape: &[u64],
    start: &[u64],
    count: &[u64],
    elem: u64,
    mut emit: impl FnMut(u64, u64) -> Result<(), E>,
) -> Result<(), E> {
    let Some(last) = shape.len().checked_sub(1) else {
        return emit(base, elem);
    };
    let mut strides = vec![elem; shape.len()];
    for d in (0..last).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let piece = count[last] * elem;
    let mut index = vec![0u64; last];
    loop {
        let offset = base
            + start[last] * elem
            + (0..last)
                .map(|d| (start[d] + index[d]) * strides[d])
                .sum::<u64>();
        emit(offset, piece)?;
        let mut d = last;
        loop {
            if d == 0 {
                return Ok(());
            }
            d -= 1;
            index[d] += 1;
            if index[d] < count[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

/// Collects pieces of a hyperslab, merging nearby ones into one read.
struct Gather<'a> {
    source: &'a dyn ByteRanges,
    out: Vec<u8>,
    /// The pending read: its byte range, its pieces, and the chunk label of its first piece.
    start: u64,
    end: u64,
    pieces: Vec<(u64, u64)>,
    label: Vec<u64>,
}

type GatherError = (Vec<u64>, String);

impl Gather<'_> {
    fn push(
        &mut self,
        offset: u64,
        len: u64,
        label: impl FnOnce() -> Vec<u64>,
    ) -> Result<(), GatherError> {
        let joins = !self.pieces.is_empty()
            && offset >= self.end
            && offset - self.end <= MAX_GAP_BYTES
            && offset + len - self.start <= MAX_READ_BYTES
            && self.pieces.len() < MAX_PIECES;
        if !joins {
            self.flush()?;
            self.start = offset;
            self.label = label();
        }
        self.end = offset + len;
        self.pieces.push((offset, len));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), GatherError> {
        if self.pieces.is_empty() {
            return Ok(());
        }
        let (start, end) = (self.start, self.end);
        let fail = |why: String| (self.label.clone(), format!("bytes {start}..{end}: {why}"));
        // Pieces lie inside the file, whose length was checked to fit in memory reads.
        let len = usize::try_from(end - start).map_err(|e| fail(e.to_string()))?;
        let bytes = self
            .source
            .read_at(start, len)
            .map_err(|e| fail(e.to_string()))?;
        if bytes.len() != len {
            return Err(fail(format!("short read of {} bytes", bytes.len())));
        }
        for (offset, piece) in self.pieces.drain(..) {
            let from = (offset - start) as usize;
            self.out
                .extend_from_slice(&bytes[from..from + piece as usize]);
        }
        Ok(())
    }
}

/// Big-endian bytes as typed values. `Char` arrives here only empty.
pub(super) fn raw_values(nc_type: NcType, b: &[u8]) -> RawValues {
    fn be<const N: usize, T>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    match nc_type {
        NcType::Byte => RawValues::I8(be(b, i8::from_be_bytes)),
        NcType::Char | NcType::UByte => RawValues::U8(b.to_vec()),
        NcType::Short => RawValues::I16(be(b, i16::from_be_bytes)),
        NcType::UShort => RawValues::U16(be(b, u16::from_be_bytes)),
        NcType::Int => RawValues::I32(be(b, i32::from_be_bytes)),
        NcType::UInt => RawValues::U32(be(b, u32::from_be_bytes)),
        NcType::Int64 => RawValues::I64(be(b, i64::from_be_bytes)),
        NcType::UInt64 => RawValues::U64(be(b, u64::from_be_bytes)),
        NcType::Float => RawValues::F32(be(b, f32::from_be_bytes)),
        NcType::Double => RawValues::F64(be(b, f64::from_be_bytes)),
    }
}

impl NetcdfData for NetcdfFile {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn data_model(&self) -> &'static str {
        self.format.name()
    }

    fn global_attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    fn netcdf_variables(&self) -> Result<Vec<NetcdfVariable>> {
        (0..self.variables.len())
            .map(|index| {
                let var = &self.variables[index];
                Ok(NetcdfVariable {
                    name: var.name.clone(),
                    dims: self.dimension_names(&var.name)?,
                    shape: self.shape_of(index),
                    nc_type: Some(var.nc_type),
                    chunks: None,
                    attributes: var.attributes.clone(),
                })
            })
            .collect()
    }

    fn read(&self, name: &str, start: &[u64], count: &[u64]) -> Result<RawValues> {
        NetcdfFile::read(self, name, start, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_a_2d_window() {
        // 4 x 5 array of 2-byte values at 100; window rows 1..3, cols 2..4.
        let mut got = Vec::new();
        pieces::<()>(100, &[4, 5], &[1, 2], &[2, 2], 2, |o, l| {
            got.push((o, l));
            Ok(())
        })
        .expect("no error");
        assert_eq!(got, vec![(100 + 14, 4), (100 + 24, 4)]);
    }

    #[test]
    fn pieces_of_a_scalar() {
        let mut got = Vec::new();
        pieces::<()>(8, &[], &[], &[], 4, |o, l| {
            got.push((o, l));
            Ok(())
        })
        .expect("no error");
        assert_eq!(got, vec![(8, 4)]);
    }
}
