//! Reading index windows of a Zarr array as CF-decoded f32 in Arrow buffers: through the source's
//! decoded-chunk cache when the array's blocks span several time steps, straight from zarrs
//! otherwise.
//!
//! zarrs decodes every byte (chunk, or inner chunk of a shard); this module decides how often. A
//! block kept in the cache was decoded and CF-decoded once; a window inside it that is a
//! contiguous range of the block (a step of a block whose latitude/longitude extent is the
//! tile's) is a slice of the block's buffer, without a copy; any other window is copied out of the
//! blocks it touches.

use std::ops::Range;

use arrow::buffer::{Buffer, ScalarBuffer};
use zarrs::array::{
    Array, ArrayBytes, ArrayError, ArrayShardedExt, ArrayShardedReadableExt,
    ArrayShardedReadableExtCache, ArraySubset, ChunkGrid, CodecOptions, DataType, data_type,
};

use crate::cf::{CfDecoding, RawValues};
use crate::chunk_cache::{BlockKey, ChunkCache};
use crate::store::explain;
use crate::zarr_read::{Storage, ZarrArray};
use crate::{ConnectorError, Result};

/// The numeric types tiles are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numeric {
    F32,
    F64,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
}

impl Numeric {
    pub(crate) fn of(dt: &DataType) -> Option<Self> {
        [
            (data_type::float32(), Self::F32),
            (data_type::float64(), Self::F64),
            (data_type::int8(), Self::I8),
            (data_type::uint8(), Self::U8),
            (data_type::int16(), Self::I16),
            (data_type::uint16(), Self::U16),
            (data_type::int32(), Self::I32),
            (data_type::uint32(), Self::U32),
            (data_type::int64(), Self::I64),
            (data_type::uint64(), Self::U64),
        ]
        .into_iter()
        .find_map(|(t, n)| (*dt == t).then_some(n))
    }
}

/// Shard indexes of a sharded array, each read once and kept (at most about 16 MiB of them: past
/// that the set is dropped and read again as needed).
pub(crate) struct ShardIndexes {
    cache: ArrayShardedReadableExtCache,
    max_shards: usize,
    /// The inner chunks over the whole array.
    grid: ChunkGrid,
}

impl ShardIndexes {
    /// `None` for an array without sharding.
    pub(crate) fn new(array: &Array<Storage>) -> Option<Self> {
        if !array.is_sharded() {
            return None;
        }
        let shard = array.chunk_shape(&vec![0; array.dimensionality()]).ok()?;
        let inner = array.effective_subchunk_shape()?;
        let per_shard = shard.iter().zip(inner.iter()).fold(1u64, |n, (s, i)| {
            n.saturating_mul(s.get().div_ceil(i.get()))
        });
        // An index holds an offset and a length (2 × u64) per inner chunk.
        let index_bytes = per_shard.saturating_mul(16).max(1);
        Some(Self {
            cache: ArrayShardedReadableExtCache::new(array),
            max_shards: ((16u64 << 20) / index_bytes).max(1) as usize,
            grid: array.subchunk_grid(),
        })
    }

    fn get(&self) -> &ArrayShardedReadableExtCache {
        if self.cache.len() > self.max_shards {
            self.cache.clear();
        }
        &self.cache
    }
}

/// The blocks of an array that tiles are cut from when those span several steps (time first,
/// more than one step per block): chunks, or the inner chunks of shards.
pub(crate) fn cached_blocks(array: &Array<Storage>, dims: &[String]) -> Option<ChunkGrid> {
    if dims.first().map(String::as_str) != Some("time") || array.dimensionality() < 2 {
        return None;
    }
    let grid = if array.is_sharded() {
        array.subchunk_grid()
    } else {
        array.chunk_grid().clone()
    };
    let steps = grid.chunk_shape(&vec![0; array.dimensionality()]).ok()??[0].get();
    (steps >= 2).then_some(grid)
}

/// What is worth keeping of an array's decoded blocks (f32) while its tiles are read step after
/// step: two layers of blocks (a layer is every block of one time block across the grid): the
/// layer being read, and the one before it or the next one's blocks decoded while the last steps
/// of this one are read. Keeping more only puts each chunk of a long read in fresh memory: with
/// no limit the benchmark's blosc read faulted in 2.5 times the pages and ran about 15% slower.
pub(crate) fn keep_bytes(grid: &ChunkGrid) -> u64 {
    let Ok(Some(block)) = grid.chunk_shape(&vec![0; grid.dimensionality()]) else {
        return 0;
    };
    block
        .iter()
        .map(|n| n.get())
        .chain(grid.grid_shape().iter().skip(1).copied())
        .fold(2 * 4u64, u64::saturating_mul)
}

/// Who is reading: for errors.
#[derive(Clone, Copy)]
pub(crate) struct Reading<'a> {
    pub uri: &'a str,
    pub name: &'a str,
}

impl Reading<'_> {
    fn chunk_error(&self, chunk: Vec<u64>, message: String) -> ConnectorError {
        ConnectorError::Chunk {
            uri: self.uri.to_owned(),
            array: self.name.to_owned(),
            chunk,
            message,
        }
    }

    fn not_numeric(&self, dt: &DataType) -> ConnectorError {
        ConnectorError::Metadata {
            uri: self.uri.to_owned(),
            array: self.name.to_owned(),
            message: format!(
                "data type {dt} is not numeric (have: float32, float64, int8-64, uint8-64)"
            ),
        }
    }
}

/// Reads the window `ranges` (checked against the shape by the caller) of `z`, CF-decoded.
pub(crate) fn read_window(
    at: Reading<'_>,
    z: &ZarrArray,
    cache: &ChunkCache,
    ranges: &[Range<u64>],
) -> Result<ScalarBuffer<f32>> {
    let kind = z.kind.ok_or_else(|| at.not_numeric(z.array.data_type()))?;
    let expected = window_len(ranges);
    if expected == 0 {
        return Ok(ScalarBuffer::from(Vec::new()));
    }
    if let Some(grid) = &z.blocks
        && let Some(values) = read_cached(at, z, kind, grid, cache, ranges, expected)?
    {
        return Ok(values);
    }
    if let Some(shards) = &z.shards
        && let Some([(index, start, shape)]) = blocks_of(&shards.grid, ranges).as_deref()
    {
        // One inner chunk (a tile of a sharded array): decoded whole into its own buffer, which
        // the tile keeps, or cut.
        let values = decode_block(at, z, kind, index, shape)?;
        return Ok(cut(values, start, shape, ranges, expected));
    }
    let bytes = retrieve_window(z, ranges)
        .map_err(|e| at.chunk_error(chunk_of(&z.array, ranges), explain(e.to_string())))?;
    let values = f32_buffer(kind, bytes, &z.cf);
    if values.len() != expected {
        return Err(at.chunk_error(
            chunk_of(&z.array, ranges),
            format!("decoded {} values, expected {expected}", values.len()),
        ));
    }
    Ok(values)
}

/// Reads the window `ranges` of `z` as stored (coordinates are decoded to f64 from these).
pub(crate) fn read_raw(at: Reading<'_>, z: &ZarrArray, ranges: &[Range<u64>]) -> Result<RawValues> {
    let kind = z.kind.ok_or_else(|| at.not_numeric(z.array.data_type()))?;
    let bytes = retrieve_window(z, ranges)
        .map_err(|e| at.chunk_error(chunk_of(&z.array, ranges), explain(e.to_string())))?;
    Ok(raw_values(kind, &bytes))
}

fn window_len(ranges: &[Range<u64>]) -> usize {
    ranges
        .iter()
        .map(|r| r.end.saturating_sub(r.start))
        .fold(1u64, u64::saturating_mul) as usize
}

/// The window's decoded bytes straight from zarrs (shard indexes from the array's set).
fn retrieve_window(z: &ZarrArray, ranges: &[Range<u64>]) -> Result<Vec<u8>, ArrayError> {
    let subset = ranges.to_vec();
    let bytes: ArrayBytes<'static> = match &z.shards {
        Some(shards) => z.array.retrieve_array_subset_sharded_opt(
            shards.get(),
            &subset,
            &CodecOptions::default(),
        )?,
        None => z.array.retrieve_array_subset(&subset)?,
    };
    Ok(bytes.into_fixed()?.into_owned())
}

/// The blocks of `grid` the window `ranges` touches: (grid indices, origin, shape) each; `None`
/// when the grid cannot say.
#[allow(clippy::type_complexity)]
fn blocks_of(
    grid: &ChunkGrid,
    ranges: &[Range<u64>],
) -> Option<Vec<(Vec<u64>, Vec<u64>, Vec<u64>)>> {
    let window = ArraySubset::new_with_ranges(ranges);
    let touched = grid.chunks_in_array_subset(&window).ok()??;
    grid_indices(&touched.to_ranges())
        .into_iter()
        .map(|index| {
            let block = grid.subset(&index).ok()??;
            let (start, shape) = (block.start().to_vec(), block.shape().to_vec());
            Some((index, start, shape))
        })
        .collect()
}

/// The window `ranges` of one decoded block (origin `start`, row-major `shape`): a slice of the
/// block's buffer when it is one contiguous run of it, else a copy.
fn cut(
    values: ScalarBuffer<f32>,
    start: &[u64],
    shape: &[u64],
    ranges: &[Range<u64>],
    expected: usize,
) -> ScalarBuffer<f32> {
    let local: Vec<Range<u64>> = ranges
        .iter()
        .zip(start)
        .map(|(r, s)| r.start - s..r.end - s)
        .collect();
    if let Some((offset, len)) = contiguous_run(&local, shape) {
        return if (offset, len) == (0, values.len()) {
            values
        } else {
            values.slice(offset, len)
        };
    }
    let window_shape: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
    let from: Vec<u64> = local.iter().map(|r| r.start).collect();
    let mut out = vec![0f32; expected];
    copy_box(
        (&values, shape, &from),
        (&mut out, &window_shape, &vec![0; ranges.len()]),
        &window_shape,
    );
    ScalarBuffer::from(out)
}

/// The window cut from blocks held in (or decoded into) the cache; `None` when the cache does not
/// admit a block it touches, so that it is read around the cache.
fn read_cached(
    at: Reading<'_>,
    z: &ZarrArray,
    kind: Numeric,
    grid: &ChunkGrid,
    cache: &ChunkCache,
    ranges: &[Range<u64>],
    expected: usize,
) -> Result<Option<ScalarBuffer<f32>>> {
    let Some(blocks) = blocks_of(grid, ranges) else {
        return Ok(None);
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (index, start, shape) in blocks {
        let key = BlockKey { array: z.id, index };
        let bytes = shape.iter().fold(4u64, |a, n| a.saturating_mul(*n));
        match cache.get_or_decode(&key, bytes, || {
            decode_block(at, z, kind, &key.index, &shape)
        })? {
            Some(values) => parts.push((values, start, shape)),
            None => return Ok(None),
        }
    }
    if let [(values, start, shape)] = parts.as_slice() {
        return Ok(Some(cut(values.clone(), start, shape, ranges, expected)));
    }
    let window_shape: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
    let mut out = vec![0f32; expected];
    for (values, start, shape) in &parts {
        let mut from = Vec::with_capacity(ranges.len());
        let mut to = Vec::with_capacity(ranges.len());
        let mut extent = Vec::with_capacity(ranges.len());
        for ((r, s), n) in ranges.iter().zip(start).zip(shape) {
            let lo = r.start.max(*s);
            let hi = r.end.min(s + n);
            if lo >= hi {
                break;
            }
            from.push(lo - s);
            to.push(lo - r.start);
            extent.push(hi - lo);
        }
        if extent.len() == ranges.len() {
            copy_box(
                (values, shape, &from),
                (&mut out, &window_shape, &to),
                &extent,
            );
        }
    }
    Ok(Some(ScalarBuffer::from(out)))
}

/// Decodes the block `index` (of shape `shape`: a chunk, or an inner chunk of a shard) whole,
/// CF decoding included.
fn decode_block(
    at: Reading<'_>,
    z: &ZarrArray,
    kind: Numeric,
    index: &[u64],
    shape: &[u64],
) -> Result<ScalarBuffer<f32>> {
    let block_error = |message: String| match &z.shards {
        // Name the stored object (the shard) and the inner chunk within it.
        Some(shards) => {
            let shard = shards
                .grid
                .chunk_origin(index)
                .ok()
                .flatten()
                .and_then(|origin| z.array.chunk_grid().chunk_indices(&origin).ok().flatten())
                .unwrap_or_else(|| index.to_vec());
            at.chunk_error(shard, format!("inner chunk {index:?}: {message}"))
        }
        None => at.chunk_error(index.to_vec(), message),
    };
    let retrieved: Result<ArrayBytes<'static>, ArrayError> = match &z.shards {
        Some(shards) => {
            z.array
                .retrieve_subchunk_opt(shards.get(), index, &CodecOptions::default())
        }
        None => z.array.retrieve_chunk(index),
    };
    let bytes = retrieved
        .and_then(|b| Ok(b.into_fixed()?.into_owned()))
        .map_err(|e| block_error(explain(e.to_string())))?;
    let values = f32_buffer(kind, bytes, &z.cf);
    let expected = window_len(&shape.iter().map(|n| 0..*n).collect::<Vec<_>>());
    if values.len() != expected {
        return Err(block_error(format!(
            "decoded {} values, expected {expected} (block shape {shape:?})",
            values.len()
        )));
    }
    Ok(values)
}

/// Every index of the grid `ranges`, row-major.
fn grid_indices(ranges: &[Range<u64>]) -> Vec<Vec<u64>> {
    let mut all = Vec::new();
    if ranges.iter().any(|r| r.start >= r.end) {
        return all;
    }
    let mut index: Vec<u64> = ranges.iter().map(|r| r.start).collect();
    loop {
        all.push(index.clone());
        let mut d = ranges.len();
        loop {
            if d == 0 {
                return all;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < ranges[d].end {
                break;
            }
            index[d] = ranges[d].start;
        }
    }
}

/// Where `local` (a window of a row-major block of `shape`) lies when it is one contiguous run of
/// the block: (offset, length) in values. It is when, after its leading dimensions of extent 1
/// and one more, every dimension is whole.
fn contiguous_run(local: &[Range<u64>], shape: &[u64]) -> Option<(usize, usize)> {
    let n = local.len();
    let mut d = n;
    while d > 0 && local[d - 1].start == 0 && local[d - 1].end == shape[d - 1] {
        d -= 1;
    }
    // Dimensions d.. are whole; d - 1 may be any range; those before must be single.
    if d >= 2 && local[..d - 1].iter().any(|r| r.end - r.start != 1) {
        return None;
    }
    let mut offset = 0u64;
    for (r, s) in local.iter().zip(shape) {
        offset = offset * s + r.start;
    }
    let len = window_len(local);
    Some((offset as usize, len))
}

/// Copies the box of `extent` at `from` in `src` (row-major, `src_shape`) to `to` in `dst`
/// (row-major, `dst_shape`), one run of the innermost dimension at a time.
fn copy_box(
    (src, src_shape, from): (&[f32], &[u64], &[u64]),
    (dst, dst_shape, to): (&mut [f32], &[u64], &[u64]),
    extent: &[u64],
) {
    let n = extent.len();
    if n == 0 || extent.contains(&0) {
        return;
    }
    let run = extent[n - 1] as usize;
    let flat = |shape: &[u64], at: &[u64], offset: &[u64]| -> usize {
        let mut i = 0u64;
        for d in 0..n {
            i = i * shape[d] + at[d] + offset[d];
        }
        i as usize
    };
    let mut at = vec![0u64; n];
    loop {
        let s = flat(src_shape, from, &at);
        let t = flat(dst_shape, to, &at);
        dst[t..t + run].copy_from_slice(&src[s..s + run]);
        let mut d = n - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            at[d] += 1;
            if at[d] < extent[d] {
                break;
            }
            at[d] = 0;
        }
    }
}

/// `n`-byte values of native endianness.
fn typed<T, const N: usize>(bytes: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|b| {
            let mut a = [0u8; N];
            a.copy_from_slice(b);
            from(a)
        })
        .collect()
}

/// Values as stored, from the bytes zarrs decoded (native endianness).
fn raw_values(kind: Numeric, bytes: &[u8]) -> RawValues {
    match kind {
        Numeric::F32 => RawValues::F32(typed(bytes, f32::from_ne_bytes)),
        Numeric::F64 => RawValues::F64(typed(bytes, f64::from_ne_bytes)),
        Numeric::I8 => RawValues::I8(typed(bytes, i8::from_ne_bytes)),
        Numeric::U8 => RawValues::U8(bytes.to_vec()),
        Numeric::I16 => RawValues::I16(typed(bytes, i16::from_ne_bytes)),
        Numeric::U16 => RawValues::U16(typed(bytes, u16::from_ne_bytes)),
        Numeric::I32 => RawValues::I32(typed(bytes, i32::from_ne_bytes)),
        Numeric::U32 => RawValues::U32(typed(bytes, u32::from_ne_bytes)),
        Numeric::I64 => RawValues::I64(typed(bytes, i64::from_ne_bytes)),
        Numeric::U64 => RawValues::U64(typed(bytes, u64::from_ne_bytes)),
    }
}

/// CF-decoded values in an Arrow buffer. float32 that needs no decoding keeps the bytes zarrs
/// decoded into, without a copy (when they are aligned for f32, as allocations are); everything
/// else is decoded into a new buffer exactly as [`CfDecoding::decode_f32`] decodes it.
fn f32_buffer(kind: Numeric, bytes: Vec<u8>, cf: &CfDecoding) -> ScalarBuffer<f32> {
    if kind == Numeric::F32
        && cf.is_identity_for(true)
        && bytes.len().is_multiple_of(4)
        && bytes.as_ptr().align_offset(std::mem::align_of::<f32>()) == 0
    {
        let len = bytes.len() / 4;
        return ScalarBuffer::new(Buffer::from_vec(bytes), 0, len);
    }
    ScalarBuffer::from(cf.decode_f32(raw_values(kind, &bytes)))
}

/// Values of a buffer as a vector, without a copy when the buffer is a whole vector of its own.
pub(crate) fn into_vec(values: ScalarBuffer<f32>) -> Vec<f32> {
    let len = values.len();
    match values.into_inner().into_vec::<f32>() {
        Ok(vec) => vec,
        Err(buffer) => ScalarBuffer::<f32>::new(buffer, 0, len).to_vec(),
    }
}

/// The chunk a failed read stumbled on: each chunk the window touches is tried in turn (only on
/// the error path), so the error names the culprit rather than the window's first chunk.
pub(crate) fn chunk_of(array: &Array<Storage>, ranges: &[Range<u64>]) -> Vec<u64> {
    let first: Vec<u64> = ranges.iter().map(|r| r.start).collect();
    let Ok(shape) = array.chunk_shape(&vec![0; ranges.len()]) else {
        return first;
    };
    let per_dim: Vec<Range<u64>> = ranges
        .iter()
        .zip(shape.iter())
        .map(|(r, c)| r.start / c.get()..r.end.max(r.start + 1).div_ceil(c.get()))
        .collect();
    let first_chunk: Vec<u64> = per_dim.iter().map(|r| r.start).collect();
    let mut index = first_chunk.clone();
    'chunks: for _ in 0..4096 {
        if array.retrieve_chunk::<ArrayBytes<'static>>(&index).is_err() {
            return index;
        }
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < per_dim[d].end {
                continue 'chunks;
            }
            index[d] = per_dim[d].start;
        }
        break;
    }
    first_chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_runs_are_found_and_sub_rectangles_are_not() {
        let shape = [4, 3, 5];
        // A whole step: values 15..30.
        assert_eq!(contiguous_run(&[1..2, 0..3, 0..5], &shape), Some((15, 15)));
        // Rows 0..2 of a step, whole width (an edge chunk's valid part).
        assert_eq!(contiguous_run(&[2..3, 0..2, 0..5], &shape), Some((30, 10)));
        // Several whole steps.
        assert_eq!(contiguous_run(&[1..3, 0..3, 0..5], &shape), Some((15, 30)));
        // Part of one row.
        assert_eq!(contiguous_run(&[0..1, 1..2, 1..4], &shape), Some((6, 3)));
        // A sub-rectangle of a step, and rows of two steps: not contiguous.
        assert_eq!(contiguous_run(&[0..1, 0..2, 0..4], &shape), None);
        assert_eq!(contiguous_run(&[0..2, 0..2, 0..5], &shape), None);
    }

    #[test]
    fn boxes_are_copied_run_by_run() {
        // A 2 × 3 × 4 source holding its flat index; copy [1, 1..3, 1..3] to (0, 1) of a 3 × 3.
        let src: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut dst = vec![-1f32; 9];
        copy_box(
            (&src, &[2, 3, 4], &[1, 1, 1]),
            (&mut dst, &[1, 3, 3], &[0, 1, 0]),
            &[1, 2, 2],
        );
        assert_eq!(dst, [-1.0, -1.0, -1.0, 17.0, 18.0, -1.0, 21.0, 22.0, -1.0]);
    }

    #[test]
    fn float32_bytes_become_a_buffer_without_a_copy() {
        let values: Vec<f32> = vec![1.5, f32::NAN, -0.0, 3.25];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let address = bytes.as_ptr();
        let buffer = f32_buffer(Numeric::F32, bytes, &CfDecoding::default());
        assert_eq!(buffer.inner().as_ptr(), address);
        assert_eq!(buffer[0], 1.5);
        assert!(buffer[1].is_nan());
        assert_eq!(buffer[2].to_bits(), (-0.0f32).to_bits());
        // Packed integers are decoded into a buffer of their own.
        let cf = CfDecoding {
            scale: Some(0.5),
            ..CfDecoding::default()
        };
        let bytes: Vec<u8> = [4i16, -2].iter().flat_map(|v| v.to_ne_bytes()).collect();
        assert_eq!(f32_buffer(Numeric::I16, bytes, &cf)[..], [2.0, -1.0]);
    }
}
