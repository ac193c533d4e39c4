use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Live counts of a running pipeline, one counter per stage (`read`, each step, `assemble`,
/// `deliver`), readable from any thread while the dataflow runs: the CLI's progress bars and the
/// job service's progress events both read it.
///
/// ```
/// let progress = isotach_engine::Progress::default();
/// let read = progress.stage("read", "tiles", 4);
/// read.add(3);
/// let now = progress.snapshot();
/// assert_eq!(now.stages[0].done, 3);
/// assert_eq!(now.stages[0].total, 4);
/// ```
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    stages: Mutex<Vec<Stage>>,
    counts: Mutex<Vec<std::sync::Arc<AtomicU64>>>,
    timers: Mutex<Vec<(String, Timer)>>,
}

/// Durations of one kind of event (an inference request's round trip, a frame's render), counted
/// and summed: what a Prometheus summary's `_count` and `_sum` report. Cheap to clone (shared).
///
/// ```
/// let timer = isotach_engine::Timer::default();
/// timer.record(std::time::Duration::from_millis(250));
/// timer.record(std::time::Duration::from_millis(750));
/// assert_eq!(timer.count(), 2);
/// assert_eq!(timer.seconds(), 1.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Timer(std::sync::Arc<(AtomicU64, AtomicU64)>);

impl Timer {
    /// Counts one event that took `elapsed`.
    pub fn record(&self, elapsed: std::time::Duration) {
        self.0.0.fetch_add(1, Ordering::Relaxed);
        self.0
            .1
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Events recorded.
    pub fn count(&self) -> u64 {
        self.0.0.load(Ordering::Relaxed)
    }

    /// Their total duration, seconds.
    pub fn seconds(&self) -> f64 {
        self.0.1.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// A timer at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerSnapshot {
    /// What it times (`step[1] infer request`, `frame`).
    pub name: String,
    /// Events recorded.
    pub count: u64,
    /// Their total duration, seconds.
    pub seconds: f64,
}

#[derive(Debug, Clone)]
struct Stage {
    name: String,
    unit: String,
    total: u64,
}

/// A stage's counter, returned by [`Progress::stage`].
#[derive(Debug, Clone)]
pub struct StageCounter(std::sync::Arc<AtomicU64>);

impl StageCounter {
    /// Counts `n` more items.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// One stage at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct StageProgress {
    /// Stage name: `read`, `step[i] op`, `assemble`, `deliver`.
    pub name: String,
    /// What is counted (`tiles`, `bundles`, `fields`).
    pub unit: String,
    /// Items done so far in this process.
    pub done: u64,
    /// Items expected in this process's share of the run (0 when unknown).
    pub total: u64,
    /// Items per second since the run started.
    pub per_second: f64,
}

/// Every stage at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressSnapshot {
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// Stages in pipeline order.
    pub stages: Vec<StageProgress>,
    /// Timers, in the order they were registered.
    pub timers: Vec<TimerSnapshot>,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            stages: Mutex::default(),
            counts: Mutex::default(),
            timers: Mutex::default(),
        }
    }
}

impl Progress {
    /// Registers a stage (or returns the existing one of that name) and its counter.
    pub fn stage(&self, name: &str, unit: &str, total: u64) -> StageCounter {
        let mut stages = self.stages.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = stages.iter().position(|s| s.name == name) {
            return StageCounter(counts[i].clone());
        }
        stages.push(Stage {
            name: name.to_owned(),
            unit: unit.to_owned(),
            total,
        });
        let counter = std::sync::Arc::new(AtomicU64::new(0));
        counts.push(counter.clone());
        StageCounter(counter)
    }

    /// Registers `timer` under `name` (or returns the timer already registered under it).
    pub fn timer(&self, name: &str, timer: Timer) -> Timer {
        let mut timers = self.timers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, existing)) = timers.iter().find(|(n, _)| n == name) {
            return existing.clone();
        }
        timers.push((name.to_owned(), timer.clone()));
        timer
    }

    /// The counts now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let elapsed_s = self.started.elapsed().as_secs_f64();
        let stages = self.stages.lock().unwrap_or_else(|p| p.into_inner());
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        ProgressSnapshot {
            elapsed_s,
            stages: stages
                .iter()
                .zip(counts.iter())
                .map(|(stage, count)| {
                    let done = count.load(Ordering::Relaxed);
                    StageProgress {
                        name: stage.name.clone(),
                        unit: stage.unit.clone(),
                        done,
                        total: stage.total,
                        per_second: if elapsed_s > 0.0 {
                            done as f64 / elapsed_s
                        } else {
                            0.0
                        },
                    }
                })
                .collect(),
            timers: self
                .timers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(name, timer)| TimerSnapshot {
                    name: name.clone(),
                    count: timer.count(),
                    seconds: timer.seconds(),
                })
                .collect(),
        }
    }
}
