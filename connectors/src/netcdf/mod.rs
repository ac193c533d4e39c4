//! NetCDF-3 "classic" files (CDF-1, CDF-2 and CDF-5) read in pure Rust, without libnetcdf.
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
mod source;

use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub use file::NetcdfFile;
pub use source::NetcdfSource;

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
