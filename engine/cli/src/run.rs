use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use isotach_core::{PipelineSpec, SinkSpec};
use isotach_engine::{Cluster, Progress, RunConfig};
use isotach_service::{ExecutionControl, Outcome};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Pipeline spec, TOML (see examples/specs/).
    spec: PathBuf,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Print a progress line per stage every second (default: only on a terminal).
    #[arg(long)]
    progress: bool,
}

/// Where this process sits in a run: its worker threads and, for a multi-process run, its place
/// among the processes (timely's cluster over TCP).
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ClusterArgs {
    /// Timely worker threads in this process.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Number of processes taking part (each started with the same spec and `--hosts`).
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// This process's index, 0 to processes-1; process 0 admits the work and writes the tables.
    #[arg(long, default_value_t = 0)]
    pub process: usize,
    /// `host:port` of every process, comma-separated, in process order (default:
    /// 127.0.0.1:2101, 127.0.0.1:2102, ...).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
}

impl ClusterArgs {
    /// The engine's configuration for these flags, checked.
    pub fn run_config(&self) -> Result<RunConfig> {
        if self.processes == 0 {
            bail!("--processes 0: at least one process must run");
        }
        if self.process >= self.processes {
            bail!(
                "--process {} is outside 0..{} (--processes {})",
                self.process,
                self.processes,
                self.processes
            );
        }
        let cluster = if self.processes == 1 {
            None
        } else {
            let addresses = if self.hosts.is_empty() {
                (0..self.processes)
                    .map(|i| format!("127.0.0.1:{}", 2101 + i))
                    .collect()
            } else {
                self.hosts.clone()
            };
            if addresses.len() != self.processes {
                bail!(
                    "--hosts lists {} addresses for --processes {}",
                    addresses.len(),
                    self.processes
                );
            }
            Some(Cluster {
                process: self.process,
                addresses,
            })
        };
        Ok(RunConfig {
            workers: self.workers,
            cluster,
            ..RunConfig::default()
        })
    }
}

pub(crate) fn run(args: &RunArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("reading spec {}", args.spec.display()))?;
    let spec = PipelineSpec::from_toml_str(&text)
        .with_context(|| format!("spec {}", args.spec.display()))?;
    let config = args.cluster.run_config()?;
    let show_progress = args.progress || std::io::stderr().is_terminal();
    let outcome = execute(&spec, config, show_progress)?;
    print_outcome(&spec, &outcome);
    Ok(())
}

pub(crate) fn print_outcome(spec: &PipelineSpec, outcome: &Outcome) {
    let r = &outcome.report;
    println!(
        "{}: {} steps, {} tiles read, {} fields, {} frames in {:.1} s ({})",
        spec.name,
        r.steps,
        r.tiles_read,
        r.fields,
        outcome.frames.len(),
        r.seconds,
        outcome.adapter
    );
    if let (Some(variable), Some(first), Some(last)) =
        (&r.stats_variable, r.stats.first(), r.stats.last())
    {
        let peak = r.stats.iter().map(|s| s.max).fold(f64::MIN, f64::max);
        println!(
            "{variable}: mean {:.1} .. {:.1}, peak {peak:.1} over the run",
            first.mean, last.mean
        );
    }
    for (name, records) in &r.catalogs {
        let objects = records
            .iter()
            .map(|r| r.id)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        println!("{name}: {objects} objects, {} object-steps", records.len());
    }
    for sink in &spec.sinks {
        match sink {
            SinkSpec::Frames(frames) => {
                if let Some(path) = &frames.path {
                    println!("frames written to {}", Path::new(path).display());
                }
            }
            SinkSpec::Zarr(zarr) => println!("zarr store written to {}", zarr.path),
            SinkSpec::Catalog(catalog) if outcome.lead => {
                println!("object catalog written to {}", catalog.path)
            }
            SinkSpec::Catalog(_) => {}
        }
    }
}

/// Validates `spec` against its store, runs it, renders and stores every completed field, and
/// (in the lead process) writes the statistics and catalog tables: `isotach_service::execute`,
/// with a progress line per second on stderr when `show_progress`.
pub(crate) fn execute(
    spec: &PipelineSpec,
    config: RunConfig,
    show_progress: bool,
) -> Result<Outcome> {
    let reporter = show_progress.then(|| spawn_progress_printer(config.progress.clone()));
    let outcome = isotach_service::execute(spec, config, &ExecutionControl::default());
    if let Some((stop, handle)) = reporter {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = handle.join();
    }
    Ok(outcome?)
}

/// Prints one line per second on stderr: every stage's count and rate.
fn spawn_progress_printer(
    progress: Arc<Progress>,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let handle = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(1));
            let now = progress.snapshot();
            let stages: Vec<String> = now
                .stages
                .iter()
                .map(|s| {
                    let total = if s.total > 0 {
                        format!("/{}", s.total)
                    } else {
                        String::new()
                    };
                    format!(
                        "{} {}{total} {} ({:.0}/s)",
                        s.name, s.done, s.unit, s.per_second
                    )
                })
                .collect();
            eprintln!("[{:6.1} s] {}", now.elapsed_s, stages.join(" · "));
        }
    });
    (stop, handle)
}
