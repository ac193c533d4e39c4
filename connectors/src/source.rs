use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use isotach_core::{DatasetInfo, RegionKey, Tile, TileWindow};

use crate::Result;

/// One tile to read: a variable, a step, a chunk-aligned block of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TileRequest {
    /// Time step index.
    pub step: u64,
    /// Block key (shard key).
    pub region: RegionKey,
    /// Index window of the block.
    pub window: TileWindow,
}

/// Something gridded data can be read from. Implementations are shared by every dataflow worker of
/// a process, so they are `Send + Sync` and cache what they open.
pub trait Source: Send + Sync {
    /// What the dataset holds.
    fn describe(&self) -> &DatasetInfo;

    /// The chunk-aligned blocks of `variable` over the grid (the same for every step).
    fn regions(&self, variable: &str) -> Result<Vec<(RegionKey, TileWindow)>>;

    /// Reads one tile of `variable`. Missing chunks read as NaN; corrupt ones are errors naming the
    /// chunk.
    fn read_tile(&self, variable: &str, request: &TileRequest) -> Result<Tile>;
}

/// How [`read_tiles`] reads: how many tiles at once, and how many bytes of decoded tiles may wait
/// for the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Tiles read at the same time (threads), at least 1. Default 4.
    pub concurrency: usize,
    /// Decoded bytes read ahead and not yet taken; readers wait when it is spent. Default 256 MiB.
    pub memory_budget_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            memory_budget_bytes: 256 << 20,
        }
    }
}

struct Budget {
    available: Mutex<u64>,
    freed: Condvar,
    total: u64,
}

impl Budget {
    fn cost(&self, request: &TileRequest, levels: usize) -> u64 {
        (request.window.len() as u64 * levels as u64 * 4).clamp(1, self.total)
    }

    fn take(&self, bytes: u64, cancelled: &AtomicBool) -> bool {
        let mut available = self.available.lock().unwrap_or_else(|p| p.into_inner());
        while *available < bytes {
            if cancelled.load(Ordering::Relaxed) {
                return false;
            }
            available = self
                .freed
                .wait_timeout(available, std::time::Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *available -= bytes;
        true
    }

    fn give(&self, bytes: u64) {
        *self.available.lock().unwrap_or_else(|p| p.into_inner()) += bytes;
        self.freed.notify_all();
    }
}

/// Tiles arriving from [`read_tiles`], in completion order. Dropping it stops the readers.
pub struct TileStream {
    results: mpsc::Receiver<(u64, Result<Tile>)>,
    budget: Arc<Budget>,
    cancelled: Arc<AtomicBool>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Iterator for TileStream {
    type Item = Result<Tile>;

    fn next(&mut self) -> Option<Result<Tile>> {
        let (bytes, result) = self.results.recv().ok()?;
        self.budget.give(bytes);
        Some(result)
    }
}

impl Drop for TileStream {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.budget.freed.notify_all();
        while self.results.try_recv().is_ok() {}
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// Reads `requests` (variable, tile) on `options.concurrency` threads, holding at most
/// `options.memory_budget_bytes` of decoded tiles ahead of the consumer: a slow consumer slows
/// the reads instead of growing a queue. Every request yields exactly one item, a tile or the
/// error that names its chunk.
pub fn read_tiles(
    source: Arc<dyn Source>,
    requests: Vec<(String, TileRequest)>,
    options: ReadOptions,
) -> TileStream {
    let total = options.memory_budget_bytes.max(1);
    let budget = Arc::new(Budget {
        available: Mutex::new(total),
        freed: Condvar::new(),
        total,
    });
    let cancelled = Arc::new(AtomicBool::new(false));
    let queue = Arc::new(Mutex::new(VecDeque::from(requests)));
    let (sender, results) = mpsc::channel();
    let readers = (0..options.concurrency.max(1))
        .map(|_| {
            let (source, queue, budget, cancelled, sender) = (
                source.clone(),
                queue.clone(),
                budget.clone(),
                cancelled.clone(),
                sender.clone(),
            );
            std::thread::spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some((variable, request)) = next else {
                        return;
                    };
                    let levels = source
                        .describe()
                        .vertical_axis_of(&variable)
                        .map_or(1, |axis| axis.values.len());
                    let bytes = budget.cost(&request, levels);
                    if !budget.take(bytes, &cancelled) {
                        return;
                    }
                    let result = source.read_tile(&variable, &request);
                    if sender.send((bytes, result)).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    TileStream {
        results,
        budget,
        cancelled,
        readers,
    }
}
