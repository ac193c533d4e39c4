//! Display channels: the frames of running jobs and replays, fanned out to wall nodes and viewers.
//!
//! Every frames sink of a served job publishes on the job's own channel and, when the sink names
//! one, on a display channel. A channel keeps its latest frame (a node that joins or rejoins starts
//! on the current frame) and broadcasts new ones to its subscribers through a bounded queue: a
//! subscriber that falls more than [`SUBSCRIBER_QUEUE`] frames behind skips to the newest ones
//! (a display shows the present, it does not replay the past), and is told so in the log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use isotach_core::Frame;
use tokio::sync::broadcast;

/// Frames a subscriber may lag behind before it skips ahead.
pub const SUBSCRIBER_QUEUE: usize = 16;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which channel: a named display channel, or one job's own frames.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelKey {
    /// A display channel named in a frames sink (or a replay).
    Named(String),
    /// Every frame of one job.
    Job(i64),
}

impl std::fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Named(name) => write!(f, "channel {name:?}"),
            Self::Job(id) => write!(f, "job {id}"),
        }
    }
}

struct Channel {
    next_number: u64,
    latest: Option<Arc<Frame>>,
    sender: broadcast::Sender<Arc<Frame>>,
}

/// The server's display channels.
#[derive(Default)]
pub struct FrameHub {
    channels: Mutex<HashMap<ChannelKey, Channel>>,
}

/// A subscription: the channel's current frame (if any), then every frame published after it.
pub struct Subscription {
    /// The frame on the channel when the subscription began.
    pub current: Option<Arc<Frame>>,
    /// Frames published since.
    pub receiver: broadcast::Receiver<Arc<Frame>>,
}

impl FrameHub {
    /// Publishes `frame` on `key`, numbering it in the channel's order; returns what was sent.
    pub fn publish(&self, key: &ChannelKey, mut frame: Frame) -> Arc<Frame> {
        let mut channels = lock(&self.channels);
        let channel = channels.entry(key.clone()).or_insert_with(new_channel);
        frame.number = channel.next_number;
        if let ChannelKey::Named(name) = key {
            frame.channel.clone_from(name);
        }
        channel.next_number += 1;
        let frame = Arc::new(frame);
        channel.latest = Some(frame.clone());
        // No subscriber is fine: nobody is watching yet.
        let _ = channel.sender.send(frame.clone());
        frame
    }

    /// Subscribes to `key`, creating the channel when it is new (a wall may start before the
    /// first frame is published).
    pub fn subscribe(&self, key: &ChannelKey) -> Subscription {
        let mut channels = lock(&self.channels);
        let channel = channels.entry(key.clone()).or_insert_with(new_channel);
        Subscription {
            current: channel.latest.clone(),
            receiver: channel.sender.subscribe(),
        }
    }

    /// True when `key` exists (has had a publisher or a subscriber).
    pub fn exists(&self, key: &ChannelKey) -> bool {
        lock(&self.channels).contains_key(key)
    }

    /// Ends `key`: its subscribers' streams end after the frames already sent, and its frames
    /// are freed. For a job's own channel when the job ends.
    pub fn close(&self, key: &ChannelKey) {
        lock(&self.channels).remove(key);
    }
}

fn new_channel() -> Channel {
    Channel {
        next_number: 0,
        latest: None,
        sender: broadcast::channel(SUBSCRIBER_QUEUE).0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame {
            job_id: "1".into(),
            channel: String::new(),
            number: 99,
            width_px: 64,
            height_px: 64,
            layers: Vec::new(),
            fields: Vec::new(),
            completed_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn late_subscribers_start_on_the_current_frame_and_numbers_count_up() {
        let hub = FrameHub::default();
        let lobby = ChannelKey::Named("lobby".into());
        let early = hub.subscribe(&lobby);
        assert!(early.current.is_none());
        let mut early = early.receiver;
        for _ in 0..3 {
            hub.publish(&lobby, frame());
        }
        let late = hub.subscribe(&lobby);
        let current = late.current.unwrap_or_else(|| panic!("a current frame"));
        assert_eq!((current.number, current.channel.as_str()), (2, "lobby"));
        for expected in 0..3 {
            let got = early.recv().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got.number, expected);
        }
        hub.close(&lobby);
        assert!(early.recv().await.is_err());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_skips_to_the_newest_frames() {
        let hub = FrameHub::default();
        let key = ChannelKey::Job(4);
        let mut slow = hub.subscribe(&key).receiver;
        for _ in 0..SUBSCRIBER_QUEUE + 5 {
            hub.publish(&key, frame());
        }
        match slow.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 5),
            other => panic!("expected a lag of 5, got {other:?}"),
        }
        let next = slow.recv().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next.number, 5);
    }
}
