use std::path::PathBuf;

use anyhow::{Context, Result};
use isotach_core::{PipelineSpec, SinkSpec};

use crate::run::{execute, print_outcome};

/// The standard pipeline, shipped with the binary so that the demo needs nothing but itself.
const STANDARD_SPEC: &str = include_str!("../../../examples/specs/ivt-frames.toml");

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
    for sink in &mut spec.sinks {
        if let SinkSpec::Frames(frames) = sink {
            frames.path = args.out.display().to_string();
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
    println!("\nlook at the frames: {}/ivt_*.png", args.out.display());
    Ok(())
}
