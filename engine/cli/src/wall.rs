//! `isotach wall` (a display-wall node) and `isotach replay` (case-study replays).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use isotach_core::PipelineSpec;
use isotach_service::client::ReplayClient;
use isotach_service::replay::{PlayState, ReplayChange, ReplayStatus};
use isotach_viz::{NodeConfig, WallSpec, WindowOptions, has_display, run_node, run_window_node};

use crate::service::ServerArgs;

#[derive(clap::Args)]
pub(crate) struct WallArgs {
    /// Wall file, TOML: rows × columns of tiles, tile size, bezels, nodes and their tiles.
    #[arg(long)]
    wall: PathBuf,
    /// This node's name in the wall file.
    #[arg(long)]
    node: String,
    /// Display channel shown (a frames sink's or a replay's `channel`).
    #[arg(long, default_value = "wall")]
    channel: String,
    /// Draw without a window: write each presented tile as `r{row}c{col}_s{step}.png` (and the
    /// present log, `presented.csv`) into this folder. Without it, each tile gets a window.
    #[arg(long)]
    headless: Option<PathBuf>,
    /// Show tile k of this node (in the wall file's order) borderless fullscreen on monitor k.
    /// Default: a window per tile of the tile's size, scaled down alike when they do not fit on
    /// the screen.
    #[arg(long, conflicts_with = "headless")]
    fullscreen: bool,
    /// With windows: the folder of the present log, `presented.csv` (one line per presented
    /// frame); default: the current folder. Headless, the log goes into the --headless folder.
    #[arg(long, value_name = "DIR", conflicts_with = "headless")]
    log: Option<PathBuf>,
    /// Exit after presenting this many frames (default: run until stopped).
    #[arg(long)]
    frames: Option<u64>,
    #[command(flatten)]
    server: ServerArgs,
}

pub(crate) fn wall(args: &WallArgs) -> Result<()> {
    let wall = WallSpec::load(&args.wall)?;
    wall.node(&args.node)?;
    let windowed = args.headless.is_none();
    if windowed && !has_display() {
        bail!(
            "isotach wall --node {}: windows need a display, and DISPLAY is not set; run it in a \
             graphical session (or under Xvfb), or pass --headless DIR to write each presented \
             tile as a PNG instead",
            args.node
        );
    }
    let output = match (&args.headless, &args.log) {
        (Some(folder), _) | (None, Some(folder)) => folder.clone(),
        (None, None) => PathBuf::from("."),
    };
    let config = NodeConfig {
        wall,
        node: args.node.clone(),
        server: args.server.address(),
        channel: args.channel.clone(),
        output,
        frames: args.frames,
    };
    let summary = if windowed {
        let options = WindowOptions {
            fullscreen: args.fullscreen,
        };
        let interrupted = async {
            // Without a handler Ctrl-C keeps its default (the process ends at once).
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        run_window_node(config, options, interrupted)?
    } else {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        runtime.block_on(run_node(config))?
    };
    println!(
        "node {} presented {} frames ({} connections)",
        args.node, summary.presented, summary.connections
    );
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    #[command(subcommand)]
    command: ReplayCommand,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(clap::Subcommand)]
enum ReplayCommand {
    /// Start replaying a spec's time window on its frames sink's channel.
    Start {
        /// Pipeline spec, TOML, whose frames sink names a `channel`.
        spec: PathBuf,
        /// Playback rate, time steps per second.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Start over after the last step.
        #[arg(long = "loop")]
        looping: bool,
        /// Start paused (on the first step).
        #[arg(long)]
        paused: bool,
    },
    /// Pause a replay.
    Pause { id: String },
    /// Play a paused (or finished) replay.
    Play { id: String },
    /// Move the playhead to frame INDEX (0 is the window's first step).
    Seek { id: String, index: u64 },
    /// Change the rate, time steps per second.
    Speed { id: String, rate: f64 },
    /// Loop (on) or not (off).
    Loop {
        id: String,
        #[arg(value_parser = ["on", "off"])]
        mode: String,
    },
    /// Show a replay's state.
    Status { id: String },
    /// Stop a replay and free its frames.
    Stop { id: String },
}

fn print_status(s: &ReplayStatus) {
    let state = match s.state {
        PlayState::Playing => "playing",
        PlayState::Paused => "paused",
        PlayState::Finished => "finished",
        PlayState::Stopped => "stopped",
        PlayState::Failed => "failed",
    };
    println!(
        "replay {} (job {}) on channel {}: {state}, frame {}/{} ({} computed, {} late), {} steps/s{}{}",
        s.id,
        s.job_id,
        s.channel,
        s.position,
        s.frames,
        s.ready,
        s.late,
        s.steps_per_second,
        if s.looping { ", looping" } else { "" },
        s.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
}

pub(crate) fn replay(args: &ReplayArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut client = ReplayClient::connect(&args.server.address()).await?;
        let change = |f: fn(&mut ReplayChange)| {
            let mut c = ReplayChange::default();
            f(&mut c);
            c
        };
        let status = match &args.command {
            ReplayCommand::Start {
                spec,
                rate,
                looping,
                paused,
            } => {
                let text = std::fs::read_to_string(spec)
                    .with_context(|| format!("reading {}", spec.display()))?;
                let spec_value = PipelineSpec::from_toml_str(&text)
                    .with_context(|| format!("spec {}", spec.display()))?;
                client
                    .start(&spec_value, *rate, *looping, *paused)
                    .await
                    .with_context(|| {
                        format!(
                            "starting a replay of {} on {}",
                            spec.display(),
                            args.server.server
                        )
                    })?
            }
            ReplayCommand::Pause { id } => {
                client
                    .control(id, &change(|c| c.paused = Some(true)))
                    .await?
            }
            ReplayCommand::Play { id } => {
                client
                    .control(id, &change(|c| c.paused = Some(false)))
                    .await?
            }
            ReplayCommand::Seek { id, index } => {
                let c = ReplayChange {
                    seek: Some(*index),
                    ..ReplayChange::default()
                };
                client.control(id, &c).await?
            }
            ReplayCommand::Speed { id, rate } => {
                let c = ReplayChange {
                    steps_per_second: Some(*rate),
                    ..ReplayChange::default()
                };
                client.control(id, &c).await?
            }
            ReplayCommand::Loop { id, mode } => {
                let c = ReplayChange {
                    looping: Some(mode == "on"),
                    ..ReplayChange::default()
                };
                client.control(id, &c).await?
            }
            ReplayCommand::Status { id } => client.get(id).await?,
            ReplayCommand::Stop { id } => client.stop(id).await?,
        };
        print_status(&status);
        Ok(())
    })
}
