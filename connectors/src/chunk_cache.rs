//! Decoded chunks kept between reads, as Arrow buffers.
//!
//! A chunk that spans several time steps is decoded once (CF decoding included) and kept here;
//! the tile of each step is cut from it: a slice of the same buffer when the step is a contiguous
//! range of the chunk, a copy otherwise. A chunk asked for by several readers at once is decoded
//! by the first; the others wait for that decode and share its buffer.
//!
//! The cache is an LRU bounded by bytes (decoded chunks held plus decodes in flight), with one
//! rule for the way tiles are read, step after step: the chunk of a place (an array and a block
//! of its grid, all dimensions after time) that was asked for last is *current*, and the chunks
//! of that place at other times are *done*. Room for a new chunk is made by dropping done chunks,
//! least recently used first, never current ones: when the bound cannot hold a chunk of every
//! place being read, the chunks that do not fit are not admitted (the caller reads its window
//! around the cache) instead of evicting a chunk that the next step needs again, which would
//! decode every chunk once per step. And done chunks of an array go before the array holds more
//! than is worth keeping of it (two layers of chunks, set by the source), even when the bound has
//! room: a long read then reuses their memory instead of faulting in fresh pages for every chunk.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arrow::buffer::ScalarBuffer;

/// A block of an array: the array's index in its source and the block's grid indices, time
/// first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BlockKey {
    pub array: usize,
    pub index: Vec<u64>,
}

impl BlockKey {
    /// The array and the block's indices after time: the same place at every time.
    fn place(&self) -> (usize, Vec<u64>) {
        (self.array, self.index.get(1..).unwrap_or_default().to_vec())
    }

    fn time(&self) -> u64 {
        self.index.first().copied().unwrap_or(0)
    }
}

/// What a source's decoded-chunk cache holds and has done since the source was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkCacheStats {
    /// Chunks decoded whole into the cache.
    pub decodes: u64,
    /// Reads served by a chunk already decoded: held, or decoded meanwhile for another reader.
    pub hits: u64,
    /// Reads of chunks not admitted (larger than the bound, or no room without dropping a chunk
    /// still being read): their windows were read around the cache.
    pub bypasses: u64,
    /// Chunks dropped to stay within the bound.
    pub evictions: u64,
    /// Chunks held now.
    pub chunks: usize,
    /// Decoded bytes held now: with the decodes in flight, never more than `capacity_bytes`.
    pub bytes: u64,
    /// The bound, bytes.
    pub capacity_bytes: u64,
}

/// An LRU of decoded chunks bounded by bytes, shared by every reader of a source.
pub(crate) struct ChunkCache {
    state: Mutex<State>,
}

struct State {
    slots: HashMap<BlockKey, Slot>,
    /// Last use → key, for every `Ready` slot; the first entry is the least recently used.
    lru: BTreeMap<u64, BlockKey>,
    /// The time index asked for last at each place.
    current: HashMap<(usize, Vec<u64>), u64>,
    clock: u64,
    /// Bytes of `Ready` slots.
    bytes: u64,
    /// Bytes of `Ready` slots per array.
    held_by_array: HashMap<usize, u64>,
    /// Done chunks of an array are dropped before the array holds more than this.
    keep_per_array: HashMap<usize, u64>,
    /// Bytes of decodes in flight, admitted ahead.
    reserved: u64,
    capacity: u64,
    decodes: u64,
    hits: u64,
    bypasses: u64,
    evictions: u64,
}

enum Slot {
    Ready {
        values: ScalarBuffer<f32>,
        bytes: u64,
        used: u64,
    },
    Decoding {
        pending: Arc<Pending>,
        reserved: u64,
    },
}

/// One decode in flight: readers of the same chunk wait on it.
#[derive(Default)]
struct Pending {
    outcome: Mutex<Outcome>,
    done: Condvar,
}

#[derive(Default)]
enum Outcome {
    #[default]
    Running,
    Decoded(ScalarBuffer<f32>),
    /// The decode failed (or panicked): each waiter reads the chunk itself and meets the error.
    Failed,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bytes a buffer keeps alive.
fn size_of(values: &ScalarBuffer<f32>) -> u64 {
    values
        .inner()
        .capacity()
        .max(std::mem::size_of_val(&values[..])) as u64
}

impl Pending {
    fn wait(&self) -> Option<ScalarBuffer<f32>> {
        let mut outcome = lock(&self.outcome);
        loop {
            match &*outcome {
                Outcome::Running => {
                    outcome = self.done.wait(outcome).unwrap_or_else(|p| p.into_inner());
                }
                Outcome::Decoded(values) => return Some(values.clone()),
                Outcome::Failed => return None,
            }
        }
    }

    fn finish(&self, outcome: Outcome) {
        *lock(&self.outcome) = outcome;
        self.done.notify_all();
    }
}

impl ChunkCache {
    /// An empty cache holding at most `capacity_bytes` of decoded chunks, and of each array in
    /// `keep_per_array` no more done chunks than keep it within its bytes there.
    pub(crate) fn new(capacity_bytes: u64, keep_per_array: HashMap<usize, u64>) -> Self {
        Self {
            state: Mutex::new(State {
                slots: HashMap::new(),
                lru: BTreeMap::new(),
                current: HashMap::new(),
                clock: 0,
                bytes: 0,
                held_by_array: HashMap::new(),
                keep_per_array,
                reserved: 0,
                capacity: capacity_bytes,
                decodes: 0,
                hits: 0,
                bypasses: 0,
                evictions: 0,
            }),
        }
    }

    /// Changes the bound, dropping done chunks, then current ones, least recently used first,
    /// until the cache fits it.
    pub(crate) fn set_capacity(&self, capacity_bytes: u64) {
        let mut state = lock(&self.state);
        state.capacity = capacity_bytes;
        let target = capacity_bytes.saturating_sub(state.reserved);
        state.evict(target, false, None);
        state.evict(target, true, None);
    }

    pub(crate) fn stats(&self) -> ChunkCacheStats {
        let state = lock(&self.state);
        ChunkCacheStats {
            decodes: state.decodes,
            hits: state.hits,
            bypasses: state.bypasses,
            evictions: state.evictions,
            chunks: state.lru.len(),
            bytes: state.bytes,
            capacity_bytes: state.capacity,
        }
    }

    /// The decoded chunk `key` (`bytes` once decoded): held, decoded meanwhile by another reader
    /// (this one waits for it), or decoded here with `decode` when the bound admits it. `None`
    /// when it does not: the caller reads around the cache. `decode` runs without the cache's
    /// lock, at most once per call; an error is returned to this reader alone.
    pub(crate) fn get_or_decode<E>(
        &self,
        key: &BlockKey,
        bytes: u64,
        decode: impl FnOnce() -> Result<ScalarBuffer<f32>, E>,
    ) -> Result<Option<ScalarBuffer<f32>>, E> {
        let pending = loop {
            let in_flight = {
                let mut guard = lock(&self.state);
                let state = &mut *guard;
                state.clock += 1;
                let now = state.clock;
                state.current.insert(key.place(), key.time());
                match state.slots.get_mut(key) {
                    Some(Slot::Ready { values, used, .. }) => {
                        let last = std::mem::replace(used, now);
                        let values = values.clone();
                        state.lru.remove(&last);
                        state.lru.insert(now, key.clone());
                        state.hits += 1;
                        return Ok(Some(values));
                    }
                    Some(Slot::Decoding { pending, .. }) => pending.clone(),
                    None => {
                        if !state.admit(key.array, bytes) {
                            if state.bypasses == 0 {
                                tracing::warn!(
                                    capacity_bytes = state.capacity,
                                    chunk_bytes = bytes,
                                    held_bytes = state.bytes,
                                    "the decoded-chunk cache cannot hold a chunk beside the \
                                     chunks being read: reading around it, window by window \
                                     (a larger read memory budget avoids it)"
                                );
                            }
                            state.bypasses += 1;
                            return Ok(None);
                        }
                        let pending = Arc::new(Pending::default());
                        state.reserved += bytes;
                        state.slots.insert(
                            key.clone(),
                            Slot::Decoding {
                                pending: pending.clone(),
                                reserved: bytes,
                            },
                        );
                        state.decodes += 1;
                        break pending;
                    }
                }
            };
            if let Some(values) = in_flight.wait() {
                lock(&self.state).hits += 1;
                return Ok(Some(values));
            }
            // That decode failed: look again (this reader may decode the chunk itself).
        };
        let mut publisher = Publisher {
            cache: self,
            key: Some(key.clone()),
            pending,
        };
        let values = decode()?;
        publisher.publish(values.clone());
        Ok(Some(values))
    }
}

impl State {
    /// Makes room for `bytes` more, dropping done chunks only; false when that is not enough.
    fn admit(&mut self, array: usize, bytes: u64) -> bool {
        let Some(target) = self.room_for(bytes) else {
            return false;
        };
        // Done chunks of the array beyond what is useful to keep of it go first, even when the
        // bound has room: their memory is then reused for the new chunk.
        if let Some(limit) = self.keep_per_array.get(&array) {
            self.evict(limit.saturating_sub(bytes), false, Some(array));
        }
        self.evict(target, false, None);
        self.bytes <= target
    }

    /// What may stay held if `bytes` more are to fit beside the decodes in flight.
    fn room_for(&self, bytes: u64) -> Option<u64> {
        self.capacity.checked_sub(self.reserved)?.checked_sub(bytes)
    }

    fn is_current(&self, key: &BlockKey) -> bool {
        self.current.get(&key.place()) == Some(&key.time())
    }

    /// Bytes held of `array`'s chunks.
    fn held_of(&self, array: usize) -> u64 {
        self.held_by_array.get(&array).copied().unwrap_or(0)
    }

    /// Drops least recently used chunks until at most `target` bytes are held (of `array`'s
    /// chunks only, when given): done chunks only, or any chunk with `current_too`.
    fn evict(&mut self, target: u64, current_too: bool, array: Option<usize>) {
        let mut skipped = Vec::new();
        loop {
            let held = match array {
                Some(a) => self.held_of(a),
                None => self.bytes,
            };
            if held <= target {
                break;
            }
            let Some((used, key)) = self.lru.pop_first() else {
                break;
            };
            if array.is_some_and(|a| a != key.array) || (!current_too && self.is_current(&key)) {
                skipped.push((used, key));
                continue;
            }
            if let Some(Slot::Ready { bytes, .. }) = self.slots.remove(&key) {
                self.bytes -= bytes;
                if let Some(held) = self.held_by_array.get_mut(&key.array) {
                    *held -= bytes;
                }
                self.evictions += 1;
            }
        }
        self.lru.extend(skipped);
    }
}

/// Ends a decode: keeps the chunk and hands it to the waiting readers, or, dropped without
/// publishing (an error, a panic), frees the slot and its reservation and wakes them to read for
/// themselves.
struct Publisher<'a> {
    cache: &'a ChunkCache,
    key: Option<BlockKey>,
    pending: Arc<Pending>,
}

impl Publisher<'_> {
    /// Takes this decode's slot out of the cache and releases its reservation.
    fn release(state: &mut State, key: &BlockKey, pending: &Arc<Pending>) {
        if let Some(Slot::Decoding {
            pending: p,
            reserved,
        }) = state.slots.get(key)
            && Arc::ptr_eq(p, pending)
        {
            state.reserved -= reserved;
            state.slots.remove(key);
        }
    }

    fn publish(&mut self, values: ScalarBuffer<f32>) {
        let Some(key) = self.key.take() else {
            return;
        };
        {
            let mut guard = lock(&self.cache.state);
            let state = &mut *guard;
            Self::release(state, &key, &self.pending);
            let bytes = size_of(&values);
            // The reservation was made from the declared size; the bound holds for the real one
            // (and for a bound lowered meanwhile) or the chunk is handed out without being kept.
            if let Some(target) = state.room_for(bytes) {
                state.evict(target, false, None);
                if state.bytes <= target {
                    state.clock += 1;
                    let now = state.clock;
                    state.bytes += bytes;
                    *state.held_by_array.entry(key.array).or_default() += bytes;
                    state.lru.insert(now, key.clone());
                    state.slots.insert(
                        key,
                        Slot::Ready {
                            values: values.clone(),
                            bytes,
                            used: now,
                        },
                    );
                }
            }
        }
        self.pending.finish(Outcome::Decoded(values));
    }
}

impl Drop for Publisher<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        Self::release(&mut lock(&self.cache.state), &key, &self.pending);
        self.pending.finish(Outcome::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn chunk(n: usize, value: f32) -> ScalarBuffer<f32> {
        ScalarBuffer::from(vec![value; n])
    }

    /// Block `place` of time index `time`.
    fn key(time: u64, place: u64) -> BlockKey {
        BlockKey {
            array: 0,
            index: vec![time, place],
        }
    }

    #[test]
    fn concurrent_readers_of_one_chunk_share_one_decode() {
        let cache = ChunkCache::new(1 << 20, HashMap::new());
        let calls = AtomicUsize::new(0);
        let barrier = Barrier::new(8);
        let buffers: Vec<ScalarBuffer<f32>> = std::thread::scope(|scope| {
            let readers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        cache
                            .get_or_decode(&key(0, 7), 4000, || {
                                calls.fetch_add(1, Ordering::SeqCst);
                                // Long enough that every reader arrives while it runs.
                                std::thread::sleep(std::time::Duration::from_millis(50));
                                Ok::<_, ()>(chunk(1000, 1.5))
                            })
                            .expect("decoded")
                            .expect("admitted")
                    })
                })
                .collect();
            readers
                .into_iter()
                .map(|r| r.join().expect("reader"))
                .collect()
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        for b in &buffers {
            assert_eq!(b.inner().data_ptr(), buffers[0].inner().data_ptr());
        }
        let stats = cache.stats();
        assert_eq!((stats.decodes, stats.hits, stats.chunks), (1, 7, 1));
    }

    #[test]
    fn a_failed_decode_is_not_kept_and_the_next_reader_decodes_again() {
        let cache = ChunkCache::new(1 << 20, HashMap::new());
        let err = cache.get_or_decode(&key(0, 1), 16, || Err::<ScalarBuffer<f32>, _>("corrupt"));
        assert_eq!(err.unwrap_err(), "corrupt");
        let ok = cache.get_or_decode(&key(0, 1), 16, || Ok::<_, &str>(chunk(4, 2.0)));
        assert_eq!(ok.expect("second decode").expect("admitted")[..], [2.0; 4]);
        assert_eq!(cache.stats().decodes, 2);
        // A panicking decode frees its slot and its reservation too.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.get_or_decode(&key(0, 2), 16, || -> Result<ScalarBuffer<f32>, ()> {
                panic!("boom")
            })
        }));
        assert!(panicked.is_err());
        let ok = cache.get_or_decode(&key(0, 2), 16, || Ok::<_, ()>(chunk(4, 3.0)));
        assert_eq!(
            ok.expect("after the panic").expect("admitted")[..],
            [3.0; 4]
        );
        assert_eq!(lock(&cache.state).reserved, 0);
    }

    #[test]
    fn done_chunks_are_dropped_least_recently_used_first_within_the_bound() {
        // Chunks of 1000 f32 = 4000 bytes; room for 2.
        let cache = ChunkCache::new(9000, HashMap::new());
        let get = |k: BlockKey| {
            cache
                .get_or_decode(&k, 4000, || Ok::<_, ()>(chunk(1000, k.index[0] as f32)))
                .expect("decode")
        };
        assert!(get(key(0, 1)).is_some());
        assert!(get(key(0, 2)).is_some());
        // Place 3 would need a current chunk dropped: read around the cache.
        assert!(get(key(0, 3)).is_none());
        let stats = cache.stats();
        assert_eq!((stats.chunks, stats.bytes, stats.bypasses), (2, 8000, 1));
        // Time 1 at place 1 makes time 0 there done: it makes room.
        assert!(get(key(1, 1)).is_some());
        let stats = cache.stats();
        assert_eq!((stats.chunks, stats.evictions, stats.decodes), (2, 1, 3));
        assert!(get(key(0, 2)).is_some(), "still held");
        assert_eq!(cache.stats().decodes, 3);
        // Time 1 at place 2: (1, 1) and (1, 2) are current, (0, 2) done and dropped.
        assert!(get(key(1, 2)).is_some());
        for t in 2..20 {
            for p in 1..3 {
                assert!(get(key(t, p)).is_some(), "time {t}, place {p}");
                let stats = cache.stats();
                assert!(stats.bytes <= 9000 && stats.chunks <= 2, "{stats:?}");
            }
        }
        // A chunk larger than the bound is never admitted.
        assert!(
            cache
                .get_or_decode(&key(0, 9), 12000, || Ok::<_, ()>(chunk(3000, 9.0)))
                .expect("no error")
                .is_none()
        );
        // Lowering the bound drops chunks at once, current ones included.
        cache.set_capacity(4000);
        let stats = cache.stats();
        assert!(stats.bytes <= 4000 && stats.chunks <= 1, "{stats:?}");
        cache.set_capacity(0);
        assert_eq!(cache.stats().bytes, 0);
    }

    #[test]
    fn done_chunks_of_an_array_go_before_it_holds_more_than_is_worth_keeping() {
        // Room for 10 chunks of 4000 bytes, but array 0 keeps at most 3 (array 1 has no limit).
        let cache = ChunkCache::new(40_000, HashMap::from([(0, 12_000)]));
        let get = |array: usize, time: u64, place: u64| {
            let k = BlockKey {
                array,
                index: vec![time, place],
            };
            cache
                .get_or_decode(&k, 4000, || Ok::<_, ()>(chunk(1000, time as f32)))
                .expect("decode")
                .expect("admitted")
        };
        for time in 0..5 {
            for place in 0..2 {
                get(0, time, place);
                get(1, time, place);
            }
        }
        let state = lock(&cache.state);
        // Array 0: its two current chunks and one done chunk; array 1: all ten.
        assert_eq!(
            (state.held_of(0), state.held_of(1)),
            (12_000, 40_000 - 12_000)
        );
        assert!(state.bytes <= 40_000);
    }

    #[test]
    fn decodes_in_flight_count_against_the_bound() {
        // Room for one chunk: while it decodes, another place is read around the cache.
        let cache = ChunkCache::new(5000, HashMap::new());
        let started = Barrier::new(2);
        let finish = Barrier::new(2);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                cache
                    .get_or_decode(&key(0, 1), 4000, || {
                        started.wait();
                        finish.wait();
                        Ok::<_, ()>(chunk(1000, 1.0))
                    })
                    .expect("decode")
                    .expect("admitted");
            });
            started.wait();
            let other = cache.get_or_decode(&key(0, 2), 4000, || Ok::<_, ()>(chunk(1000, 2.0)));
            assert!(other.expect("no error").is_none());
            finish.wait();
        });
        let stats = cache.stats();
        assert_eq!((stats.decodes, stats.bypasses, stats.bytes), (1, 1, 4000));
    }
}
