//! Admitting, queueing, running and recording jobs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use isotach_core::{Frame, PipelineSpec, SinkSpec};
use isotach_engine::{Progress, RunConfig};
use tokio::sync::{broadcast, mpsc};

use crate::execute::{CancelToken, ExecuteError, ExecutionControl, ExecutionEvent, FrameOutlet};
use crate::frames::{ChannelKey, FrameHub};
use crate::roots::{confine_inference_workers, confine_spec};
use crate::store::{EventKind, JobEventRecord, JobRecord, JobState, JobStore};
use crate::{ServiceConfig, ServiceError};

/// Live events buffered per job for slow watchers; a watcher that falls further behind reads the
/// missed ones back from the database.
const LIVE_EVENTS: usize = 256;

/// Events buffered between a watcher's task and its gRPC stream.
const WATCH_BUFFER: usize = 64;

/// Jobs per page of `List` when the client asks for no size, and the most it may ask for.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// How long `Cancel` waits for a running job to stop before answering with its current state.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// Why a request was refused; the server maps each to a gRPC status code.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The spec is malformed or does not fit its data, or a request field is wrong
    /// (INVALID_ARGUMENT).
    #[error("{0}")]
    InvalidArgument(String),
    /// The spec reaches outside the data roots (PERMISSION_DENIED).
    #[error("{0}")]
    OutsideRoots(String),
    /// Every slot and queue place is taken (RESOURCE_EXHAUSTED).
    #[error("{0}")]
    QueueFull(String),
    /// No such job (NOT_FOUND).
    #[error("job {0:?} not found")]
    NotFound(String),
    /// The job is in a state that does not allow the request (FAILED_PRECONDITION).
    #[error("{0}")]
    WrongState(String),
    /// The server's own failure (INTERNAL).
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

/// A job waiting for a slot.
struct QueuedJob {
    id: i64,
    spec: PipelineSpec,
    /// A rerun replaces the Zarr stores its earlier run left behind.
    replace_outputs: bool,
    /// Where its frames go instead of the display channels (a replay's player).
    frames: Option<FrameOutlet>,
}

/// A running job's handle.
struct RunningJob {
    cancel: CancelToken,
    cancelled_by: Option<String>,
}

#[derive(Default)]
struct Scheduler {
    queue: VecDeque<QueuedJob>,
    running: HashMap<i64, RunningJob>,
}

/// Admits, queues, runs and records jobs. Cheap to share: wrap it in an `Arc`.
///
/// Lock order: `scheduler`, then `store`, then `live`, then `meters`.
pub struct JobManager {
    config: ServiceConfig,
    scheduler: Mutex<Scheduler>,
    store: Mutex<JobStore>,
    live: Mutex<HashMap<i64, broadcast::Sender<JobEventRecord>>>,
    meters: Mutex<Meters>,
    hub: Arc<FrameHub>,
}

/// What the metrics endpoint adds up: the progress of running jobs, and the totals of finished
/// ones (so that counters never go down while the server runs).
#[derive(Default)]
struct Meters {
    running: HashMap<i64, Arc<Progress>>,
    finished_items: BTreeMap<(String, String), u64>,
    finished_timers: BTreeMap<String, (u64, f64)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves plain data behind, still consistent enough to go on.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Parses a wire job id.
pub(crate) fn parse_id(id: &str) -> Result<i64, JobError> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| JobError::NotFound(id.to_owned()))
}

impl JobManager {
    /// Opens the job database in `data_dir` and marks every job the previous server left queued or
    /// running as interrupted (its record and events are kept; it can be rerun).
    pub fn open(config: ServiceConfig, data_dir: &Path) -> Result<Arc<Self>, ServiceError> {
        let mut store = JobStore::open(data_dir)?;
        let now = Utc::now();
        for (id, state) in store.unfinished()? {
            let reason = format!(
                "the server stopped while job {id} was {}; rerun it with `isotach submit --rerun {id}`",
                state.as_str()
            );
            tracing::warn!(job = id, state = state.as_str(), "marking interrupted");
            store.append_event(
                id,
                EventKind::Interrupted {
                    reason: reason.clone(),
                },
                Some((JobState::Interrupted, Some(&reason))),
                now,
            )?;
        }
        Ok(Arc::new(Self {
            config,
            scheduler: Mutex::default(),
            store: Mutex::new(store),
            live: Mutex::default(),
            meters: Mutex::default(),
            hub: Arc::default(),
        }))
    }

    /// The display channels jobs publish their frames on.
    pub fn frames(&self) -> &Arc<FrameHub> {
        &self.hub
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// The service's metrics in the Prometheus text format: jobs by state, items through each
    /// stage, and the count and total duration of timed events (inference requests, frames),
    /// finished and running jobs together.
    pub fn metrics(&self) -> Result<String, JobError> {
        let (queued, running) = {
            let scheduler = lock(&self.scheduler);
            (scheduler.queue.len(), scheduler.running.len())
        };
        let by_state = lock(&self.store).count_by_state()?;
        let meters = lock(&self.meters);
        let mut items = meters.finished_items.clone();
        let mut timers = meters.finished_timers.clone();
        for progress in meters.running.values() {
            let now = progress.snapshot();
            for stage in now.stages {
                *items.entry((stage.name, stage.unit)).or_default() += stage.done;
            }
            for timer in now.timers {
                let total = timers.entry(timer.name).or_default();
                total.0 += timer.count;
                total.1 += timer.seconds;
            }
        }
        drop(meters);
        let label = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::new();
        out.push_str("# HELP isotach_jobs Jobs recorded, by state.\n# TYPE isotach_jobs gauge\n");
        for state in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
            JobState::Interrupted,
        ] {
            let n = by_state
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            out.push_str(&format!(
                "isotach_jobs{{state=\"{}\"}} {n}\n",
                state.as_str()
            ));
        }
        out.push_str(&format!(
            "# HELP isotach_jobs_in_memory Jobs this server holds now.\n# TYPE isotach_jobs_in_memory gauge\n\
             isotach_jobs_in_memory{{state=\"queued\"}} {queued}\n\
             isotach_jobs_in_memory{{state=\"running\"}} {running}\n"
        ));
        out.push_str(
            "# HELP isotach_stage_items_total Items through each pipeline stage (tiles read, \
             bundles per step, fields delivered).\n# TYPE isotach_stage_items_total counter\n",
        );
        for ((stage, unit), n) in &items {
            out.push_str(&format!(
                "isotach_stage_items_total{{stage=\"{}\",unit=\"{}\"}} {n}\n",
                label(stage),
                label(unit)
            ));
        }
        out.push_str(
            "# HELP isotach_event_seconds Durations of timed events: inference requests (round \
             trip), frames (render and write).\n# TYPE isotach_event_seconds summary\n",
        );
        for (name, (count, seconds)) in &timers {
            let name = label(name);
            out.push_str(&format!(
                "isotach_event_seconds_count{{event=\"{name}\"}} {count}\n\
                 isotach_event_seconds_sum{{event=\"{name}\"}} {seconds}\n"
            ));
        }
        Ok(out)
    }

    /// Checks `spec` (paths inside the data roots, then against its data), records it as a new
    /// job, and starts it or queues it. Blocking: opens the spec's source.
    ///
    /// With `rerun_of`, `spec` is that job's stored spec and the new job replaces the Zarr stores
    /// the earlier one wrote.
    pub fn submit(
        self: &Arc<Self>,
        spec: PipelineSpec,
        submitted_by: &str,
        rerun_of: Option<i64>,
    ) -> Result<JobRecord, JobError> {
        self.submit_with(spec, submitted_by, rerun_of, None)
    }

    /// [`submit`](Self::submit), with the job's frames sent to `frames` instead of the display
    /// channels (a replay's player).
    pub(crate) fn submit_with(
        self: &Arc<Self>,
        mut spec: PipelineSpec,
        submitted_by: &str,
        rerun_of: Option<i64>,
        frames: Option<FrameOutlet>,
    ) -> Result<JobRecord, JobError> {
        // Refuse early when full, before opening any store; checked again below, atomically.
        self.check_capacity(&lock(&self.scheduler))?;
        self.confine(&mut spec)?;
        let (_, pipeline) =
            crate::validate_spec(&spec).map_err(|e| JobError::InvalidArgument(e.to_string()))?;
        let time_steps = pipeline.steps.len() as u64;

        let mut scheduler = lock(&self.scheduler);
        let start_now = self.check_capacity(&scheduler)?;
        let now = Utc::now();
        let id = lock(&self.store).insert_job(&spec, submitted_by, rerun_of, now)?;
        tracing::info!(job = id, name = %spec.name, submitted_by, ?rerun_of, "accepted");
        self.record(id, EventKind::Accepted, None)?;
        self.record(id, EventKind::Validated { time_steps }, None)?;
        let job = QueuedJob {
            id,
            spec,
            replace_outputs: rerun_of.is_some(),
            frames,
        };
        if start_now {
            self.start(&mut scheduler, job)?;
        } else {
            scheduler.queue.push_back(job);
        }
        drop(scheduler);
        self.get(id)
    }

    /// Refuses a spec that reads or writes outside the data roots or names an inference worker
    /// that is not configured; relative paths become paths inside the first root.
    pub(crate) fn confine(&self, spec: &mut PipelineSpec) -> Result<(), JobError> {
        confine_spec(
            spec,
            &self.config.data_roots,
            self.config.allow_remote_sources,
        )
        .map_err(JobError::OutsideRoots)?;
        confine_inference_workers(spec, &self.config.inference_workers)
            .map_err(JobError::OutsideRoots)
    }

    /// Whether a new job can start now (`true`) or must queue (`false`); refused when every slot
    /// and queue place is taken.
    fn check_capacity(&self, scheduler: &Scheduler) -> Result<bool, JobError> {
        let start_now = scheduler.running.len() < self.config.max_concurrent_jobs;
        if !start_now && scheduler.queue.len() >= self.config.max_queued_jobs {
            return Err(JobError::QueueFull(format!(
                "the job queue is full: {} running (max_concurrent_jobs = {}) and {} queued \
                 (max_queued_jobs = {}); submit again when a job has finished",
                scheduler.running.len(),
                self.config.max_concurrent_jobs,
                scheduler.queue.len(),
                self.config.max_queued_jobs
            )));
        }
        Ok(start_now)
    }

    /// Reruns the stored spec of job `id` as a new job (see [`JobManager::submit`]).
    pub fn rerun(self: &Arc<Self>, id: i64, submitted_by: &str) -> Result<JobRecord, JobError> {
        let earlier = self.get(id)?;
        if !earlier.state.is_final() {
            return Err(JobError::WrongState(format!(
                "job {id} is still {}; cancel it before rerunning it",
                earlier.state.as_str()
            )));
        }
        self.submit(earlier.spec, submitted_by, Some(id))
    }

    /// One job.
    pub fn get(&self, id: i64) -> Result<JobRecord, JobError> {
        lock(&self.store)
            .get(id)?
            .ok_or_else(|| JobError::NotFound(id.to_string()))
    }

    /// A page of jobs, newest first, and the token of the next page (empty on the last).
    pub fn list(
        &self,
        state: Option<JobState>,
        page_size: usize,
        page_token: &str,
    ) -> Result<(Vec<JobRecord>, String), JobError> {
        let size = if page_size == 0 {
            DEFAULT_PAGE
        } else {
            page_size.min(MAX_PAGE)
        };
        let before = if page_token.is_empty() {
            None
        } else {
            Some(page_token.parse::<i64>().map_err(|_| {
                JobError::InvalidArgument(format!(
                    "page_token {page_token:?} is not one this server gave"
                ))
            })?)
        };
        let mut jobs = lock(&self.store).list(state, before, size + 1)?;
        let next = if jobs.len() > size {
            jobs.truncate(size);
            jobs.last().map(|j| j.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((jobs, next))
    }

    /// Cancels job `id`: a queued job ends at once; a running one is asked to stop, and this waits
    /// a little for it. Cancelling an ended job changes nothing.
    pub async fn cancel(&self, id: i64, by: &str) -> Result<JobRecord, JobError> {
        let reason = format!("cancelled by {by}");
        let running = {
            let mut scheduler = lock(&self.scheduler);
            if let Some(position) = scheduler.queue.iter().position(|job| job.id == id) {
                scheduler.queue.remove(position);
                self.record(
                    id,
                    EventKind::Cancelled {
                        reason: format!("{reason} while queued"),
                    },
                    Some((JobState::Cancelled, Some(&reason))),
                )?;
                false
            } else if let Some(job) = scheduler.running.get_mut(&id) {
                job.cancelled_by.get_or_insert(reason);
                job.cancel.cancel();
                true
            } else {
                false
            }
        };
        if running {
            tracing::info!(job = id, by, "cancel requested");
            let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
            while tokio::time::Instant::now() < deadline && !self.get(id)?.state.is_final() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.get(id)
    }

    /// A job's events after `after_seq`: first those recorded, then live ones until the job ends.
    /// The stream ends after the job's last event, or when the receiver is dropped.
    pub fn watch(
        self: &Arc<Self>,
        id: i64,
        after_seq: u64,
    ) -> Result<mpsc::Receiver<Result<JobEventRecord, JobError>>, JobError> {
        let job = self.get(id)?;
        // Subscribe before reading the log, so no event falls between the two.
        let mut live = (!job.state.is_final()).then(|| {
            lock(&self.live)
                .entry(id)
                .or_insert_with(|| broadcast::channel(LIVE_EVENTS).0)
                .subscribe()
        });
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let manager = self.clone();
        tokio::spawn(async move {
            let mut last = after_seq;
            let mut ended = false;
            // Recorded events first; again after a lag or once the live channel closes.
            loop {
                let recorded = lock(&manager.store).events_after(id, last);
                let recorded = match recorded {
                    Ok(events) => events,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                for event in recorded {
                    last = event.seq;
                    ended |= event.kind.is_final();
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
                let Some(receiver) = live.as_mut().filter(|_| !ended) else {
                    return;
                };
                loop {
                    match receiver.recv().await {
                        Ok(event) if event.seq <= last => {}
                        // A gap: read what is missing back from the log.
                        Ok(event) if event.seq > last + 1 => break,
                        Ok(event) => {
                            last = event.seq;
                            let is_final = event.kind.is_final();
                            if tx.send(Ok(event)).await.is_err() || is_final {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => {
                            live = None;
                            break;
                        }
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Appends an event to job `id`'s log (setting its final state when given) and tells the
    /// watchers.
    fn record(
        &self,
        id: i64,
        kind: EventKind,
        final_state: Option<(JobState, Option<&str>)>,
    ) -> Result<(), ServiceError> {
        let is_final = final_state.is_some();
        let mut store = lock(&self.store);
        let event = store.append_event(id, kind, final_state, Utc::now())?;
        // Taken before the store is released, so that watchers get events in seq order.
        let mut live = lock(&self.live);
        drop(store);
        if let Some(sender) = live.get(&id) {
            // No receiver is fine: nobody is watching.
            let _ = sender.send(event);
        }
        if is_final {
            // Dropping the sender closes the channel; watchers read the rest from the log.
            live.remove(&id);
        }
        Ok(())
    }

    /// Records `kind` for a running job; a failure to record is logged, since the job goes on.
    fn record_or_log(&self, id: i64, kind: EventKind) {
        if let Err(e) = self.record(id, kind, None) {
            tracing::error!(job = id, error = %e, "recording an event");
        }
    }

    /// Marks `job` running and starts it on a thread of its own.
    fn start(
        self: &Arc<Self>,
        scheduler: &mut Scheduler,
        job: QueuedJob,
    ) -> Result<(), ServiceError> {
        lock(&self.store).set_state(job.id, JobState::Running, Utc::now())?;
        let cancel = CancelToken::default();
        scheduler.running.insert(
            job.id,
            RunningJob {
                cancel: cancel.clone(),
                cancelled_by: None,
            },
        );
        let manager = self.clone();
        let id = job.id;
        let spawned = std::thread::Builder::new()
            .name(format!("job-{id}"))
            .spawn(move || manager.run(job, cancel));
        if let Err(e) = spawned {
            scheduler.running.remove(&id);
            let reason = format!("could not start a thread for the job: {e}");
            self.record(
                id,
                EventKind::Failed {
                    reason: reason.clone(),
                    retryable: true,
                },
                Some((JobState::Failed, Some(&reason))),
            )?;
        }
        Ok(())
    }

    /// Runs one job to its end on the current thread, records the outcome, and starts the next
    /// queued job.
    fn run(self: Arc<Self>, job: QueuedJob, cancel: CancelToken) {
        let id = job.id;
        let _span = tracing::info_span!("job", id, name = %job.spec.name).entered();
        tracing::info!("running");
        let progress = Arc::new(Progress::default());
        lock(&self.meters).running.insert(id, progress.clone());
        let config = RunConfig {
            workers: self.config.workers_per_job,
            progress: progress.clone(),
            ..RunConfig::default()
        };
        let recorder = self.clone();
        let control = ExecutionControl {
            on_event: Some(Arc::new(move |event| {
                let kind = match event {
                    ExecutionEvent::StepCompleted { step, time } => {
                        EventKind::StepCompleted { step, time }
                    }
                    ExecutionEvent::FramePublished {
                        channel,
                        step,
                        variable,
                        ..
                    } => EventKind::FramePublished {
                        channel,
                        step,
                        variable,
                    },
                };
                recorder.record_or_log(id, kind);
            })),
            frames: Some(job.frames.clone().unwrap_or_else(|| {
                let hub = self.hub.clone();
                Arc::new(move |mut frame: Frame| {
                    frame.job_id = id.to_string();
                    if !frame.channel.is_empty() {
                        hub.publish(&ChannelKey::Named(frame.channel.clone()), frame.clone());
                    }
                    hub.publish(&ChannelKey::Job(id), frame);
                })
            })),
            cancel,
        };
        let (stop_progress, stopped) = std::sync::mpsc::sync_channel::<()>(1);
        let reporter = {
            let manager = self.clone();
            let progress = progress.clone();
            let interval = Duration::from_millis(self.config.progress_interval_ms);
            std::thread::spawn(move || {
                let mut last = HashMap::new();
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(interval)
                {
                    manager.record_progress(id, &progress, &mut last);
                }
                manager.record_progress(id, &progress, &mut last);
            })
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if job.replace_outputs {
                for path in replace_zarr_outputs(&job.spec)? {
                    self.record_or_log(
                        id,
                        EventKind::Warning {
                            message: format!("replaced the earlier run's zarr store {path}"),
                        },
                    );
                }
            }
            crate::execute(&job.spec, config, &control)
        }));
        let _ = stop_progress.send(());
        if reporter.join().is_err() {
            tracing::error!("the progress reporter panicked");
        }
        {
            let mut meters = lock(&self.meters);
            meters.running.remove(&id);
            let last = progress.snapshot();
            for stage in last.stages {
                *meters
                    .finished_items
                    .entry((stage.name, stage.unit))
                    .or_default() += stage.done;
            }
            for timer in last.timers {
                let total = meters.finished_timers.entry(timer.name).or_default();
                total.0 += timer.count;
                total.1 += timer.seconds;
            }
        }

        // Subscribers to the job's own frames see their streams end.
        self.hub.close(&ChannelKey::Job(id));
        let mut scheduler = lock(&self.scheduler);
        let cancelled_by = scheduler
            .running
            .remove(&id)
            .and_then(|running| running.cancelled_by);
        let (kind, state, reason) = match result {
            Ok(Ok(outcome)) => (
                EventKind::Succeeded {
                    time_steps: outcome.report.steps as u64,
                },
                JobState::Succeeded,
                None,
            ),
            Ok(Err(ExecuteError::Cancelled)) => {
                let reason = cancelled_by.unwrap_or_else(|| "cancelled".to_owned());
                (
                    EventKind::Cancelled {
                        reason: reason.clone(),
                    },
                    JobState::Cancelled,
                    Some(reason),
                )
            }
            Ok(Err(e)) => {
                let reason = e.to_string();
                (
                    EventKind::Failed {
                        reason: reason.clone(),
                        retryable: e.retryable(),
                    },
                    JobState::Failed,
                    Some(reason),
                )
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("unknown panic");
                let reason = format!("the job panicked: {message}");
                (
                    EventKind::Failed {
                        reason: reason.clone(),
                        retryable: false,
                    },
                    JobState::Failed,
                    Some(reason),
                )
            }
        };
        tracing::info!(
            state = state.as_str(),
            reason = reason.as_deref().unwrap_or(""),
            "ended"
        );
        if let Err(e) = self.record(id, kind, Some((state, reason.as_deref()))) {
            tracing::error!(error = %e, "recording the end of the job");
        }
        while scheduler.running.len() < self.config.max_concurrent_jobs {
            let Some(next) = scheduler.queue.pop_front() else {
                break;
            };
            let next_id = next.id;
            if let Err(e) = self.start(&mut scheduler, next) {
                tracing::error!(job = next_id, error = %e, "starting a queued job");
            }
        }
    }

    /// Records a progress event for every stage whose count changed since `last`.
    fn record_progress(&self, id: i64, progress: &Progress, last: &mut HashMap<String, u64>) {
        for stage in progress.snapshot().stages {
            if last.get(&stage.name) == Some(&stage.done) {
                continue;
            }
            last.insert(stage.name.clone(), stage.done);
            self.record_or_log(
                id,
                EventKind::Progress {
                    stage: stage.name,
                    done: stage.done,
                    total: stage.total,
                    rate_per_s: stage.per_second,
                },
            );
        }
    }
}

/// Removes the Zarr stores a spec's sinks name, where they exist and are Zarr stores (an earlier
/// run of the same spec left them), so that a rerun can create them afresh; returns their paths.
fn replace_zarr_outputs(spec: &PipelineSpec) -> Result<Vec<String>, ExecuteError> {
    let mut removed = Vec::new();
    for sink in &spec.sinks {
        let SinkSpec::Zarr(zarr) = sink else { continue };
        let path = Path::new(&zarr.path);
        if path.exists() && isotach_connectors::is_zarr_store(path) {
            std::fs::remove_dir_all(path).map_err(|source| ExecuteError::Io {
                what: "removing the earlier run's zarr store",
                path: zarr.path.clone(),
                source,
            })?;
            removed.push(zarr.path.clone());
        }
    }
    Ok(removed)
}
