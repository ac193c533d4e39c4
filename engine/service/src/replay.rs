//! Case-study replays: a time window of a store played through a pipeline onto a display channel
//! at a chosen rate, with pause, seek, speed and loop.
//!
//! A replay is a job (recorded, listed and cancellable like any other) whose frames go to a
//! player instead of straight to the channel. The job computes frames as fast as it can, ahead of
//! the playhead (the prefetch), and keeps them; the player publishes frame `position` on the
//! channel every `1 / steps_per_second` seconds. A frame that is due before it is computed is
//! counted late and shown when it arrives. Looping and seeking reuse the kept frames, so every
//! pass shows the same data and the walls draw the same pixels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use isotach_core::{Frame, PipelineSpec, SinkSpec};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::execute::FrameOutlet;
use crate::frames::ChannelKey;
use crate::jobs::{JobError, JobManager};
use crate::store::JobState;

/// Slowest and fastest playback rates, steps per second.
pub const RATE_LIMITS: (f64, f64) = (0.01, 1000.0);
/// The most decoded frame data a replay may keep, bytes.
pub const MAX_REPLAY_BYTES: u64 = 4 << 30;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where a replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayState {
    /// The playhead moves.
    Playing,
    /// The playhead stands still.
    Paused,
    /// The last frame was shown and the replay does not loop.
    Finished,
    /// Stopped by a client.
    Stopped,
    /// Its job failed.
    Failed,
}

/// What a client sees of a replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStatus {
    /// Its id.
    pub id: String,
    /// The job computing its frames.
    pub job_id: i64,
    /// The channel it plays on.
    pub channel: String,
    /// Where it is.
    pub state: PlayState,
    /// The frame index the playhead is on.
    pub position: u64,
    /// Frames in the window.
    pub frames: u64,
    /// Frames computed so far.
    pub ready: u64,
    /// Rate, steps per second.
    pub steps_per_second: f64,
    /// Looping or not.
    pub looping: bool,
    /// Frames that were due before they were computed.
    pub late: u64,
    /// Why it failed.
    pub error: Option<String>,
}

/// A change to a replay; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct ReplayChange {
    /// Pause or play.
    pub paused: Option<bool>,
    /// Move the playhead.
    pub seek: Option<u64>,
    /// New rate.
    pub steps_per_second: Option<f64>,
    /// Loop or not.
    pub looping: Option<bool>,
}

struct Playhead {
    state: PlayState,
    position: u64,
    rate: f64,
    looping: bool,
    late: u64,
    error: Option<String>,
}

struct Replay {
    id: String,
    job_id: AtomicI64,
    channel: String,
    total: u64,
    /// The store's time step of frame 0: frame `n` shows step `first_step + n`.
    first_step: u64,
    frames: Mutex<Slots>,
    arrived: Notify,
    playhead: Mutex<Playhead>,
    changed: Notify,
}

/// A replay's frames by position; workers finish steps in any order, so a frame waits in its
/// slot until the playhead reaches it.
#[derive(Default)]
struct Slots {
    frames: Vec<Option<Arc<Frame>>>,
    ready: u64,
}

impl Slots {
    fn insert(&mut self, position: usize, frame: Frame) {
        if self.frames.len() <= position {
            self.frames.resize(position + 1, None);
        }
        if self.frames[position].replace(Arc::new(frame)).is_none() {
            self.ready += 1;
        }
    }

    fn get(&self, position: u64) -> Option<Arc<Frame>> {
        self.frames.get(position as usize).cloned().flatten()
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

impl Replay {
    fn status(&self) -> ReplayStatus {
        let p = lock(&self.playhead);
        ReplayStatus {
            id: self.id.clone(),
            job_id: self.job_id.load(Ordering::Relaxed),
            channel: self.channel.clone(),
            state: p.state,
            position: p.position,
            frames: self.total,
            ready: lock(&self.frames).ready,
            steps_per_second: p.rate,
            looping: p.looping,
            late: p.late,
            error: p.error.clone(),
        }
    }
}

/// Every replay of the server.
pub struct Replays {
    manager: Arc<JobManager>,
    replays: Mutex<HashMap<String, Arc<Replay>>>,
    next_id: AtomicU64,
}

fn check_rate(rate: f64) -> Result<f64, JobError> {
    if !(RATE_LIMITS.0..=RATE_LIMITS.1).contains(&rate) {
        return Err(JobError::InvalidArgument(format!(
            "steps_per_second {rate} is outside {}..={}",
            RATE_LIMITS.0, RATE_LIMITS.1
        )));
    }
    Ok(rate)
}

impl Replays {
    /// No replays yet.
    pub fn new(manager: Arc<JobManager>) -> Self {
        Self {
            manager,
            replays: Mutex::default(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Starts replaying `spec`: its first frames sink that names a channel is played there.
    /// Blocking (validates against the store); call from a blocking task.
    pub fn start(
        self: &Arc<Self>,
        spec: PipelineSpec,
        by: &str,
        rate: f64,
        looping: bool,
        paused: bool,
        runtime: &tokio::runtime::Handle,
    ) -> Result<ReplayStatus, JobError> {
        let rate = check_rate(rate)?;
        let channel = spec
            .sinks
            .iter()
            .find_map(|sink| match sink {
                SinkSpec::Frames(frames) => frames.channel.clone(),
                _ => None,
            })
            .ok_or_else(|| {
                JobError::InvalidArgument(
                    "a replay plays a frames sink on a display channel: give one frames sink \
                     a channel (e.g. channel = \"lobby\")"
                        .into(),
                )
            })?;
        let mut spec = spec;
        self.manager.confine(&mut spec)?;
        let (source, pipeline) =
            crate::validate_spec(&spec).map_err(|e| JobError::InvalidArgument(e.to_string()))?;
        let total = pipeline.steps.len() as u64;
        let first_step = pipeline.steps.start as u64;
        // The source grid (a box of it when the spec selects a region); steps may coarsen it.
        let cells = source.describe().grid.len() as u64;
        let layers = spec
            .sinks
            .iter()
            .find_map(|sink| match sink {
                SinkSpec::Frames(f) if f.channel.as_deref() == Some(&channel) => {
                    Some(f.layers.len() as u64)
                }
                _ => None,
            })
            .unwrap_or(1);
        let bytes = total * layers * cells * 4;
        if bytes > MAX_REPLAY_BYTES {
            return Err(JobError::QueueFull(format!(
                "the replay would keep {total} frames × {layers} layers × {cells} cells = {} MiB, \
                 over the limit of {} MiB: shorten the time window or coarsen the grid",
                bytes >> 20,
                MAX_REPLAY_BYTES >> 20
            )));
        }
        let id = format!("r{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let replay = Arc::new(Replay {
            id: id.clone(),
            job_id: AtomicI64::new(0),
            channel: channel.clone(),
            total,
            first_step,
            frames: Mutex::default(),
            arrived: Notify::new(),
            playhead: Mutex::new(Playhead {
                state: if paused {
                    PlayState::Paused
                } else {
                    PlayState::Playing
                },
                position: 0,
                rate,
                looping,
                late: 0,
                error: None,
            }),
            changed: Notify::new(),
        });
        let outlet: FrameOutlet = {
            let replay = replay.clone();
            Arc::new(move |frame: Frame| {
                let position = frame.step().checked_sub(replay.first_step);
                if let Some(position) = position.filter(|_| frame.channel == replay.channel) {
                    lock(&replay.frames).insert(position as usize, frame);
                    replay.arrived.notify_waiters();
                }
            })
        };
        let job = self.manager.submit_with(spec, by, None, Some(outlet))?;
        replay.job_id.store(job.id, Ordering::Relaxed);
        lock(&self.replays).insert(id.clone(), replay.clone());
        tracing::info!(replay = %id, job = job.id, %channel, total, rate, "replay started");
        let this = self.clone();
        runtime.spawn(async move { this.play(replay).await });
        self.get(&id)
    }

    /// A replay's state.
    pub fn get(&self, id: &str) -> Result<ReplayStatus, JobError> {
        self.find(id).map(|r| r.status())
    }

    fn find(&self, id: &str) -> Result<Arc<Replay>, JobError> {
        lock(&self.replays)
            .get(id)
            .cloned()
            .ok_or_else(|| JobError::NotFound(format!("replay {id}")))
    }

    /// Changes a replay.
    pub fn control(&self, id: &str, change: &ReplayChange) -> Result<ReplayStatus, JobError> {
        let replay = self.find(id)?;
        if let Some(rate) = change.steps_per_second {
            check_rate(rate)?;
        }
        if let Some(seek) = change.seek
            && seek >= replay.total
        {
            return Err(JobError::InvalidArgument(format!(
                "seek {seek} is past the replay's last frame ({}; frames count from 0)",
                replay.total.saturating_sub(1)
            )));
        }
        {
            let mut p = lock(&replay.playhead);
            if matches!(p.state, PlayState::Stopped | PlayState::Failed) {
                return Err(JobError::WrongState(format!(
                    "replay {id} is {:?}; start a new one",
                    p.state
                )));
            }
            if let Some(rate) = change.steps_per_second {
                p.rate = rate;
            }
            if let Some(looping) = change.looping {
                p.looping = looping;
            }
            if let Some(seek) = change.seek {
                p.position = seek;
                if p.state == PlayState::Finished {
                    p.state = PlayState::Paused;
                }
            }
            match change.paused {
                Some(true) => p.state = PlayState::Paused,
                Some(false) => {
                    if p.state == PlayState::Finished {
                        p.position = 0;
                    }
                    p.state = PlayState::Playing;
                }
                None => {}
            }
        }
        replay.changed.notify_waiters();
        Ok(replay.status())
    }

    /// Stops a replay: its job is cancelled if still computing, and its frames are freed.
    pub async fn stop(&self, id: &str, by: &str) -> Result<ReplayStatus, JobError> {
        let replay = self.find(id)?;
        lock(&replay.playhead).state = PlayState::Stopped;
        replay.changed.notify_waiters();
        if matches!(
            self.manager
                .get(replay.job_id.load(Ordering::Relaxed))?
                .state,
            JobState::Queued | JobState::Running
        ) {
            self.manager
                .cancel(replay.job_id.load(Ordering::Relaxed), by)
                .await?;
        }
        let status = replay.status();
        lock(&self.replays).remove(id);
        lock(&replay.frames).clear();
        Ok(status)
    }

    /// Moves the playhead until the replay stops.
    async fn play(&self, replay: Arc<Replay>) {
        let hub = self.manager.frames().clone();
        let key = ChannelKey::Named(replay.channel.clone());
        let mut due = Instant::now();
        loop {
            let changed = replay.changed.notified();
            let (state, position, rate) = {
                let p = lock(&replay.playhead);
                (p.state, p.position, p.rate)
            };
            match state {
                PlayState::Stopped | PlayState::Failed => return,
                PlayState::Paused | PlayState::Finished => {
                    changed.await;
                    due = Instant::now();
                    continue;
                }
                PlayState::Playing => {}
            }
            let Some(frame) = self.frame_at(&replay, position, due).await else {
                return;
            };
            // A pause or seek while waiting for the frame: decide again.
            if lock(&replay.playhead).position != position
                || lock(&replay.playhead).state != PlayState::Playing
            {
                continue;
            }
            hub.publish(&key, Frame::clone(&frame));
            due = due.max(Instant::now() - Duration::from_secs(1))
                + Duration::from_secs_f64(1.0 / rate);
            let changed = replay.changed.notified();
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = changed => {}
            }
            let mut p = lock(&replay.playhead);
            if p.position == position && p.state == PlayState::Playing {
                p.position += 1;
                if p.position >= replay.total {
                    if p.looping {
                        p.position = 0;
                    } else {
                        p.position = replay.total.saturating_sub(1);
                        p.state = PlayState::Finished;
                        tracing::info!(replay = %replay.id, "replay finished");
                    }
                }
            }
        }
    }

    /// Frame `position`, waiting for the job to compute it; `None` when the job ended without it
    /// (the replay is then marked failed) or the replay was stopped.
    async fn frame_at(&self, replay: &Replay, position: u64, due: Instant) -> Option<Arc<Frame>> {
        let mut counted_late = false;
        loop {
            let arrived = replay.arrived.notified();
            if let Some(frame) = lock(&replay.frames).get(position) {
                return Some(frame);
            }
            if lock(&replay.playhead).state == PlayState::Stopped {
                return None;
            }
            if !counted_late && Instant::now() > due {
                lock(&replay.playhead).late += 1;
                counted_late = true;
            }
            let job = self.manager.get(replay.job_id.load(Ordering::Relaxed)).ok();
            if let Some(job) =
                job.filter(|j| !matches!(j.state, JobState::Queued | JobState::Running))
                && lock(&replay.frames).get(position).is_none()
            {
                let mut p = lock(&replay.playhead);
                p.state = PlayState::Failed;
                p.error = Some(job.reason.unwrap_or_else(|| {
                    format!(
                        "job {} ended ({}) after {} of {} frames",
                        job.id,
                        job.state.as_str(),
                        lock(&replay.frames).ready,
                        replay.total
                    )
                }));
                tracing::warn!(replay = %replay.id, error = ?p.error, "replay failed");
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), arrived).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(number: u64) -> Frame {
        Frame {
            job_id: "1".into(),
            channel: "lobby".into(),
            number,
            width_px: 64,
            height_px: 64,
            layers: Vec::new(),
            fields: Vec::new(),
            completed_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn frames_finished_out_of_order_play_in_step_order() {
        let mut slots = Slots::default();
        slots.insert(2, frame(20));
        assert!(slots.get(0).is_none() && slots.get(1).is_none());
        slots.insert(0, frame(0));
        slots.insert(1, frame(10));
        let numbers: Vec<u64> = (0..3)
            .filter_map(|p| slots.get(p))
            .map(|f| f.number)
            .collect();
        assert_eq!(numbers, [0, 10, 20]);
        assert_eq!(slots.ready, 3);
        slots.insert(1, frame(11));
        assert_eq!(slots.ready, 3, "a frame computed twice counts once");
        slots.clear();
        assert!(slots.get(0).is_none() && slots.ready == 0);
    }
}
