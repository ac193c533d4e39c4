use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use isotach_connectors::{FieldStoreLayout, StoreOptions, ZarrFieldSink, open_source, write_table};
use isotach_core::{Field, FramesSink, PipelineSpec, SinkSpec, ValidatedPipeline, ZarrSink};
use isotach_engine::operators::catalog_table;
use isotach_engine::{Cluster, Progress, RunConfig, RunReport, run_pipeline, stats_table};
use isotach_viz::{Canvas, Renderer, ScalarStyle};
use serde_json::{Map, json};

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

/// What a run wrote.
pub(crate) struct Outcome {
    pub report: RunReport,
    pub frames: Vec<PathBuf>,
    pub adapter: String,
    pub lead: bool,
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
                println!("frames written to {}", Path::new(&frames.path).display())
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
/// (in the lead process) writes the statistics and catalog tables.
pub(crate) fn execute(
    spec: &PipelineSpec,
    config: RunConfig,
    show_progress: bool,
) -> Result<Outcome> {
    let source = open_source(
        &spec.source.uri,
        &StoreOptions::default(),
        spec.source.region,
    )?;
    let pipeline = spec.validate(source.describe())?;
    let lead = config.is_lead();
    let frames_sinks: Vec<FramesSink> = spec
        .sinks
        .iter()
        .filter_map(|sink| match sink {
            SinkSpec::Frames(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    for sink in &frames_sinks {
        std::fs::create_dir_all(&sink.path)
            .with_context(|| format!("creating frames folder {}", sink.path))?;
    }
    let zarr_sinks = open_zarr_sinks(spec, &pipeline, source.describe(), lead)?;
    // The renderer is created before any data is read, so a machine without an adapter fails fast.
    let mut renderer = if frames_sinks.is_empty() {
        None
    } else {
        Some(Renderer::new_headless()?)
    };
    let adapter = renderer
        .as_ref()
        .map_or_else(|| "no frames sink".to_owned(), |r| r.adapter_summary());

    let progress = config.progress.clone();
    let reporter = show_progress.then(|| spawn_progress_printer(progress.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Field>(4);
    let (report, frames) = runtime.block_on(async move {
        let consume = tokio::task::spawn_blocking(move || -> Result<Vec<PathBuf>> {
            let mut written = Vec::new();
            let mut zarr_sinks = zarr_sinks;
            while let Some(field) = rx.blocking_recv() {
                for sink in zarr_sinks.iter_mut() {
                    sink.write(&field)?;
                }
                let Some(renderer) = renderer.as_mut() else {
                    continue;
                };
                for sink in &frames_sinks {
                    for layer in sink.layers.iter().filter(|l| l.variable == field.variable) {
                        let style = ScalarStyle {
                            colormap: layer.colormap,
                            range: layer.range,
                            ..ScalarStyle::default()
                        };
                        let canvas = Canvas {
                            width_px: sink.width_px,
                            height_px: sink.height_px,
                        };
                        let image = renderer.render(&field, &style, canvas)?;
                        let path = Path::new(&sink.path)
                            .join(format!("{}_{:05}.png", field.variable, field.step));
                        image.write_png(&path)?;
                        written.push(path);
                    }
                }
            }
            Ok(written)
        });
        let engine =
            tokio::task::spawn_blocking(move || run_pipeline(&pipeline, source, config, tx));
        // Join both before judging either: when a sink fails the engine stops with
        // ConsumerGone, and the sink's error is the one worth reporting.
        let (engine, consume) = tokio::join!(engine, consume);
        let frames = consume.map_err(|e| anyhow!("sink task: {e}"))??;
        let report = engine.map_err(|e| anyhow!("engine task: {e}"))??;
        Ok::<_, anyhow::Error>((report, frames))
    })?;
    if let Some((stop, handle)) = reporter {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = handle.join();
    }

    if lead {
        write_tables(spec, &report)?;
    }
    Ok(Outcome {
        report,
        frames,
        adapter,
        lead,
    })
}

/// A Zarr sink that opens its store lazily: the lead process creates the store before the
/// dataflow starts; the others open it on their first field, by which time the cluster has
/// connected and the store exists.
struct LazyZarrSink {
    path: PathBuf,
    layout: FieldStoreLayout,
    sink: Option<ZarrFieldSink>,
}

impl LazyZarrSink {
    fn write(&mut self, field: &Field) -> Result<()> {
        if !self
            .layout
            .variables
            .iter()
            .any(|(name, _, _)| *name == field.variable)
        {
            return Ok(());
        }
        if self.sink.is_none() {
            self.sink = Some(ZarrFieldSink::open(&self.path, &self.layout)?);
        }
        if let Some(sink) = &self.sink {
            sink.write(field)?;
        }
        Ok(())
    }
}

fn open_zarr_sinks(
    spec: &PipelineSpec,
    pipeline: &ValidatedPipeline,
    dataset: &isotach_core::DatasetInfo,
    lead: bool,
) -> Result<Vec<LazyZarrSink>> {
    let zarr: Vec<&ZarrSink> = spec
        .sinks
        .iter()
        .filter_map(|sink| match sink {
            SinkSpec::Zarr(z) => Some(z),
            _ => None,
        })
        .collect();
    let mut sinks = Vec::new();
    for sink in zarr {
        let layout = isotach_engine::zarr_sink_layout(pipeline, dataset, sink)?;
        let path = PathBuf::from(&sink.path);
        let created = if lead {
            let mut attributes = Map::new();
            attributes.insert("Conventions".into(), json!("CF-1.8"));
            attributes.insert(
                "title".into(),
                json!(format!("Isotach pipeline {}", spec.name)),
            );
            attributes.insert("source".into(), json!(spec.source.uri));
            attributes.insert(
                "isotach_spec".into(),
                json!(spec.to_toml_string().unwrap_or_default()),
            );
            Some(
                ZarrFieldSink::create(&path, &layout, attributes)
                    .with_context(|| format!("zarr sink {}", sink.path))?,
            )
        } else {
            None
        };
        sinks.push(LazyZarrSink {
            path,
            layout,
            sink: created,
        });
    }
    Ok(sinks)
}

fn write_tables(spec: &PipelineSpec, report: &RunReport) -> Result<()> {
    if let Some(variable) = &report.stats_variable {
        let table = stats_table(variable, &report.stats_units, &report.stats)?;
        for sink in &spec.sinks {
            if let SinkSpec::Frames(frames) = sink {
                let folder = Path::new(&frames.path);
                let tables = std::slice::from_ref(&table);
                write_table(&folder.join(format!("{variable}_stats.arrow")), tables)?;
                write_table(&folder.join(format!("{variable}_stats.parquet")), tables)?;
            }
        }
    }
    for sink in &spec.sinks {
        if let SinkSpec::Catalog(catalog) = sink {
            let records = report
                .catalogs
                .get(&catalog.objects)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let table = catalog_table(records)?;
            let path = Path::new(&catalog.path);
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            write_table(path, std::slice::from_ref(&table))?;
        }
    }
    Ok(())
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
