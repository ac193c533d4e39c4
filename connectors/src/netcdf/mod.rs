//! NetCDF files read in pure Rust, without libnetcdf: NetCDF-3 "classic" files (CDF-1, CDF-2 and
//! CDF-5) by this module, NetCDF-4 (HDF5) files through `netcdf-reader` with the `netcdf4`
//! feature (on by default). Both offer [`NetcdfData`], and [`NetcdfSource`] reads either.
//!
//! The format is a header (dimensions, attributes, variables with their byte offsets) followed by
//! big-endian data: first every fixed-size variable contiguously, then the records, each holding
//! one slab of every record variable (those whose first dimension is the unlimited one).
//! [`NetcdfFile`] parses the header and reads hyperslabs of any variable through [`ByteRanges`],
//! so the same code serves local files ([`LocalFile`]) and, later, HTTP or object-store range
//! readers. [`NetcdfSource`] is the [`crate::Source`] over a file that follows the CF conventions
//! (`time`, `lat`/`latitude`, `lon`/`longitude`), with values decoded as `xarray.open_dataset`
//! shows them.
//!
//! Every count and offset in a header is checked against the length of the file before anything is
//! allocated, so a malformed or truncated file is an error naming the file and the bad value,
//! never a panic or an absurd allocation.

mod file;
mod header;
#[cfg(feature = "netcdf4")]
mod netcdf4;
mod source;

use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use file::NetcdfFile;
pub use header::NcType;
#[cfg(feature = "netcdf4")]
pub use netcdf4::Netcdf4File;
pub use source::NetcdfSource;

use serde_json::{Map, Value};

use crate::cf::RawValues;
use crate::{ConnectorError, Result};

/// The error for a variable `name` that the file at `uri` lacks, listing the ones it has, sorted.
fn unknown_variable<'a>(
    uri: &str,
    name: &str,
    have: impl Iterator<Item = &'a str>,
) -> ConnectorError {
    let mut available: Vec<String> = have.map(str::to_owned).collect();
    available.sort();
    ConnectorError::UnknownVariable {
        name: name.to_owned(),
        uri: uri.to_owned(),
        available,
    }
}

/// Refuses a hyperslab `start + count` that does not fit `shape`, naming it.
fn check_hyperslab(
    uri: &str,
    name: &str,
    shape: &[u64],
    start: &[u64],
    count: &[u64],
) -> Result<()> {
    let fits = start.len() == shape.len()
        && count.len() == shape.len()
        && (0..shape.len()).all(|d| {
            start[d]
                .checked_add(count[d])
                .is_some_and(|end| end <= shape[d])
        });
    if fits {
        return Ok(());
    }
    Err(ConnectorError::Chunk {
        uri: uri.to_owned(),
        array: name.to_owned(),
        chunk: start.to_vec(),
        message: format!("start {start:?} + count {count:?} does not fit the shape {shape:?}"),
    })
}

/// The first bytes of an HDF5 file (its superblock signature), which every NetCDF-4 file starts
/// with.
const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// A variable of a NetCDF file, in the terms NetCDF-3 and NetCDF-4 share.
#[derive(Debug, Clone, PartialEq)]
pub struct NetcdfVariable {
    /// Its name.
    pub name: String,
    /// Its dimension names, outermost first.
    pub dims: Vec<String>,
    /// Its shape (a record variable's first length is the number of records).
    pub shape: Vec<u64>,
    /// The type of its values; `None` for types that are not numbers or text (NetCDF-4 strings,
    /// compound, enum, opaque and variable-length types), which are described but never read.
    pub nc_type: Option<NcType>,
    /// The shape of its storage chunks (NetCDF-4 chunked variables); `None` when it is stored
    /// whole (NetCDF-3, contiguous or compact NetCDF-4).
    pub chunks: Option<Vec<u64>>,
    /// Its attributes: text as JSON strings, numbers as JSON numbers (one value) or arrays; a
    /// floating-point NaN or infinity as `"NaN"`, `"Infinity"`, `"-Infinity"`.
    pub attributes: Map<String, Value>,
}

/// What [`NetcdfSource`] reads of a NetCDF file, whichever format holds it.
pub trait NetcdfData: Send + Sync + std::fmt::Debug {
    /// The path or URI the file was opened as.
    fn uri(&self) -> &str;

    /// The name netCDF4-python's `data_model` gives the format (`NETCDF3_CLASSIC`, `NETCDF4`, …).
    fn data_model(&self) -> &'static str;

    /// The global attributes.
    fn global_attributes(&self) -> &Map<String, Value>;

    /// Every variable of the root group, in the file's order.
    fn netcdf_variables(&self) -> Result<Vec<NetcdfVariable>>;

    /// The hyperslab `start[d]..start[d] + count[d]` of every dimension `d` of a numeric
    /// variable, as stored (row-major, native byte order).
    fn read(&self, name: &str, start: &[u64], count: &[u64]) -> Result<RawValues>;

    /// Refuses a variable whose storage cannot be decoded at all (an HDF5 filter that is not
    /// built in), as far as its first chunk tells; other faults are met by the reads.
    fn check_decodable(&self, _name: &str) -> Result<()> {
        Ok(())
    }
}

/// Random access to the bytes of a file: a local file, an in-memory buffer, or (later) an HTTP or
/// object-store object read with range requests.
pub trait ByteRanges: Send + Sync {
    /// The length of the file in bytes.
    fn len(&self) -> io::Result<u64>;

    /// True when the file holds no byte.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Exactly `len` bytes from `offset`; a range past the end is an error.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>>;
}

/// A file on a local disk, read with positioned reads (`pread`), shareable between threads.
#[derive(Debug)]
pub struct LocalFile {
    file: std::fs::File,
}

impl LocalFile {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(Self {
            file: std::fs::File::open(path)?,
        })
    }
}

impl ByteRanges for LocalFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

/// An in-memory file (tests, or a file already downloaded whole).
impl ByteRanges for Vec<u8> {
    fn len(&self) -> io::Result<u64> {
        Ok(self.as_slice().len() as u64)
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(len)?))
            .and_then(|range| self.get(range))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "bytes {offset}..{} are past the end of the {}-byte buffer",
                        offset.saturating_add(len as u64),
                        self.as_slice().len()
                    ),
                )
            })
    }
}
