use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use isotach_core::{PipelineSpec, SinkSpec, StepSpec};

use crate::run::{execute, print_outcome};

/// The standard pipeline, shipped with the binary so that the demo needs nothing but itself.
const STANDARD_SPEC: &str = include_str!("../../../examples/specs/ar-unet.toml");

/// The atmospheric-river model the standard pipeline runs (examples/models/README.md).
const AR_UNET: &[u8] = include_bytes!("../../../examples/models/ar_unet.onnx");

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// The embedded default dataset; generated (0.5°, 40 steps of 6 h) if missing.
    #[arg(long, default_value = "data/demo.zarr")]
    data: PathBuf,
    /// Folder for the frames.
    #[arg(long, default_value = "out/demo/frames")]
    out: PathBuf,
    /// Timely worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// An inference worker already serving `ar_unet` (http://host:port); default: start one.
    #[arg(long)]
    inference_worker: Option<String>,
}

/// An `isotach worker` child process, stopped when dropped.
struct WorkerProcess {
    child: Child,
    url: String,
}

impl WorkerProcess {
    /// Starts this binary's `worker` on a free loopback port serving `model` as ar_unet.
    fn start(model: &Path) -> Result<Self> {
        let exe = std::env::current_exe().context("locating the isotach binary")?;
        let mut child = Command::new(exe)
            .args(["worker", "--listen", "127.0.0.1:0", "--model"])
            .arg(format!("ar_unet={}", model.display()))
            .stdout(Stdio::piped())
            .spawn()
            .context("starting an inference worker")?;
        let stdout = child.stdout.take().context("the worker's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(address) = line.strip_prefix("listening on ") {
                        break format!("http://{}", address.trim());
                    }
                }
                _ => {
                    let status = child.wait().context("waiting for the worker")?;
                    bail!("the inference worker stopped before listening ({status})");
                }
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { child, url })
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the embedded model next to the demo data, unless the same bytes are already there.
fn model_file(data: &Path) -> Result<PathBuf> {
    let path = data
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("ar_unet.onnx");
    if std::fs::read(&path).ok().as_deref() != Some(AR_UNET) {
        std::fs::write(&path, AR_UNET).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(path)
}

pub(crate) fn demo(args: &DemoArgs) -> Result<()> {
    if !isotach_connectors::is_zarr_store(&args.data) {
        crate::prepare_output(&args.data, false)?;
        let config = isotach_synth::SynthConfig {
            resolution_deg: 0.5,
            steps: 40,
            ..Default::default()
        };
        println!(
            "generating the demo dataset at {} (0.5°, 40 steps) ...",
            args.data.display()
        );
        let summary = isotach_synth::generate(&config, &args.data)?;
        println!(
            "  {} atmospheric rivers, {:.1} s",
            summary.events, summary.seconds
        );
    }
    let mut spec =
        PipelineSpec::from_toml_str(STANDARD_SPEC).context("the embedded standard spec")?;
    spec.source.uri = args.data.display().to_string();
    let out = args.out.parent().unwrap_or_else(|| Path::new("."));
    for sink in &mut spec.sinks {
        match sink {
            SinkSpec::Frames(frames) => frames.path = Some(args.out.display().to_string()),
            SinkSpec::Zarr(zarr) => {
                zarr.path = out.join("fields.zarr").display().to_string();
                crate::prepare_output(Path::new(&zarr.path), true)?;
            }
            SinkSpec::Catalog(catalog) => {
                catalog.path = out.join("ar_catalog.parquet").display().to_string();
            }
        }
    }
    // The worker lives until the demo returns (its Drop stops it).
    let (_worker, url) = match &args.inference_worker {
        Some(url) => (None, url.clone()),
        None => {
            let model = model_file(&args.data)?;
            let worker = WorkerProcess::start(&model)?;
            println!(
                "inference worker serving {} at {}",
                model.display(),
                worker.url
            );
            let url = worker.url.clone();
            (Some(worker), url)
        }
    };
    for step in &mut spec.steps {
        if let StepSpec::Infer { workers, .. } = step {
            *workers = vec![url.clone()];
        }
    }
    let config = isotach_engine::RunConfig {
        workers: args.workers,
        ..Default::default()
    };
    let outcome = execute(
        &spec,
        config,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )?;
    print_outcome(&spec, &outcome);
    println!(
        "\nlook at the frames: {}/ivt_*.png (IVT, atmospheric rivers outlined)",
        args.out.display()
    );
    println!(
        "fields: {}/fields.zarr, objects: {}/ar_catalog.parquet",
        out.display(),
        out.display()
    );
    Ok(())
}
