//! Generate a synthetic atmosphere, stream IVT through the dataflow (no rendering), and report each
//! atmospheric river's strongest IVT near its landfall, as the generator's catalogue places it.

use std::sync::Arc;

use anyhow::{Context, Result};
use isotach_connectors::{Source, ZarrSource};
use isotach_core::PipelineSpec;
use isotach_engine::{RunConfig, run_pipeline};
use isotach_synth::{SynthConfig, generate};

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("isotach-landfalls-{}", std::process::id()));
    let store = dir.join("atmosphere.zarr");
    let config = SynthConfig {
        resolution_deg: 1.0,
        steps: 28,
        ..Default::default()
    };
    generate(&config, &store)?;
    let uri = store.to_str().context("temporary path is not UTF-8")?;
    let spec = PipelineSpec::from_toml_str(&format!(
        r#"
        name = "landfalls"
        [source]
        uri = "{uri}"
        variables = ["ivt_u", "ivt_v"]
        [[step]]
        op = "magnitude"
        inputs = ["ivt_u", "ivt_v"]
        output = "ivt"
        [[sink]]
        kind = "frames"
        path = "unused"
        layers = [{{ variable = "ivt" }}]
        "#
    ))?;
    let source = Arc::new(ZarrSource::open(uri)?);
    let grid = source.describe().grid.clone();
    let pipeline = spec.validate(source.describe())?;

    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let collect = std::thread::spawn(move || {
        let mut fields = Vec::new();
        while let Some(field) = rx.blocking_recv() {
            fields.push(field);
        }
        fields
    });
    let report = run_pipeline(&pipeline, source, RunConfig::default(), tx)?;
    let fields = collect
        .join()
        .map_err(|_| anyhow::anyhow!("collector panicked"))?;
    println!(
        "{} steps streamed in {:.2} s\n",
        report.steps, report.seconds
    );
    println!(
        "{:<15} {:>17} {:>8} {:>8} {:>22}",
        "basin", "landfall (UTC)", "lat", "lon", "peak IVT near landfall"
    );
    for event in config.events() {
        let step = (event.landfall_h / config.step_hours as f64).round();
        let Some(field) = fields.iter().find(|f| f.step as f64 == step) else {
            continue;
        };
        let [lon, lat] = event.landfall;
        let mut peak = 0.0f32;
        for (i, la) in grid.lat.iter().enumerate() {
            for (j, lo) in grid.lon.iter().enumerate() {
                if (la - lat).abs() <= 8.0 && (0.0..=10.0).contains(&(lon - lo)) {
                    peak = peak.max(field.at(i, j));
                }
            }
        }
        println!(
            "{:<15} {:>17} {:>8.1} {:>8.1} {:>15.0} kg/m/s",
            event.basin,
            field.time.format("%Y-%m-%d %H:%M"),
            lat,
            lon,
            peak
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
