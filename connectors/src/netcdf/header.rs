//! The classic header: magic, `numrecs`, dimensions, global attributes and variables, parsed from
//! the front of the file and fetched in growing pieces so that remote files need few requests.
//!
//! Errors are messages naming the byte offset and the bad value; the caller adds the file.

use serde_json::{Map, Number, Value};

use super::ByteRanges;

/// The first read of a header; grown by doubling when the header is longer.
const FIRST_READ: usize = 64 * 1024;

const NC_DIMENSION: u32 = 0x0A;
const NC_VARIABLE: u32 = 0x0B;
const NC_ATTRIBUTE: u32 = 0x0C;

/// Which variant of the classic format a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CDF-1 (`CDF\x01`, "classic"): 32-bit counts and offsets.
    Classic,
    /// CDF-2 (`CDF\x02`, "64-bit offset"): 32-bit counts, 64-bit offsets.
    Offset64,
    /// CDF-5 (`CDF\x05`, "64-bit data"): 64-bit counts and offsets, plus the unsigned and 64-bit
    /// integer types.
    Data64,
}

impl Format {
    /// The name netCDF4-python's `data_model` gives it (`NETCDF3_CLASSIC`,
    /// `NETCDF3_64BIT_OFFSET`, `NETCDF3_64BIT_DATA`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Classic => "NETCDF3_CLASSIC",
            Self::Offset64 => "NETCDF3_64BIT_OFFSET",
            Self::Data64 => "NETCDF3_64BIT_DATA",
        }
    }

    /// Bytes of a count (`NON_NEG`): lengths, numbers of elements, `vsize`.
    fn count_size(self) -> u64 {
        match self {
            Self::Data64 => 8,
            Self::Classic | Self::Offset64 => 4,
        }
    }

    /// Bytes of a data offset (`begin`).
    fn offset_size(self) -> u64 {
        match self {
            Self::Classic => 4,
            Self::Offset64 | Self::Data64 => 8,
        }
    }
}

/// The external type of a variable or attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcType {
    /// `NC_BYTE`: int8.
    Byte,
    /// `NC_CHAR`: text, one byte per character.
    Char,
    /// `NC_SHORT`: int16.
    Short,
    /// `NC_INT`: int32.
    Int,
    /// `NC_FLOAT`: float32.
    Float,
    /// `NC_DOUBLE`: float64.
    Double,
    /// `NC_UBYTE`: uint8 (CDF-5 only).
    UByte,
    /// `NC_USHORT`: uint16 (CDF-5 only).
    UShort,
    /// `NC_UINT`: uint32 (CDF-5 only).
    UInt,
    /// `NC_INT64`: int64 (CDF-5 only).
    Int64,
    /// `NC_UINT64`: uint64 (CDF-5 only).
    UInt64,
}

impl NcType {
    fn from_code(code: u32, format: Format) -> Option<Self> {
        let t = match code {
            1 => Self::Byte,
            2 => Self::Char,
            3 => Self::Short,
            4 => Self::Int,
            5 => Self::Float,
            6 => Self::Double,
            7 => Self::UByte,
            8 => Self::UShort,
            9 => Self::UInt,
            10 => Self::Int64,
            11 => Self::UInt64,
            _ => return None,
        };
        (code <= 6 || format == Format::Data64).then_some(t)
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Self::Byte | Self::Char | Self::UByte => 1,
            Self::Short | Self::UShort => 2,
            Self::Int | Self::UInt | Self::Float => 4,
            Self::Double | Self::Int64 | Self::UInt64 => 8,
        }
    }

    /// The data type as numpy names it (`int8`, `S1`, `int16`, `int32`, `float32`, `float64`,
    /// `uint8`, `uint16`, `uint32`, `int64`, `uint64`).
    pub fn dtype(self) -> &'static str {
        match self {
            Self::Byte => "int8",
            Self::Char => "S1",
            Self::Short => "int16",
            Self::Int => "int32",
            Self::Float => "float32",
            Self::Double => "float64",
            Self::UByte => "uint8",
            Self::UShort => "uint16",
            Self::UInt => "uint32",
            Self::Int64 => "int64",
            Self::UInt64 => "uint64",
        }
    }

    /// The CDL name (`byte`, `char`, `short`, `int`, `float`, `double`, `ubyte`, `ushort`, `uint`,
    /// `int64`, `uint64`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Byte => "byte",
            Self::Char => "char",
            Self::Short => "short",
            Self::Int => "int",
            Self::Float => "float",
            Self::Double => "double",
            Self::UByte => "ubyte",
            Self::UShort => "ushort",
            Self::UInt => "uint",
            Self::Int64 => "int64",
            Self::UInt64 => "uint64",
        }
    }
}

/// A dimension of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    /// Its name (invalid UTF-8 replaced).
    pub name: String,
    /// Its length; for the unlimited dimension, the number of records.
    pub len: u64,
    /// True for the unlimited (record) dimension.
    pub unlimited: bool,
}

/// A variable as its header entry describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// Its name (invalid UTF-8 replaced).
    pub name: String,
    /// Indices into [`super::NetcdfFile::dimensions`], outermost first.
    pub dim_ids: Vec<usize>,
    /// Its attributes: text as JSON strings, numbers as JSON numbers (one value) or arrays; a
    /// floating-point NaN or infinity as `"NaN"`, `"Infinity"`, `"-Infinity"`.
    pub attributes: Map<String, Value>,
    /// The external type of its values.
    pub nc_type: NcType,
    /// The `vsize` field as stored (for information; layouts are computed from the shape, since
    /// writers store 2^32 - 1 for variables larger than 4 GiB).
    pub vsize: u64,
    /// Byte offset of its data (of its first record, for a record variable).
    pub begin: u64,
}

/// A parsed header.
#[derive(Debug)]
pub(super) struct Header {
    pub format: Format,
    /// `None` for the streaming value (all bits set): compute from the file size.
    pub numrecs: Option<u64>,
    /// Dimensions, with length 0 for the unlimited one (filled in by the caller).
    pub dimensions: Vec<(String, u64)>,
    pub attributes: Map<String, Value>,
    pub variables: Vec<Variable>,
}

/// Parses the header of a file `file_len` bytes long.
pub(super) fn parse(source: &dyn ByteRanges, file_len: u64) -> Result<Header, String> {
    let mut r = Reader {
        source,
        file_len,
        buf: Vec::new(),
        pos: 0,
    };
    let magic = r.take(4).map_err(|e| format!("magic number: {e}"))?;
    let format = match magic {
        b"CDF\x01" => Format::Classic,
        b"CDF\x02" => Format::Offset64,
        b"CDF\x05" => Format::Data64,
        [0x89, b'H', b'D', b'F'] => {
            return Err(
                "byte 0: magic number is \\x89HDF: a NetCDF-4 (HDF5) file; only the \
                        classic formats are read here (have: CDF\\x01, CDF\\x02, CDF\\x05)"
                    .to_owned(),
            );
        }
        other => {
            return Err(format!(
                "byte 0: magic number is {:?}, not a NetCDF classic file (have: CDF\\x01, \
                 CDF\\x02, CDF\\x05)",
                String::from_utf8_lossy(other)
            ));
        }
    };
    let numrecs = r.count(format).map_err(|e| format!("numrecs: {e}"))?;
    let streaming = match format {
        Format::Data64 => u64::MAX,
        Format::Classic | Format::Offset64 => u64::from(u32::MAX),
    };
    let numrecs = (numrecs != streaming).then_some(numrecs);

    let n_dims = r.list_start(format, NC_DIMENSION, "dimension", 2 * format.count_size())?;
    let mut dimensions = Vec::new();
    for i in 0..n_dims {
        let at = r.pos;
        let dim = r
            .name(format)
            .and_then(|name| Ok((name, r.count(format)?)))
            .map_err(|e| format!("dimension {i} (byte {at}): {e}"))?;
        dimensions.push(dim);
    }
    if let Some((a, b)) = unlimited_pair(&dimensions) {
        return Err(format!(
            "dimensions {a:?} and {b:?} are both unlimited (length 0); a classic file has at \
             most one"
        ));
    }

    let attributes = r
        .attributes(format)
        .map_err(|e| format!("global attributes: {e}"))?;

    // Smallest variable entry: name, ndims, empty attribute list, type, vsize, begin.
    let smallest_var = 4 * format.count_size() + 8 + format.offset_size();
    let n_vars = r.list_start(format, NC_VARIABLE, "variable", smallest_var)?;
    let mut variables = Vec::new();
    for i in 0..n_vars {
        let at = r.pos;
        let var = r
            .variable(format, dimensions.len())
            .map_err(|e| format!("variable {i} (byte {at}): {e}"))?;
        variables.push(var);
    }
    Ok(Header {
        format,
        numrecs,
        dimensions,
        attributes,
        variables,
    })
}

fn unlimited_pair(dimensions: &[(String, u64)]) -> Option<(&str, &str)> {
    let mut unlimited = dimensions.iter().filter(|(_, len)| *len == 0);
    let first = unlimited.next()?;
    let second = unlimited.next()?;
    Some((&first.0, &second.0))
}

/// A cursor over the front of the file that fetches more bytes as the parse needs them.
struct Reader<'a> {
    source: &'a dyn ByteRanges,
    file_len: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Reader<'_> {
    /// Bytes left in the file after the cursor.
    fn remaining(&self) -> u64 {
        self.file_len.saturating_sub(self.pos as u64)
    }

    /// The next `n` bytes.
    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "needs {n} bytes at byte {} but the file ends at byte {} (truncated?)",
                self.pos, self.file_len
            ));
        }
        // n <= file_len - pos, and the buffer never exceeds file_len, so this fits.
        let end = self.pos + n as usize;
        if end > self.buf.len() {
            let wanted = end
                .max(self.buf.len().saturating_mul(2))
                .max(FIRST_READ)
                .min(usize::try_from(self.file_len).unwrap_or(usize::MAX));
            let from = self.buf.len();
            let more = self
                .source
                .read_at(from as u64, wanted - from)
                .map_err(|e| format!("reading header bytes {from}..{wanted}: {e}"))?;
            if more.len() != wanted - from {
                return Err(format!(
                    "reading header bytes {from}..{wanted}: got {} bytes",
                    more.len()
                ));
            }
            self.buf.extend_from_slice(&more);
        }
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// A `NON_NEG` count: 4 bytes, or 8 in CDF-5.
    fn count(&mut self, format: Format) -> Result<u64, String> {
        match format {
            Format::Data64 => self.u64(),
            Format::Classic | Format::Offset64 => self.u32().map(u64::from),
        }
    }

    /// An `OFFSET`: 4 bytes in CDF-1, 8 otherwise.
    fn offset(&mut self, format: Format) -> Result<u64, String> {
        match format {
            Format::Classic => self.u32().map(u64::from),
            Format::Offset64 | Format::Data64 => self.u64(),
        }
    }

    /// Skips the padding after `n` bytes of names or values, up to a multiple of 4.
    fn pad(&mut self, n: u64) -> Result<(), String> {
        self.take((4 - n % 4) % 4).map(|_| ())
    }

    /// A checked element count: each element takes at least `smallest` bytes of the file.
    fn bounded(&self, n: u64, smallest: u64, what: &str) -> Result<u64, String> {
        if n > self.remaining() / smallest.max(1) {
            return Err(format!(
                "{what} count {n} at byte {} is more than the remaining {} bytes of the file can \
                 hold (truncated, or a corrupt count?)",
                self.pos,
                self.remaining()
            ));
        }
        Ok(n)
    }

    /// The start of a list: `ABSENT` (two zeros) or `tag nelems`. Returns the element count.
    fn list_start(
        &mut self,
        format: Format,
        tag: u32,
        what: &str,
        smallest: u64,
    ) -> Result<u64, String> {
        let at = self.pos;
        let found = self.u32().map_err(|e| format!("{what} list: {e}"))?;
        let n = self
            .count(format)
            .map_err(|e| format!("{what} list: {e}"))?;
        match found {
            0 if n == 0 => Ok(0),
            0 => Err(format!(
                "byte {at}: {what} list is ABSENT (tag 0) but claims {n} elements"
            )),
            t if t == tag => self.bounded(n, smallest, what),
            other => Err(format!(
                "byte {at}: expected the {what} list tag {tag:#04x} or ABSENT, found {other:#010x}"
            )),
        }
    }

    /// A name: length, bytes, padding. Invalid UTF-8 is replaced.
    fn name(&mut self, format: Format) -> Result<String, String> {
        let n = self.count(format)?;
        let n = self.bounded(n, 1, "name length")?;
        let name = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.pad(n)?;
        Ok(name)
    }

    fn attributes(&mut self, format: Format) -> Result<Map<String, Value>, String> {
        // Smallest attribute: name length, type, nelems.
        let smallest = 2 * format.count_size() + 4;
        let n = self.list_start(format, NC_ATTRIBUTE, "attribute", smallest)?;
        let mut attributes = Map::new();
        for i in 0..n {
            let at = self.pos;
            let (name, value) = self
                .attribute(format)
                .map_err(|e| format!("attribute {i} (byte {at}): {e}"))?;
            attributes.insert(name, value);
        }
        Ok(attributes)
    }

    fn attribute(&mut self, format: Format) -> Result<(String, Value), String> {
        let name = self.name(format)?;
        let code = self.u32()?;
        let nc_type = NcType::from_code(code, format)
            .ok_or_else(|| format!("{name:?}: type code {code} is not a {} type", format.name()))?;
        let n = self.count(format)?;
        let n = self
            .bounded(n, nc_type.size() as u64, "value")
            .map_err(|e| format!("{name:?}: {e}"))?;
        let bytes_len = n * nc_type.size() as u64;
        let bytes = self.take(bytes_len).map_err(|e| format!("{name:?}: {e}"))?;
        let value = attribute_value(nc_type, bytes);
        self.pad(bytes_len).map_err(|e| format!("{name:?}: {e}"))?;
        Ok((name, value))
    }

    fn variable(&mut self, format: Format, n_dims: usize) -> Result<Variable, String> {
        let name = self.name(format)?;
        let rank = self.count(format)?;
        let rank = self
            .bounded(rank, format.count_size(), "dimension id")
            .map_err(|e| format!("{name:?}: {e}"))?;
        let mut dim_ids = Vec::new();
        for _ in 0..rank {
            let id = self.count(format).map_err(|e| format!("{name:?}: {e}"))?;
            match usize::try_from(id) {
                Ok(id) if id < n_dims => dim_ids.push(id),
                _ => {
                    return Err(format!(
                        "{name:?}: dimension id {id} does not exist (the file has {n_dims} \
                         dimensions)"
                    ));
                }
            }
        }
        let attributes = self
            .attributes(format)
            .map_err(|e| format!("{name:?}: {e}"))?;
        let code = self.u32().map_err(|e| format!("{name:?}: {e}"))?;
        let nc_type = NcType::from_code(code, format)
            .ok_or_else(|| format!("{name:?}: type code {code} is not a {} type", format.name()))?;
        let vsize = self.count(format).map_err(|e| format!("{name:?}: {e}"))?;
        let begin = self.offset(format).map_err(|e| format!("{name:?}: {e}"))?;
        Ok(Variable {
            name,
            dim_ids,
            attributes,
            nc_type,
            vsize,
            begin,
        })
    }
}

/// An attribute's values as JSON: text as a string (trailing NULs dropped), one number as a
/// number, several as an array.
fn attribute_value(nc_type: NcType, bytes: &[u8]) -> Value {
    if nc_type == NcType::Char {
        return Value::String(
            String::from_utf8_lossy(bytes)
                .trim_end_matches('\0')
                .to_owned(),
        );
    }
    let mut values: Vec<Value> = bytes
        .chunks_exact(nc_type.size())
        .map(|c| number(nc_type, c))
        .collect();
    if values.len() == 1 {
        values.swap_remove(0)
    } else {
        Value::Array(values)
    }
}

/// One big-endian value as JSON. `c` holds exactly `nc_type.size()` bytes.
fn number(nc_type: NcType, c: &[u8]) -> Value {
    let b2 = || [c[0], c[1]];
    let b4 = || [c[0], c[1], c[2], c[3]];
    let b8 = || [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
    match nc_type {
        NcType::Byte => Value::from(i8::from_be_bytes([c[0]])),
        NcType::Char | NcType::UByte => Value::from(c[0]),
        NcType::Short => Value::from(i16::from_be_bytes(b2())),
        NcType::UShort => Value::from(u16::from_be_bytes(b2())),
        NcType::Int => Value::from(i32::from_be_bytes(b4())),
        NcType::UInt => Value::from(u32::from_be_bytes(b4())),
        NcType::Int64 => Value::from(i64::from_be_bytes(b8())),
        NcType::UInt64 => Value::from(u64::from_be_bytes(b8())),
        NcType::Float => float_value(f64::from(f32::from_be_bytes(b4()))),
        NcType::Double => float_value(f64::from_be_bytes(b8())),
    }
}

/// A float as a JSON number, or as the strings CF decoding understands for NaN and infinities.
pub(super) fn float_value(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String("NaN".to_owned()),
        None if v > 0.0 => Value::String("Infinity".to_owned()),
        None => Value::String("-Infinity".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be32(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }

    #[test]
    fn attributes_become_json() {
        assert_eq!(
            attribute_value(NcType::Char, b"K\0\0"),
            Value::String("K".into())
        );
        assert_eq!(
            attribute_value(NcType::Short, &[0xFF, 0xFE]),
            Value::from(-2)
        );
        let two = [1.5f32.to_be_bytes(), f32::NAN.to_be_bytes()].concat();
        assert_eq!(
            attribute_value(NcType::Float, &two),
            serde_json::json!([1.5, "NaN"])
        );
    }

    #[test]
    fn minimal_header_parses() {
        let mut file = b"CDF\x01".to_vec();
        file.extend(be32(0)); // numrecs
        file.extend([0; 8]); // no dimensions
        file.extend([0; 8]); // no attributes
        file.extend([0; 8]); // no variables
        let header = parse(&file, file.len() as u64).expect("valid header");
        assert_eq!(header.format, Format::Classic);
        assert_eq!(header.numrecs, Some(0));
        assert!(header.variables.is_empty());
    }

    #[test]
    fn absurd_counts_are_refused_before_allocating() {
        let mut file = b"CDF\x05".to_vec();
        file.extend(0u64.to_be_bytes());
        file.extend(be32(NC_DIMENSION));
        file.extend((1u64 << 40).to_be_bytes());
        let err = parse(&file, file.len() as u64).unwrap_err();
        assert!(err.contains("dimension count 1099511627776"), "{err}");
    }
}
