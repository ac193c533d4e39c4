//! `isotach`: the one command of Isotach.
//!
//! `generate` writes the synthetic atmosphere, `inspect` describes a store, `run` executes a
//! pipeline spec in-process, and `demo` runs the standard pipeline on an embedded default dataset.
//! `serve` runs the gRPC job service; `submit`, `jobs`, `watch` and `cancel` are its clients, and
//! `sweep` runs a templated experiment through it (one job per point of a parameter grid).
//! `worker` serves ONNX models over the Open Inference Protocol for `infer` steps. `wall` runs a
//! display-wall node on a channel of `serve`, and `replay` plays case studies onto channels.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use isotach_connectors::StoreOptions;

mod demo;
mod run;
mod service;
mod sweep;
mod wall;
mod worker;

#[derive(Parser)]
#[command(
    name = "isotach",
    version,
    about = "Streams atmospheric datasets into pictures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic atmosphere (jet, waves, atmospheric rivers) as a Zarr v3 store.
    Generate(GenerateArgs),
    /// Describe a store: variables, dimensions, units, grid, time range.
    Inspect {
        /// Store path or file:// URI.
        uri: String,
    },
    /// Run a pipeline spec (TOML) in this process.
    Run(run::RunArgs),
    /// Generate a small dataset if missing, run the standard pipeline on it, and write frames.
    Demo(demo::DemoArgs),
    /// Serve the gRPC job service: queue, run and record submitted pipelines.
    Serve(service::ServeArgs),
    /// Submit a pipeline spec (TOML) to a job server, or rerun an earlier job.
    Submit(service::SubmitArgs),
    /// List a job server's jobs, newest first.
    Jobs(service::JobsArgs),
    /// Follow a job's events until it ends.
    Watch(service::WatchArgs),
    /// Cancel a queued or running job.
    Cancel(service::CancelArgs),
    /// Run a templated experiment: one job per point of a parameter grid, and a results table.
    Sweep(sweep::SweepArgs),
    /// Serve ONNX models over the Open Inference Protocol (KServe v2 gRPC), with dynamic batching.
    Worker(worker::WorkerArgs),
    /// Drive tiles of a display wall: draw a channel's frames, present in lock-step with the
    /// other nodes.
    Wall(wall::WallArgs),
    /// Replay a case study on a display channel: start, pause, play, seek, speed, loop, stop.
    Replay(wall::ReplayArgs),
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Output store (a new or empty folder).
    #[arg(long, short)]
    out: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Grid spacing in degrees (0.25 gives ERA5's 1440 × 721).
    #[arg(long, default_value_t = 1.0)]
    resolution_deg: f64,
    /// Number of time steps.
    #[arg(long, default_value_t = 40)]
    steps: usize,
    /// Hours between steps.
    #[arg(long, default_value_t = 6)]
    step_hours: i64,
    /// First instant, RFC 3339.
    #[arg(long, default_value = "2017-01-01T00:00:00Z")]
    start: String,
    /// Replace the output folder if it exists.
    #[arg(long)]
    force: bool,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wgpu=warn,wgpu_hal=off,naga=warn,winit=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Generate(args) => generate(&args),
        Command::Inspect { uri } => inspect(&uri),
        Command::Run(args) => run::run(&args),
        Command::Demo(args) => demo::demo(&args),
        Command::Serve(args) => service::serve(&args),
        Command::Submit(args) => service::submit(&args),
        Command::Jobs(args) => service::jobs(&args),
        Command::Watch(args) => service::watch(&args),
        Command::Cancel(args) => service::cancel(&args),
        Command::Sweep(args) => sweep::sweep(&args),
        Command::Worker(args) => worker::worker(&args),
        Command::Wall(args) => wall::wall(&args),
        Command::Replay(args) => wall::replay(&args),
    }
}

fn generate(args: &GenerateArgs) -> Result<()> {
    let start = chrono::DateTime::parse_from_rfc3339(&args.start)
        .with_context(|| format!("--start {:?} is not an RFC 3339 instant", args.start))?
        .to_utc();
    let config = isotach_synth::SynthConfig {
        seed: args.seed,
        resolution_deg: args.resolution_deg,
        steps: args.steps,
        step_hours: args.step_hours,
        start,
        ..Default::default()
    };
    prepare_output(&args.out, args.force)?;
    let summary = isotach_synth::generate(&config, &args.out)?;
    println!(
        "wrote {} ({} steps × {} × {}, {} atmospheric rivers) in {:.1} s",
        args.out.display(),
        summary.shape[0],
        summary.shape[1],
        summary.shape[2],
        summary.events,
        summary.seconds
    );
    Ok(())
}

/// Refuses to overwrite unless forced; with force, removes only something that is a Zarr store.
pub(crate) fn prepare_output(path: &Path, force: bool) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    if !force {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    if !isotach_connectors::is_zarr_store(path) {
        bail!(
            "{} exists and is not a Zarr store; refusing to delete it",
            path.display()
        );
    }
    std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
}

fn inspect(uri: &str) -> Result<()> {
    let source = isotach_connectors::open_source(uri, &StoreOptions::default(), None)?;
    let info = source.describe();
    let (nlat, nlon) = info.grid.shape();
    println!("store   {}", info.uri);
    if let (Some(first), Some(last)) = (info.time.times.first(), info.time.times.last()) {
        println!(
            "time    {} steps, {} .. {}",
            info.time.len(),
            first.format("%Y-%m-%dT%H:%MZ"),
            last.format("%Y-%m-%dT%H:%MZ")
        );
    }
    let span = |v: &[f64]| {
        v.first()
            .zip(v.last())
            .map(|(a, b)| format!("{a} .. {b}"))
            .unwrap_or_default()
    };
    println!("lat     {nlat} ({})", span(&info.grid.lat));
    println!("lon     {nlon} ({})", span(&info.grid.lon));
    let print = |v: &isotach_core::VariableInfo| {
        println!(
            "  {:<8} ({}) {:?} chunks {:?} {} [{}] {} [{}]",
            v.name,
            v.dims.join(", "),
            v.shape,
            v.chunks,
            v.dtype,
            v.codecs.join(", "),
            v.long_name,
            v.units,
        );
    };
    println!("coordinates:");
    info.coordinates.iter().for_each(print);
    println!("variables:");
    info.variables.iter().for_each(print);
    Ok(())
}
