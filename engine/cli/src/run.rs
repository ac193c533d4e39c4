use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use isotach_connectors::{StoreOptions, open_source, write_arrow_ipc, write_parquet};
use isotach_core::{Field, FramesSink, PipelineSpec, SinkSpec};
use isotach_engine::{RunConfig, RunReport, run_pipeline, stats_table};
use isotach_viz::{Canvas, Renderer, ScalarStyle};

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Pipeline spec, TOML (see examples/specs/ivt-frames.toml).
    spec: PathBuf,
    /// Timely worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// What a run wrote.
pub(crate) struct Outcome {
    pub report: RunReport,
    pub frames: Vec<PathBuf>,
    pub adapter: String,
}

pub(crate) fn run(args: &RunArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("reading spec {}", args.spec.display()))?;
    let spec = PipelineSpec::from_toml_str(&text)
        .with_context(|| format!("spec {}", args.spec.display()))?;
    let outcome = execute(&spec, args.workers)?;
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
    for sink in &spec.sinks {
        let SinkSpec::Frames(frames) = sink;
        println!("frames written to {}", Path::new(&frames.path).display());
    }
}

/// Validates `spec` against its store, runs it, renders every completed field, and writes the
/// statistics table next to the frames.
pub(crate) fn execute(spec: &PipelineSpec, workers: usize) -> Result<Outcome> {
    let source = open_source(
        &spec.source.uri,
        &StoreOptions::default(),
        spec.source.region,
    )?;
    let pipeline = spec.validate(source.describe())?;
    let frames_sinks: Vec<FramesSink> = spec
        .sinks
        .iter()
        .map(|SinkSpec::Frames(f)| f.clone())
        .collect();
    for sink in &frames_sinks {
        std::fs::create_dir_all(&sink.path)
            .with_context(|| format!("creating frames folder {}", sink.path))?;
    }
    // The renderer is created before any data is read, so a machine without an adapter fails fast.
    let mut renderer = Renderer::new_headless()?;
    let adapter = renderer.adapter_summary();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Field>(4);
    let config = RunConfig {
        workers,
        ..RunConfig::default()
    };
    let (report, frames) = runtime.block_on(async move {
        let render = tokio::task::spawn_blocking(move || -> Result<Vec<PathBuf>> {
            let mut written = Vec::new();
            while let Some(field) = rx.blocking_recv() {
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
        // Join both before judging either: when rendering fails the engine stops with
        // ConsumerGone, and the render error is the one worth reporting.
        let (engine, render) = tokio::join!(engine, render);
        let frames = render.map_err(|e| anyhow!("renderer task: {e}"))??;
        let report = engine.map_err(|e| anyhow!("engine task: {e}"))??;
        Ok::<_, anyhow::Error>((report, frames))
    })?;

    if let Some(variable) = &report.stats_variable {
        let table = stats_table(variable, &report.stats_units, &report.stats)?;
        for sink in spec.sinks.iter().map(|SinkSpec::Frames(f)| f) {
            let folder = Path::new(&sink.path);
            let tables = std::slice::from_ref(&table);
            write_arrow_ipc(&folder.join(format!("{variable}_stats.arrow")), tables)?;
            write_parquet(&folder.join(format!("{variable}_stats.parquet")), tables)?;
        }
    }
    Ok(Outcome {
        report,
        frames,
        adapter,
    })
}
