//! The two-phase present of display walls: every node of a wall renders frame N, says it is
//! ready, and presents when the barrier releases N: once every live node is ready for it, or when
//! the wall's timeout has passed since the first node was. Nodes that missed the timeout (or whose
//! frame stream closed) are left out of later frames until they are ready again, so a node that
//! dies stalls the others for one timeout at most, and a node that comes back rejoins on the
//! frame it is given (the channel's current one, which may already be released: then it presents
//! at once).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One node's phase one.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The wall.
    pub wall: String,
    /// This node.
    pub node: String,
    /// Every node of the wall (from its wall file).
    pub nodes: Vec<String>,
    /// The frame drawn.
    pub number: u64,
    /// How long the others wait for a missing node.
    pub timeout: Duration,
    /// When this node presented its previous frame, and which.
    pub previous: Option<(u64, DateTime<Utc>)>,
}

/// Phase two.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The frame to present.
    pub number: u64,
    /// Nodes left out of it.
    pub missing: Vec<String>,
}

/// Spread of present times across a wall's nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpreadStats {
    /// Frames whose present times every presenting node reported.
    pub frames: u64,
    /// Sum of the spreads, seconds.
    pub sum_seconds: f64,
    /// Largest spread, seconds.
    pub max_seconds: f64,
}

struct Pending {
    ready: BTreeSet<String>,
    deadline: Instant,
    done: watch::Sender<Option<Release>>,
}

#[derive(Default)]
struct Wall {
    nodes: Vec<String>,
    absent: BTreeSet<String>,
    released: Option<u64>,
    pending: BTreeMap<u64, Pending>,
    /// Present times reported per frame, until every node that presented it has reported.
    presented: BTreeMap<u64, Vec<DateTime<Utc>>>,
    /// How many nodes presented each frame (known at release).
    presenters: BTreeMap<u64, usize>,
    spread: SpreadStats,
}

impl Wall {
    /// Releases `number` (and every older pending frame) with `missing` left out.
    fn release(&mut self, number: u64, missing: Vec<String>) {
        self.released = Some(self.released.map_or(number, |r| r.max(number)));
        let older: Vec<u64> = self.pending.range(..=number).map(|(&n, _)| n).collect();
        for n in older {
            if let Some(p) = self.pending.remove(&n) {
                self.presenters.insert(n, p.ready.len());
                p.done.send_replace(Some(Release {
                    number: n,
                    missing: missing.clone(),
                }));
            }
        }
        // Bounded bookkeeping: forget spreads of frames long gone.
        while self.presenters.len() > 256 {
            self.presenters.pop_first();
        }
        while self.presented.len() > 256 {
            self.presented.pop_first();
        }
    }

    /// The live nodes frame `number` still waits for.
    fn waiting_for(&self, pending: &Pending) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| !self.absent.contains(*n) && !pending.ready.contains(*n))
            .cloned()
            .collect()
    }

    /// Releases every pending frame that waits for nobody live.
    fn release_complete(&mut self) {
        let complete: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| self.waiting_for(p).is_empty())
            .map(|(&n, _)| n)
            .collect();
        if let Some(&last) = complete.last() {
            self.release(last, Vec::new());
        }
    }

    fn record_present(&mut self, number: u64, at: DateTime<Utc>) {
        let times = self.presented.entry(number).or_default();
        times.push(at);
        if self.presenters.get(&number) == Some(&times.len()) {
            let times = self.presented.remove(&number).unwrap_or_default();
            let (min, max) = (times.iter().min(), times.iter().max());
            if let (Some(min), Some(max)) = (min, max) {
                let spread = (*max - *min).to_std().unwrap_or_default().as_secs_f64();
                self.spread.frames += 1;
                self.spread.sum_seconds += spread;
                self.spread.max_seconds = self.spread.max_seconds.max(spread);
            }
        }
    }
}

/// Every wall's barrier.
#[derive(Default)]
pub struct WallSync {
    walls: Mutex<HashMap<String, Wall>>,
}

/// Why a ready call was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WallSyncError {
    /// The request contradicts itself.
    #[error("{0}")]
    Invalid(String),
}

impl WallSync {
    /// Phase one for `ready.node`; resolves with phase two.
    pub async fn ready(&self, ready: Ready) -> Result<Release, WallSyncError> {
        if ready.nodes.is_empty() || !ready.nodes.contains(&ready.node) {
            return Err(WallSyncError::Invalid(format!(
                "node {:?} is not among the wall's nodes {:?}",
                ready.node, ready.nodes
            )));
        }
        let mut done = {
            let mut walls = lock(&self.walls);
            let wall = walls.entry(ready.wall.clone()).or_default();
            wall.nodes.clone_from(&ready.nodes);
            wall.absent.remove(&ready.node);
            if let Some((number, at)) = ready.previous {
                wall.record_present(number, at);
            }
            if wall.released.is_some_and(|r| r >= ready.number) {
                // A rejoining or late node: the others have shown this frame already.
                return Ok(Release {
                    number: ready.number,
                    missing: Vec::new(),
                });
            }
            // A node ready for a later frame skipped the earlier ones: they wait for it no more.
            for (_, earlier) in wall.pending.range_mut(..ready.number) {
                earlier.ready.insert(ready.node.clone());
            }
            let pending = wall.pending.entry(ready.number).or_insert_with(|| Pending {
                ready: BTreeSet::new(),
                deadline: Instant::now() + ready.timeout,
                done: watch::Sender::new(None),
            });
            pending.ready.insert(ready.node.clone());
            let receiver = pending.done.subscribe();
            wall.release_complete();
            receiver
        };
        let deadline = lock(&self.walls)
            .get(&ready.wall)
            .and_then(|w| w.pending.get(&ready.number))
            .map(|p| p.deadline);
        let released = match deadline {
            None => None,
            Some(deadline) => {
                let wait = done.wait_for(Option::is_some);
                tokio::time::timeout_at(deadline.into(), wait)
                    .await
                    .ok()
                    .and_then(|r| r.ok().map(|v| v.clone()))
            }
        };
        if let Some(Some(release)) = released {
            return Ok(release);
        }
        // Released before we looked, or timed out: settle it under the lock.
        let mut walls = lock(&self.walls);
        let wall = walls.entry(ready.wall.clone()).or_default();
        if let Some(pending) = wall.pending.get(&ready.number) {
            let missing = wall.waiting_for(pending);
            if !missing.is_empty() {
                tracing::warn!(wall = %ready.wall, frame = ready.number, ?missing,
                    "nodes not ready in time; presenting without them");
            }
            wall.absent.extend(missing.iter().cloned());
            wall.release(ready.number, missing);
        }
        drop(walls);
        let release = done.borrow().clone();
        Ok(release.unwrap_or(Release {
            number: ready.number,
            missing: Vec::new(),
        }))
    }

    /// `node` of `wall` went away (its frame stream closed): stop waiting for it.
    pub fn left(&self, wall: &str, node: &str) {
        let mut walls = lock(&self.walls);
        if let Some(w) = walls.get_mut(wall) {
            w.absent.insert(node.to_owned());
            w.release_complete();
        }
    }

    /// The spread of present times of every wall so far.
    pub fn spreads(&self) -> Vec<(String, SpreadStats)> {
        let walls = lock(&self.walls);
        let mut out: Vec<(String, SpreadStats)> =
            walls.iter().map(|(k, w)| (k.clone(), w.spread)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ready(node: &str, number: u64, timeout_ms: u64) -> Ready {
        Ready {
            wall: "w".into(),
            node: node.into(),
            nodes: vec!["a".into(), "b".into(), "c".into()],
            number,
            timeout: Duration::from_millis(timeout_ms),
            previous: None,
        }
    }

    #[tokio::test]
    async fn a_frame_is_released_when_every_node_is_ready() {
        let sync = Arc::new(WallSync::default());
        let started = Instant::now();
        let waits: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|n| {
                let sync = sync.clone();
                tokio::spawn(async move { sync.ready(ready(n, 0, 5_000)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            waits.iter().all(|w| !w.is_finished()),
            "released before c was ready"
        );
        let c = sync.ready(ready("c", 0, 5_000)).await;
        assert_eq!(
            c,
            Ok(Release {
                number: 0,
                missing: vec![]
            })
        );
        for w in waits {
            let got = w.await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                got,
                Ok(Release {
                    number: 0,
                    missing: vec![]
                })
            );
        }
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_missing_node_costs_one_timeout_then_is_left_out_until_it_returns() {
        let sync = Arc::new(WallSync::default());
        let (s1, s2) = (sync.clone(), sync.clone());
        let a = tokio::spawn(async move { s1.ready(ready("a", 0, 200)).await });
        let b = tokio::spawn(async move { s2.ready(ready("b", 0, 200)).await });
        let started = Instant::now();
        let a = a.await.unwrap_or_else(|e| panic!("{e}"));
        let _ = b.await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(
            a,
            Ok(Release {
                number: 0,
                missing: vec!["c".into()]
            })
        );
        // Frame 1: c is absent, so a and b go on without waiting.
        let (s1, s2) = (sync.clone(), sync.clone());
        let started = Instant::now();
        let a = tokio::spawn(async move { s1.ready(ready("a", 1, 5_000)).await });
        let b = s2.ready(ready("b", 1, 5_000)).await;
        assert_eq!(
            b,
            Ok(Release {
                number: 1,
                missing: vec![]
            })
        );
        let _ = a.await;
        assert!(started.elapsed() < Duration::from_secs(2));
        // c comes back on frame 1, already shown: it presents at once and rejoins.
        assert_eq!(
            sync.ready(ready("c", 1, 5_000)).await,
            Ok(Release {
                number: 1,
                missing: vec![]
            })
        );
        // Frame 2 waits for c again.
        let (s1, s2) = (sync.clone(), sync.clone());
        let a = tokio::spawn(async move { s1.ready(ready("a", 2, 5_000)).await });
        let b = tokio::spawn(async move { s2.ready(ready("b", 2, 5_000)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!a.is_finished() && !b.is_finished());
        let _ = sync.ready(ready("c", 2, 5_000)).await;
        assert!(a.await.is_ok() && b.await.is_ok());
    }

    #[tokio::test]
    async fn a_node_that_leaves_releases_the_others_at_once() {
        let sync = Arc::new(WallSync::default());
        let (s1, s2) = (sync.clone(), sync.clone());
        let a = tokio::spawn(async move { s1.ready(ready("a", 0, 30_000)).await });
        let b = tokio::spawn(async move { s2.ready(ready("b", 0, 30_000)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        sync.left("w", "c");
        let a = a.await.unwrap_or_else(|e| panic!("{e}"));
        let _ = b.await;
        assert_eq!(a.map(|r| r.number), Ok(0));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn present_spreads_are_measured() {
        let sync = Arc::new(WallSync::default());
        let nodes = ["a", "b", "c"];
        for number in 0..2u64 {
            let mut tasks = Vec::new();
            for (k, n) in nodes.iter().enumerate() {
                let sync = sync.clone();
                let mut r = ready(n, number, 5_000);
                if number == 1 {
                    let at =
                        DateTime::from_timestamp(100, k as u32 * 1_000_000).unwrap_or_default();
                    r.previous = Some((0, at));
                }
                tasks.push(tokio::spawn(async move { sync.ready(r).await }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        let spreads = sync.spreads();
        assert_eq!(spreads[0].1.frames, 1);
        assert!((spreads[0].1.max_seconds - 0.002).abs() < 1e-9);
    }

    #[tokio::test]
    async fn a_node_that_skips_a_frame_does_not_hold_it_back() {
        let sync = Arc::new(WallSync::default());
        let (s1, s2) = (sync.clone(), sync.clone());
        let a = tokio::spawn(async move { s1.ready(ready("a", 0, 30_000)).await });
        let b = tokio::spawn(async move { s2.ready(ready("b", 0, 30_000)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // c fell behind and skipped frame 0: once a and b are ready for 1 too, both go.
        let started = Instant::now();
        let (s1, s2) = (sync.clone(), sync.clone());
        let c = tokio::spawn(async move { s1.ready(ready("c", 1, 30_000)).await });
        assert_eq!(a.await.ok().and_then(Result::ok).map(|r| r.number), Some(0));
        assert_eq!(b.await.ok().and_then(Result::ok).map(|r| r.number), Some(0));
        let a1 = tokio::spawn(async move { s2.ready(ready("a", 1, 30_000)).await });
        let b1 = sync.ready(ready("b", 1, 30_000)).await;
        assert_eq!(b1.map(|r| r.number), Ok(1));
        assert!(a1.await.is_ok() && c.await.is_ok());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_node_outside_the_wall_is_refused() {
        let sync = WallSync::default();
        let err = sync.ready(ready("z", 0, 100)).await;
        assert_eq!(
            err,
            Err(WallSyncError::Invalid(
                "node \"z\" is not among the wall's nodes [\"a\", \"b\", \"c\"]".into()
            ))
        );
    }
}
