//! A wall node: the process that drives some tiles of a display wall.
//!
//! It subscribes to a display channel of `isotach serve` (`FrameService`), draws each frame's
//! part of the wall's virtual canvas for each of its tiles, says it is ready (`WallSync`), and
//! presents when the wall's barrier answers, through a [`Present`]: headless, the time is
//! recorded, then each tile is written as a PNG; with a display, the tiles' windows show the
//! frame (`crate::window`). Either way a line goes into the present log. When the server goes
//! away the node reconnects and rejoins on the channel's current frame.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use isotach_core::Frame;
use isotach_proto::connect::{Bearer, ConnectError, ServerAddress};
use isotach_proto::to_timestamp;
use isotach_proto::v1;
use isotach_proto::v1::frame_service_client::FrameServiceClient;
use isotach_proto::v1::wall_sync_client::WallSyncClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::present::{PngTiles, Present, node_tiles};
use crate::{NodeSpec, Renderer, VizError, WallSpec, frame_scene};

/// The largest frame message accepted (a frame carries its fields).
pub const MAX_FRAME_MESSAGE_BYTES: usize = 256 << 20;
/// The file, in the node's log folder, with one line per presented frame.
pub const PRESENT_LOG: &str = "presented.csv";

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The wall.
    pub wall: WallSpec,
    /// This node's name in the wall file.
    pub node: String,
    /// The server (`http://10.0.0.5:50051` or `https://…`), its token and CA.
    pub server: ServerAddress,
    /// The display channel shown.
    pub channel: String,
    /// Folder of the present log; headless ([`run_node`]) also of the presented tiles
    /// (`r{row}c{col}_s{step}.png`).
    pub output: PathBuf,
    /// Stop after presenting this many frames; `None`: run until killed.
    pub frames: Option<u64>,
}

/// What a node did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSummary {
    /// Frames presented.
    pub presented: u64,
    /// Times the node (re)connected.
    pub connections: u64,
}

type Frames = FrameServiceClient<InterceptedService<Channel, Bearer>>;
type Sync = WallSyncClient<InterceptedService<Channel, Bearer>>;

pub(crate) fn node_error(node: &str, reason: impl Into<String>) -> VizError {
    VizError::Node {
        node: node.to_owned(),
        reason: reason.into(),
    }
}

/// One line of the present log.
#[derive(Debug, Clone, PartialEq)]
pub struct Presented {
    /// The frame's number in its channel.
    pub number: u64,
    /// The time step shown.
    pub step: u64,
    /// When the node presented it.
    pub presented_at: DateTime<Utc>,
    /// When the engine completed the step.
    pub completed_at: DateTime<Utc>,
    /// Drawing every tile of the node, milliseconds.
    pub render_ms: f64,
    /// Waiting at the barrier, milliseconds.
    pub waited_ms: f64,
    /// Nodes left out of this frame.
    pub missing: Vec<String>,
}

impl Presented {
    const HEADER: &'static str =
        "number,step,presented_unix_ns,completed_unix_ns,render_ms,waited_ms,missing";

    fn line(&self) -> String {
        format!(
            "{},{},{},{},{:.3},{:.3},{}",
            self.number,
            self.step,
            self.presented_at.timestamp_nanos_opt().unwrap_or_default(),
            self.completed_at.timestamp_nanos_opt().unwrap_or_default(),
            self.render_ms,
            self.waited_ms,
            self.missing.join(";")
        )
    }

    /// Reads a node's present log.
    pub fn read_log(path: &Path) -> Result<Vec<Presented>, VizError> {
        let text = std::fs::read_to_string(path).map_err(|source| VizError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |line: &str| VizError::Node {
            node: path.display().to_string(),
            reason: format!("not a present-log line: {line:?}"),
        };
        text.lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                if f.len() != 7 {
                    return Err(bad(line));
                }
                let int = |s: &str| s.parse::<i64>().map_err(|_| bad(line));
                let float = |s: &str| s.parse::<f64>().map_err(|_| bad(line));
                Ok(Presented {
                    number: int(f[0])? as u64,
                    step: int(f[1])? as u64,
                    presented_at: DateTime::from_timestamp_nanos(int(f[2])?),
                    completed_at: DateTime::from_timestamp_nanos(int(f[3])?),
                    render_ms: float(f[4])?,
                    waited_ms: float(f[5])?,
                    missing: f[6]
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .collect()
    }
}

/// Runs a headless node until it has presented `config.frames` frames (or forever): each
/// presented tile is written as a PNG into `config.output`, beside the present log.
pub async fn run_node(config: NodeConfig) -> Result<NodeSummary, VizError> {
    let tiles = node_tiles(&config.wall, config.wall.node(&config.node)?);
    let folder = config.output.clone();
    let mut summary = NodeSummary::default();
    drive_node(&config, &mut summary, move || {
        let tiles = PngTiles::new(Renderer::new_headless()?, tiles, folder);
        Ok(Box::new(tiles) as Box<dyn Present>)
    })
    .await?;
    Ok(summary)
}

/// Runs a node, presenting through what `open` returns (called on a blocking thread), until it
/// has presented `config.frames` frames (or forever). `summary` is kept up to date as frames are
/// presented, so it holds what was done even when the caller drops this future to stop.
pub(crate) async fn drive_node(
    config: &NodeConfig,
    summary: &mut NodeSummary,
    open: impl FnOnce() -> Result<Box<dyn Present>, VizError> + Send + 'static,
) -> Result<(), VizError> {
    let node = config.wall.node(&config.node)?.clone();
    let fatal = |e: ConnectError| node_error(&config.node, e.to_string());
    // Checked once, before anything is drawn: no reconnect fixes a bad URL, token or CA file.
    let endpoint = config
        .server
        .endpoint()
        .map_err(fatal)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let bearer = config.server.bearer().map_err(fatal)?;
    std::fs::create_dir_all(&config.output).map_err(|source| VizError::Io {
        path: config.output.clone(),
        source,
    })?;
    let log_path = config.output.join(PRESENT_LOG);
    let mut log = std::fs::File::create(&log_path).map_err(|source| VizError::Io {
        path: log_path.clone(),
        source,
    })?;
    writeln!(log, "{}", Presented::HEADER).map_err(|source| VizError::Io {
        path: log_path.clone(),
        source,
    })?;
    let presenter = tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| node_error(&config.node, e.to_string()))??;
    tracing::info!(node = %config.node, adapter = %presenter.adapter_summary(), "wall node renderer ready");
    let mut state = NodeState {
        presenter: Arc::new(Mutex::new(presenter)),
        log,
        log_path,
        previous: None,
        summary,
    };
    loop {
        match serve_once(config, &node, &endpoint, &bearer, &mut state).await {
            Ok(true) => return Ok(()),
            Ok(false) => tracing::warn!(node = %config.node, "frame stream ended; reconnecting"),
            Err(Reconnect::Fatal(e)) => return Err(e),
            Err(Reconnect::Retry(reason)) => {
                tracing::warn!(node = %config.node, %reason, "server unreachable; reconnecting");
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct NodeState<'a> {
    presenter: Arc<Mutex<Box<dyn Present>>>,
    log: std::fs::File,
    log_path: PathBuf,
    previous: Option<(u64, DateTime<Utc>)>,
    summary: &'a mut NodeSummary,
}

enum Reconnect {
    /// The connection broke: try again.
    Retry(String),
    /// Something no reconnect fixes (a refused token, a bad frame, a disk error).
    Fatal(VizError),
}

impl From<tonic::Status> for Reconnect {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        match status.code() {
            Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::Internal
            | Code::DeadlineExceeded
            | Code::Aborted => Self::Retry(status.to_string()),
            _ => Self::Fatal(VizError::Server {
                code: format!("{:?}", status.code()),
                message: status.message().to_owned(),
            }),
        }
    }
}

/// One connection: subscribe, then draw, sync and present every frame. `Ok(true)` when the
/// node has presented all it was asked to.
async fn serve_once(
    config: &NodeConfig,
    node: &NodeSpec,
    endpoint: &Endpoint,
    bearer: &Bearer,
    state: &mut NodeState<'_>,
) -> Result<bool, Reconnect> {
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| match config.server.connect_error(&e) {
            untrusted @ ConnectError::Untrusted { .. } => {
                Reconnect::Fatal(node_error(&config.node, untrusted.to_string()))
            }
            unreachable => Reconnect::Retry(unreachable.to_string()),
        })?;
    let bearer = bearer.clone();
    let mut frames: Frames = FrameServiceClient::with_interceptor(channel.clone(), bearer.clone())
        .max_decoding_message_size(MAX_FRAME_MESSAGE_BYTES);
    let mut sync: Sync = WallSyncClient::with_interceptor(channel, bearer);
    let wall = &config.wall;
    let canvas = wall.canvas();
    let viewport = wall.node_viewport(node);
    let mut stream = frames
        .subscribe(v1::FrameRequest {
            target: Some(v1::frame_request::Target::Channel(config.channel.clone())),
            viewport: Some(v1::Viewport {
                x: viewport.x,
                y: viewport.y,
                width: viewport.width,
                height: viewport.height,
            }),
            wall: wall.name.clone(),
            node: config.node.clone(),
            canvas_width_px: canvas.width_px,
            canvas_height_px: canvas.height_px,
        })
        .await?
        .into_inner();
    state.summary.connections += 1;
    tracing::info!(node = %config.node, channel = %config.channel, server = %config.server.url, "subscribed");
    let nodes: Vec<String> = wall.nodes.iter().map(|n| n.name.clone()).collect();
    while let Some(message) = stream.message().await? {
        let frame = Frame::try_from(message).map_err(|e| {
            Reconnect::Fatal(node_error(
                &config.node,
                format!("a frame from the server: {e}"),
            ))
        })?;
        let started = Instant::now();
        let presenter = state.presenter.clone();
        let frame = Arc::new(frame);
        let drawing = frame.clone();
        tokio::task::spawn_blocking(move || -> Result<(), VizError> {
            let scene = frame_scene(&drawing)?;
            let mut presenter = presenter.lock().unwrap_or_else(|p| p.into_inner());
            presenter.draw(&scene, canvas)
        })
        .await
        .map_err(|e| Reconnect::Fatal(node_error(&config.node, e.to_string())))?
        .map_err(Reconnect::Fatal)?;
        let render_ms = started.elapsed().as_secs_f64() * 1e3;

        let order = sync
            .ready(v1::ReadyRequest {
                wall: wall.name.clone(),
                node: config.node.clone(),
                nodes: nodes.clone(),
                channel: config.channel.clone(),
                number: frame.number,
                timeout_ms: wall.present_timeout_ms,
                previous_number: state.previous.map_or(0, |p| p.0),
                previous_presented_at: state.previous.map(|p| to_timestamp(p.1)),
            })
            .await?
            .into_inner();
        let presenter = state.presenter.clone();
        let step = frame.step();
        let presented_at = tokio::task::spawn_blocking(move || {
            let mut presenter = presenter.lock().unwrap_or_else(|p| p.into_inner());
            presenter.present(step)
        })
        .await
        .map_err(|e| Reconnect::Fatal(node_error(&config.node, e.to_string())))?
        .map_err(Reconnect::Fatal)?;
        state.previous = Some((frame.number, presented_at));
        let record = Presented {
            number: frame.number,
            step: frame.step(),
            presented_at,
            completed_at: frame.completed_at,
            render_ms,
            waited_ms: order.waited_ms,
            missing: order.missing,
        };
        writeln!(state.log, "{}", record.line())
            .and_then(|()| state.log.flush())
            .map_err(|source| {
                Reconnect::Fatal(VizError::Io {
                    path: state.log_path.clone(),
                    source,
                })
            })?;
        state.summary.presented += 1;
        if config.frames.is_some_and(|n| state.summary.presented >= n) {
            return Ok(true);
        }
    }
    Ok(false)
}
