//! The gRPC edge of the display side: `FrameService` (frames of a job or a display channel),
//! `WallSync` (the walls' two-phase present) and `ReplayControl` (case-study replays). Wire types
//! are converted here and go no further.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use isotach_core::{PipelineSpec, valid_channel_name};
use isotach_proto::from_timestamp;
use isotach_proto::v1;
use isotach_proto::v1::frame_service_server::FrameService;
use isotach_proto::v1::replay_control_server::ReplayControl;
use isotach_proto::v1::wall_sync_server::WallSync as WallSyncRpc;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::frames::{ChannelKey, FrameHub};
use crate::jobs::{JobManager, parse_id};
use crate::replay::{PlayState, ReplayChange, ReplayStatus, Replays};
use crate::wall_sync::{Ready, WallSync, WallSyncError};

type FrameStream = Pin<Box<dyn Stream<Item = Result<v1::Frame, Status>> + Send>>;

/// `FrameService` over the server's display channels.
pub(crate) struct Frames {
    pub(crate) manager: Arc<JobManager>,
    pub(crate) walls: Arc<WallSync>,
}

/// Tells the wall barrier that a node's frame stream closed, whenever and however it closes.
struct NodeGuard {
    walls: Arc<WallSync>,
    wall: String,
    node: String,
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        tracing::info!(wall = %self.wall, node = %self.node, "wall node left");
        self.walls.left(&self.wall, &self.node);
    }
}

fn check_viewport(request: &v1::FrameRequest) -> Result<(), Status> {
    let Some(v) = &request.viewport else {
        return Ok(());
    };
    if v.width == 0 || v.height == 0 {
        return Err(Status::invalid_argument(format!(
            "viewport {}×{} at ({}, {}) is empty",
            v.width, v.height, v.x, v.y
        )));
    }
    let (w, h) = (request.canvas_width_px, request.canvas_height_px);
    if (w, h) != (0, 0)
        && (u64::from(v.x) + u64::from(v.width) > u64::from(w)
            || u64::from(v.y) + u64::from(v.height) > u64::from(h))
    {
        return Err(Status::invalid_argument(format!(
            "viewport {}×{} at ({}, {}) does not fit inside the {w}×{h} canvas",
            v.width, v.height, v.x, v.y
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl FrameService for Frames {
    type SubscribeStream = FrameStream;

    async fn subscribe(
        &self,
        request: Request<v1::FrameRequest>,
    ) -> Result<Response<FrameStream>, Status> {
        let request = request.into_inner();
        check_viewport(&request)?;
        let hub: Arc<FrameHub> = self.manager.frames().clone();
        let key = match &request.target {
            Some(v1::frame_request::Target::JobId(id)) => {
                let id = parse_id(id)?;
                let job = self.manager.get(id)?;
                if !hub.exists(&ChannelKey::Job(id)) && job.state.is_final() {
                    return Err(Status::failed_precondition(format!(
                        "job {id} is {}: its frames are no longer streamed",
                        job.state.as_str()
                    )));
                }
                ChannelKey::Job(id)
            }
            Some(v1::frame_request::Target::Channel(name)) => {
                if !valid_channel_name(name) {
                    return Err(Status::invalid_argument(format!(
                        "channel {name:?} is not a channel name: 1 to 64 letters, digits, '-', \
                         '_' or '.'"
                    )));
                }
                ChannelKey::Named(name.clone())
            }
            None => {
                return Err(Status::invalid_argument(
                    "target is required: a job_id or a channel",
                ));
            }
        };
        let guard = match (request.wall.is_empty(), request.node.is_empty()) {
            (true, true) => None,
            (false, false) => {
                tracing::info!(wall = %request.wall, node = %request.node, %key, "wall node joined");
                Some(NodeGuard {
                    walls: self.walls.clone(),
                    wall: request.wall.clone(),
                    node: request.node.clone(),
                })
            }
            _ => {
                return Err(Status::invalid_argument(
                    "wall and node go together: set both (a wall node) or neither (a viewer)",
                ));
            }
        };
        let subscription = hub.subscribe(&key);
        Ok(Response::new(frame_stream(subscription, key, guard)))
    }
}

/// The current frame, then every new one; a subscriber that lags skips ahead (logged), and the
/// stream ends when the channel closes. The node guard lives as long as the stream's task, which
/// ends as soon as the client goes away, even while no frames flow.
fn frame_stream(
    subscription: crate::frames::Subscription,
    key: ChannelKey,
    guard: Option<NodeGuard>,
) -> FrameStream {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let _guard = guard;
        let crate::frames::Subscription {
            current,
            mut receiver,
        } = subscription;
        if let Some(frame) = current
            && tx.send(Ok(v1::Frame::from(frame.as_ref()))).await.is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                next = receiver.recv() => match next {
                    Ok(frame) => {
                        if tx.send(Ok(v1::Frame::from(frame.as_ref()))).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::warn!(%key, skipped, "a frame subscriber fell behind; skipping to newer frames");
                    }
                    Err(RecvError::Closed) => return,
                },
                () = tx.closed() => return,
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// `WallSync` over the server's barrier.
pub(crate) struct Walls {
    pub(crate) walls: Arc<WallSync>,
}

#[tonic::async_trait]
impl WallSyncRpc for Walls {
    async fn ready(
        &self,
        request: Request<v1::ReadyRequest>,
    ) -> Result<Response<v1::PresentOrder>, Status> {
        let r = request.into_inner();
        if !(1..=60_000).contains(&r.timeout_ms) {
            return Err(Status::invalid_argument(format!(
                "timeout_ms {} is outside 1..=60000",
                r.timeout_ms
            )));
        }
        for name in std::iter::once(&r.wall).chain(&r.nodes) {
            if !valid_channel_name(name) {
                return Err(Status::invalid_argument(format!(
                    "{name:?} is not a wall or node name: 1 to 64 letters, digits, '-', '_' or '.'"
                )));
            }
        }
        let previous = match &r.previous_presented_at {
            Some(at) => Some((
                r.previous_number,
                from_timestamp("previous_presented_at", at)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?,
            )),
            None => None,
        };
        let started = std::time::Instant::now();
        let release = self
            .walls
            .ready(Ready {
                wall: r.wall,
                node: r.node,
                nodes: r.nodes,
                number: r.number,
                timeout: Duration::from_millis(u64::from(r.timeout_ms)),
                previous,
            })
            .await
            .map_err(|WallSyncError::Invalid(message)| Status::invalid_argument(message))?;
        Ok(Response::new(v1::PresentOrder {
            number: release.number,
            missing: release.missing,
            waited_ms: started.elapsed().as_secs_f64() * 1e3,
        }))
    }
}

/// `ReplayControl` over the server's replays.
pub(crate) struct ReplayRpc {
    pub(crate) replays: Arc<Replays>,
}

fn replay_to_wire(status: &ReplayStatus) -> v1::Replay {
    let state = match status.state {
        PlayState::Playing => v1::ReplayState::Playing,
        PlayState::Paused => v1::ReplayState::Paused,
        PlayState::Finished => v1::ReplayState::Finished,
        PlayState::Stopped => v1::ReplayState::Stopped,
        PlayState::Failed => v1::ReplayState::Failed,
    };
    v1::Replay {
        replay_id: status.id.clone(),
        channel: status.channel.clone(),
        state: state as i32,
        position: status.position,
        frames: status.frames,
        ready: status.ready,
        steps_per_second: status.steps_per_second,
        r#loop: status.looping,
        late: status.late,
        error: status.error.clone().unwrap_or_default(),
        job_id: status.job_id.to_string(),
    }
}

/// A replay's state from the wire (for clients).
pub(crate) fn replay_from_wire(r: v1::Replay) -> ReplayStatus {
    let state = match r.state() {
        v1::ReplayState::Playing => PlayState::Playing,
        v1::ReplayState::Paused => PlayState::Paused,
        v1::ReplayState::Finished => PlayState::Finished,
        v1::ReplayState::Stopped | v1::ReplayState::Unspecified => PlayState::Stopped,
        v1::ReplayState::Failed => PlayState::Failed,
    };
    ReplayStatus {
        id: r.replay_id,
        job_id: r.job_id.parse().unwrap_or_default(),
        channel: r.channel,
        state,
        position: r.position,
        frames: r.frames,
        ready: r.ready,
        steps_per_second: r.steps_per_second,
        looping: r.r#loop,
        late: r.late,
        error: (!r.error.is_empty()).then_some(r.error),
    }
}

#[tonic::async_trait]
impl ReplayControl for ReplayRpc {
    async fn start(
        &self,
        request: Request<v1::StartReplayRequest>,
    ) -> Result<Response<v1::Replay>, Status> {
        let by = crate::server::caller(&request);
        let request = request.into_inner();
        let wire = request
            .spec
            .ok_or_else(|| Status::invalid_argument("spec is required"))?;
        let spec = PipelineSpec::try_from(wire)
            .map_err(|e| Status::invalid_argument(format!("spec: {e}")))?;
        let replays = self.replays.clone();
        let runtime = tokio::runtime::Handle::current();
        let rate = request.steps_per_second.unwrap_or(1.0);
        let status = tokio::task::spawn_blocking(move || {
            replays.start(spec, &by, rate, request.r#loop, request.paused, &runtime)
        })
        .await
        .map_err(|e| Status::internal(format!("replay task: {e}")))??;
        Ok(Response::new(replay_to_wire(&status)))
    }

    async fn control(
        &self,
        request: Request<v1::ReplayCommand>,
    ) -> Result<Response<v1::Replay>, Status> {
        let c = request.into_inner();
        let change = ReplayChange {
            paused: c.paused,
            seek: c.seek,
            steps_per_second: c.steps_per_second,
            looping: c.r#loop,
        };
        let status = self.replays.control(&c.replay_id, &change)?;
        Ok(Response::new(replay_to_wire(&status)))
    }

    async fn get(
        &self,
        request: Request<v1::GetReplayRequest>,
    ) -> Result<Response<v1::Replay>, Status> {
        let status = self.replays.get(&request.get_ref().replay_id)?;
        Ok(Response::new(replay_to_wire(&status)))
    }

    async fn stop(
        &self,
        request: Request<v1::GetReplayRequest>,
    ) -> Result<Response<v1::Replay>, Status> {
        let by = crate::server::caller(&request);
        let status = self.replays.stop(&request.get_ref().replay_id, &by).await?;
        Ok(Response::new(replay_to_wire(&status)))
    }
}
