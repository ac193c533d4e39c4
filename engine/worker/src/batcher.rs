//! Dynamic batching: one queue and one batching task per model.
//!
//! Requests wait in a bounded queue. The task takes the oldest, then gathers later requests of the
//! same shape (all dimensions but the first, and the datatypes) until the batch holds
//! `max_batch_size` rows or the oldest has waited `max_queue_delay_ms`, merges them along dim 0,
//! runs the model once on a blocking thread, and splits the outputs back to their callers.
//! Requests of another shape wait for a batch of their own, in arrival order. While a batch runs,
//! the next one gathers, so a busy model runs full batches.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use isotach_proto::{DataType, Tensor};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::backend::Model;
use crate::convert;

/// What one caller gets back: its outputs (model order), or why the run failed.
pub(crate) type Reply = Result<Vec<Tensor>, String>;

/// One request, validated and converted to the model's datatypes.
pub(crate) struct Job {
    /// Inputs in the model's order.
    pub(crate) inputs: Vec<Tensor>,
    /// Rows along dim 0 (1 for a model that is not batched).
    pub(crate) rows: i64,
    /// Requests merge only with requests of the same key.
    pub(crate) key: Vec<(DataType, Vec<i64>)>,
    /// Where the outputs go.
    pub(crate) reply: oneshot::Sender<Reply>,
    /// When the request was queued.
    pub(crate) enqueued: Instant,
}

/// How a model batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    /// Whether requests merge at all.
    pub(crate) batchable: bool,
    /// Most rows per run.
    pub(crate) max_rows: i64,
    /// Longest wait of a batch's first request.
    pub(crate) max_delay: Duration,
}

/// Counters of one model, updated as batches run.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    batches: AtomicU64,
    rows: AtomicU64,
    largest_batch_requests: AtomicU64,
    failed_batches: AtomicU64,
}

/// A snapshot of one model's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Requests that reached the model (after validation).
    pub requests: u64,
    /// Backend runs.
    pub batches: u64,
    /// Rows (dim 0 entries) run in all.
    pub rows: u64,
    /// Most requests merged into one run.
    pub largest_batch_requests: u64,
    /// Runs that failed.
    pub failed_batches: u64,
    /// Requests waiting in the queue now (not yet in a run).
    pub queued: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ModelStats {
        ModelStats {
            requests: self.requests.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            largest_batch_requests: self.largest_batch_requests.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            queued: 0,
        }
    }
}

/// Why a job was not queued.
#[derive(Debug)]
pub(crate) enum SubmitError {
    /// The queue holds `capacity` requests already.
    Full { capacity: usize },
    /// The batching task has stopped (the server is shutting down).
    Stopped,
}

/// The queue of one model.
pub(crate) struct Queue {
    tx: mpsc::UnboundedSender<Job>,
    rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            queued: Arc::new(AtomicUsize::new(0)),
            capacity,
            counters: Arc::new(Counters::default()),
        }
    }

    /// The model's counters, with the queue's current length.
    pub(crate) fn stats(&self) -> ModelStats {
        ModelStats {
            queued: self.queued.load(Ordering::SeqCst) as u64,
            ..self.counters.snapshot()
        }
    }

    /// Queues `job`, or refuses it when the queue is full.
    pub(crate) fn submit(&self, job: Job) -> Result<(), SubmitError> {
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::Full {
                capacity: self.capacity,
            });
        }
        self.tx.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            SubmitError::Stopped
        })
    }

    /// Starts the batching task (once); `None` when it was started before.
    pub(crate) fn start(
        &self,
        model: Arc<dyn Model>,
        settings: BatchSettings,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let rx = self.rx.lock().ok()?.take()?;
        Some(tokio::spawn(batch_loop(
            model,
            rx,
            settings,
            self.queued.clone(),
            self.counters.clone(),
        )))
    }
}

async fn batch_loop(
    model: Arc<dyn Model>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    settings: BatchSettings,
    queued: Arc<AtomicUsize>,
    counters: Arc<Counters>,
) {
    // One run at a time per model: while it runs, the next batch gathers.
    let running = Arc::new(Semaphore::new(1));
    let mut pending: VecDeque<Job> = VecDeque::new();
    loop {
        let Ok(permit) = running.clone().acquire_owned().await else {
            return;
        };
        let first = match pending.pop_front() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let deadline = first.enqueued + settings.max_delay;
        let key = first.key.clone();
        let mut rows = first.rows;
        let mut batch = vec![first];
        if settings.batchable {
            let mut i = 0;
            while i < pending.len() && rows < settings.max_rows {
                if pending[i].key == key && rows + pending[i].rows <= settings.max_rows {
                    if let Some(job) = pending.remove(i) {
                        rows += job.rows;
                        batch.push(job);
                    }
                } else {
                    i += 1;
                }
            }
            while rows < settings.max_rows {
                tokio::select! {
                    biased;
                    job = rx.recv() => match job {
                        Some(job) if job.key == key && rows + job.rows <= settings.max_rows => {
                            rows += job.rows;
                            batch.push(job);
                        }
                        Some(job) => pending.push_back(job),
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
        }
        queued.fetch_sub(batch.len(), Ordering::SeqCst);
        let model = model.clone();
        let counters = counters.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            execute(model.as_ref(), batch, &counters);
        });
    }
}

/// Runs one batch and answers its callers.
fn execute(model: &dyn Model, batch: Vec<Job>, counters: &Counters) {
    let n = batch.len() as u64;
    let rows: Vec<i64> = batch.iter().map(|j| j.rows).collect();
    let (inputs, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|j| (j.inputs, j.reply)).unzip();
    counters.requests.fetch_add(n, Ordering::Relaxed);
    counters.batches.fetch_add(1, Ordering::Relaxed);
    counters.rows.fetch_add(
        rows.iter().map(|&r| r.max(0) as u64).sum(),
        Ordering::Relaxed,
    );
    counters
        .largest_batch_requests
        .fetch_max(n, Ordering::Relaxed);
    let result = if inputs.len() == 1 {
        inputs
            .into_iter()
            .next()
            .map(|one| {
                model
                    .run(one)
                    .map(|out| vec![out])
                    .map_err(|e| e.to_string())
            })
            .unwrap_or_else(|| Err("empty batch".into()))
    } else {
        model
            .run(convert::merge(&inputs))
            .map_err(|e| e.to_string())
            .and_then(|out| convert::split(out, &rows))
    };
    match result {
        Ok(parts) => {
            for (reply, part) in replies.into_iter().zip(parts) {
                // A caller that went away no longer wants its outputs.
                let _ = reply.send(Ok(part));
            }
        }
        Err(message) => {
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
            for reply in replies {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}
