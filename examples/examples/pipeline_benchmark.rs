//! End-to-end benchmark: the standard analysis pipeline through Isotach with 1 and 2 timely
//! workers, and the same computation written idiomatically with xarray + dask
//! (`scripts/bench/xarray_pipeline.py`) with 1 and 2 threads, in one run on the same machine, with
//! the results checked equal.
//!
//! The pipeline is the steps of `examples/specs/ar-objects.toml`, unchanged: IVT magnitude from
//! `ivt_u`, `ivt_v` → running monthly anomaly → 2 × 2 coarsen → threshold at 250 → objects
//! connected in space and time (min area 100 000 km², catalog min duration 2 steps), written as
//! two Zarr stores (`ivt`, `ivt_anom`; `ivt_1deg`, `ar_id`) and a Parquet object catalog. The
//! spec's frames sink is left out: rendering is not part of this benchmark (see
//! `cargo run -p isotach-viz --example frame_time` for that).
//!
//! The input is a synthetic atmosphere (`isotach_synth::generate`, surface variables only),
//! generated once into `--store` (kept between runs; a sidecar `<store>.bench.json` records the
//! configuration it was made with). At the defaults, 0.25° (1440 × 721) × 60 six-hourly steps from
//! 2017-01-24 (so the running climatology crosses from January into February), the store holds
//! 6 float32 variables, 1.5 GB decoded and 0.91 GB on disk; the pipeline reads 2 of them
//! (0.5 GB decoded).
//!
//! Isotach runs in this process exactly as `isotach run` does (`open_source`, `validate`,
//! `run_pipeline` with a consumer writing `ZarrFieldSink`s, then `catalog_table` + `write_table`),
//! with `workers` timely workers reading with `concurrency = workers`. xarray + dask runs with the
//! threaded scheduler and `num_workers` equal to the Isotach worker count (`--anomaly` picks its
//! running-mean idiom: `cumsum` / count per month group, the default, or
//! `g.cumulative("time").mean()`, which is correct but about 50× slower on dask). Like
//! `isotach run`, Isotach writes the Zarr stores on one consumer thread beside its workers, so a
//! 1-worker run may use more than one core. Times are wall clock
//! from opening the store to the last byte written (Python's interpreter start and imports
//! excluded); CPU seconds over the same span show how many cores each really used. Each
//! configuration runs `--repeat` times (interleaved, so a slow spell of the shared machine hits
//! them alike) and its best time is kept.
//!
//! Results are checked: the Zarr outputs of Isotach (2 workers) and xarray (2 threads) agree
//! within float tolerance with NaN in the same places, the object labels agree exactly once
//! Isotach's per-step labels are mapped to final ids through its catalog, and the catalogs have
//! the same (id, node, step) rows with the same areas; Isotach's 1- and 2-worker outputs are
//! identical. `--profile` adds runs of growing prefixes of the pipeline (2 workers, fields
//! delivered but not written) to show where Isotach's time goes.
//!
//! ```text
//! cargo run --release -p isotach-examples --example pipeline_benchmark -- \
//!     [--resolution-deg 0.25] [--steps 60] [--start 2017-01-24T00:00:00Z] \
//!     [--store target/bench-pipeline/store.zarr] [--out target/bench-pipeline/out] \
//!     [--python .venv/bin/python] [--repeat 1] [--anomaly cumsum|cumulative] [--profile] \
//!     [--regenerate]
//! ```
//!
//! Relative paths are taken from the workspace root; `--python` defaults to `$ISOTACH_PYTHON`,
//! else `.venv/bin/python`. Prints a table and writes the figures to `OUT/pipeline_benchmark.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use isotach_connectors::{
    ReadOptions, Source, StoreOptions, TileRequest, ZarrFieldSink, open_source, write_table,
};
use isotach_core::{ClimatologyPeriod, Field, PipelineSpec, SinkSpec, StepSpec, ZarrSink};
use isotach_engine::operators::{ObjectRecord, catalog_table, node_to_object};
use isotach_engine::{RunConfig, RunReport, run_pipeline, zarr_sink_layout};
use isotach_synth::{SynthConfig, generate};
use serde_json::{Map, Value, json};

/// The pipeline measured: the steps and sinks of the project's standard spec.
const STANDARD_SPEC: &str = include_str!("../specs/ar-objects.toml");
/// Store names in the standard spec; the Python script writes the same.
const FIELD_STORE: &str = "fields.zarr";
const OBJECT_STORE: &str = "objects.zarr";
/// Tolerance of the float fields: |isotach − xarray| ≤ ATOL + RTOL × |xarray|.
const ATOL: f64 = 1e-3;
const RTOL: f64 = 1e-5;

const USAGE: &str = "usage: pipeline_benchmark [--resolution-deg 0.25] [--steps 60] \
                     [--start 2017-01-24T00:00:00Z] [--store target/bench-pipeline/store.zarr] \
                     [--out target/bench-pipeline/out] [--python .venv/bin/python] [--repeat 1] \
                     [--anomaly cumsum|cumulative] [--profile] [--regenerate]";

#[derive(Debug)]
struct Options {
    resolution_deg: f64,
    steps: usize,
    start: String,
    store: PathBuf,
    out: PathBuf,
    python: PathBuf,
    repeat: usize,
    anomaly: String,
    profile: bool,
    regenerate: bool,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn parse_options() -> Result<Options> {
    let root = workspace_root();
    let python = std::env::var_os("ISOTACH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".venv/bin/python"));
    let mut options = Options {
        resolution_deg: 0.25,
        steps: 60,
        start: "2017-01-24T00:00:00Z".to_owned(),
        store: PathBuf::from("target/bench-pipeline/store.zarr"),
        out: PathBuf::from("target/bench-pipeline/out"),
        python,
        repeat: 1,
        anomaly: "cumsum".to_owned(),
        profile: false,
        regenerate: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || -> Result<String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--resolution-deg" => options.resolution_deg = value()?.parse()?,
            "--steps" => options.steps = value()?.parse()?,
            "--start" => options.start = value()?,
            "--store" => options.store = value()?.into(),
            "--out" => options.out = value()?.into(),
            "--python" => options.python = value()?.into(),
            "--repeat" => options.repeat = value()?.parse::<usize>()?.max(1),
            "--anomaly" => options.anomaly = value()?,
            "--profile" => options.profile = true,
            "--regenerate" => options.regenerate = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if !["cumsum", "cumulative"].contains(&options.anomaly.as_str()) {
        bail!("--anomaly {}: cumsum or cumulative", options.anomaly);
    }
    for path in [&mut options.store, &mut options.out] {
        if path.is_relative() {
            *path = root.join(&*path);
        }
    }
    // A bare interpreter name (`python3`) is looked up on PATH; a relative path is the root's.
    if options.python.is_relative() && options.python.components().count() > 1 {
        options.python = root.join(&options.python);
    }
    Ok(options)
}

// ---------------------------------------------------------------------------------------------
// The store.

fn synth_config(options: &Options) -> Result<SynthConfig> {
    Ok(SynthConfig {
        resolution_deg: options.resolution_deg,
        steps: options.steps,
        start: options
            .start
            .parse()
            .with_context(|| format!("--start {}", options.start))?,
        surface_only: true,
        ..SynthConfig::default()
    })
}

fn sidecar(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".bench.json");
    PathBuf::from(name)
}

fn config_json(config: &SynthConfig) -> Value {
    json!({
        "seed": config.seed,
        "resolution_deg": config.resolution_deg,
        "steps": config.steps,
        "step_hours": config.step_hours,
        "start": config.start.to_rfc3339(),
        "surface_only": config.surface_only,
    })
}

/// Generates the store unless one made with the same configuration is there.
fn ensure_store(options: &Options, config: &SynthConfig) -> Result<()> {
    let wanted = config_json(config);
    let marker = sidecar(&options.store);
    let ready = !options.regenerate
        && options.store.join("zarr.json").is_file()
        && std::fs::read_to_string(&marker)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            == Some(wanted.clone());
    if ready {
        return Ok(());
    }
    if options.store.exists() {
        if !options.store.join("zarr.json").is_file() {
            bail!(
                "{} exists and is not a Zarr store; remove it or choose another --store",
                options.store.display()
            );
        }
        std::fs::remove_dir_all(&options.store)?;
    }
    let _ = std::fs::remove_file(&marker);
    if let Some(parent) = options.store.parent() {
        std::fs::create_dir_all(parent)?;
    }
    eprintln!(
        "generating {} ({}°, {} steps, surface variables) ...",
        options.store.display(),
        config.resolution_deg,
        config.steps
    );
    let summary = generate(config, &options.store)?;
    std::fs::write(&marker, serde_json::to_string_pretty(&wanted)? + "\n")?;
    eprintln!(
        "generated {:?} in {:.1} s, {:.0} MB on disk",
        summary.shape,
        summary.seconds,
        dir_size(&options.store)? as f64 / 1e6
    );
    Ok(())
}

fn dir_size(path: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// The spec.

/// The standard spec without its frames sink, reading `store` and writing under `out`.
fn benchmark_spec(store: &Path, out: &Path) -> Result<PipelineSpec> {
    let mut spec = PipelineSpec::from_toml_str(STANDARD_SPEC)?;
    spec.source.uri = path_str(store)?.to_owned();
    spec.sinks
        .retain(|sink| !matches!(sink, SinkSpec::Frames(_)));
    // The same file names as the spec's (fields.zarr, objects.zarr, ar_catalog.parquet), under
    // `out`.
    for sink in &mut spec.sinks {
        let path = match sink {
            SinkSpec::Zarr(zarr) => &mut zarr.path,
            SinkSpec::Catalog(catalog) => &mut catalog.path,
            SinkSpec::Frames(_) => continue,
        };
        let name = Path::new(path.as_str())
            .file_name()
            .ok_or_else(|| anyhow!("sink path {path:?} has no file name"))?
            .to_owned();
        *path = path_str(&out.join(name))?.to_owned();
    }
    Ok(spec)
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| anyhow!("{} is not UTF-8", path.display()))
}

/// The settings the Python script needs, read from the spec so both sides compute the same thing.
fn python_settings(spec: &PipelineSpec) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for step in &spec.steps {
        match step {
            StepSpec::Coarsen { factor, .. } => args.extend([
                "--coarsen".into(),
                factor[0].to_string(),
                factor[1].to_string(),
            ]),
            StepSpec::Threshold {
                value: Some(value), ..
            } => args.extend(["--threshold".into(), value.to_string()]),
            StepSpec::Objects {
                threshold,
                min_area_km2,
                min_duration_steps,
                criterion: None,
                ..
            } => args.extend([
                "--objects-threshold".into(),
                threshold.to_string(),
                "--min-area-km2".into(),
                min_area_km2.to_string(),
                "--min-duration-steps".into(),
                min_duration_steps.to_string(),
            ]),
            StepSpec::Magnitude { inputs, .. } if inputs == &["ivt_u", "ivt_v"] => {}
            StepSpec::Anomaly {
                by: ClimatologyPeriod::Month,
                ..
            } => {}
            other => bail!("the xarray script does not implement step {other:?}"),
        }
    }
    Ok(args)
}

// ---------------------------------------------------------------------------------------------
// Isotach.

/// CPU seconds (user + system) of this process so far, from `/proc/self/stat` (Linux; 100 ticks
/// a second assumed); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// One timed run.
#[derive(Debug, Clone)]
struct Timing {
    seconds: f64,
    cpu_seconds: Option<f64>,
}

/// Runs `spec` as `isotach run` does; when `write` is false the fields are delivered and dropped
/// and no catalog is written.
fn run_isotach(spec: &PipelineSpec, workers: usize, write: bool) -> Result<(Timing, RunReport)> {
    for sink in &spec.sinks {
        let path = match sink {
            SinkSpec::Zarr(zarr) => Path::new(&zarr.path),
            SinkSpec::Catalog(catalog) => Path::new(&catalog.path),
            SinkSpec::Frames(_) => continue,
        };
        if write && path.exists() {
            if path.is_dir() {
                std::fs::remove_dir_all(path)?;
            } else {
                std::fs::remove_file(path)?;
            }
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let cpu_started = process_cpu_seconds();
    let started = Instant::now();
    let source = open_source(
        &spec.source.uri,
        &StoreOptions::default(),
        spec.source.region,
    )?;
    let pipeline = spec.validate(source.describe())?;
    let mut sinks = Vec::new();
    for sink in spec.sinks.iter().filter(|_| write) {
        let SinkSpec::Zarr(zarr) = sink else {
            continue;
        };
        let layout = zarr_sink_layout(&pipeline, source.describe(), zarr)?;
        let mut attributes = Map::new();
        attributes.insert("Conventions".into(), json!("CF-1.8"));
        attributes.insert("source".into(), json!(spec.source.uri));
        sinks.push(ZarrFieldSink::create(
            Path::new(&zarr.path),
            &layout,
            attributes,
        )?);
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Field>(4);
    let consumer = std::thread::spawn(move || -> Result<usize> {
        let mut fields = 0;
        while let Some(field) = rx.blocking_recv() {
            for sink in &sinks {
                sink.write(&field)?;
            }
            fields += 1;
        }
        Ok(fields)
    });
    let config = RunConfig {
        workers,
        read: ReadOptions {
            concurrency: workers,
            ..ReadOptions::default()
        },
        ..RunConfig::default()
    };
    let engine = run_pipeline(&pipeline, source, config, tx);
    // The sink's error, when there is one, is the cause of the engine's.
    consumer
        .join()
        .map_err(|_| anyhow!("the sink thread panicked"))??;
    let report = engine?;
    if write {
        for sink in &spec.sinks {
            if let SinkSpec::Catalog(catalog) = sink {
                let records = report
                    .catalogs
                    .get(&catalog.objects)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                write_table(
                    Path::new(&catalog.path),
                    std::slice::from_ref(&catalog_table(records)?),
                )?;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_started.zip(process_cpu_seconds()).map(|(a, b)| b - a);
    Ok((
        Timing {
            seconds,
            cpu_seconds,
        },
        report,
    ))
}

// ---------------------------------------------------------------------------------------------
// xarray + dask.

struct PythonRun {
    timing: Timing,
    report: Value,
}

fn run_python(
    options: &Options,
    settings: &[String],
    out: &Path,
    workers: usize,
) -> Result<PythonRun> {
    let script = workspace_root().join("scripts/bench/xarray_pipeline.py");
    let output = std::process::Command::new(&options.python)
        .arg(&script)
        .arg(&options.store)
        .arg(out)
        .args(["--workers", &workers.to_string()])
        .args(["--anomaly", &options.anomaly])
        .arg("--catalog-csv")
        .arg(out.join("ar_catalog.csv"))
        .args(settings)
        .env("PYTHONWARNINGS", "ignore")
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", options.python.display()))?;
    if !output.status.success() {
        bail!("{} failed: {}", script.display(), output.status);
    }
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| anyhow!("xarray_pipeline.py printed no JSON line"))?;
    let report: Value = serde_json::from_str(line)?;
    let seconds = report["seconds"]
        .as_f64()
        .ok_or_else(|| anyhow!("xarray_pipeline.py: no seconds"))?;
    Ok(PythonRun {
        timing: Timing {
            seconds,
            cpu_seconds: report["cpu_seconds"].as_f64(),
        },
        report,
    })
}

// ---------------------------------------------------------------------------------------------
// Checking the results.

fn open_store(path: &Path) -> Result<Arc<dyn Source>> {
    Ok(open_source(
        path_str(path)?,
        &StoreOptions::default(),
        None,
    )?)
}

/// The whole grid of `variable` at `step`, row-major.
fn read_field(source: &dyn Source, variable: &str, step: u64) -> Result<Vec<f32>> {
    let (_, nlon) = source.describe().grid.shape();
    let mut out = vec![f32::NAN; source.describe().grid.len()];
    for (region, window) in source.regions(variable)? {
        let tile = source.read_tile(
            variable,
            &TileRequest {
                step,
                region,
                window,
            },
        )?;
        let values = tile.values.as_slice();
        for r in 0..window.rows {
            let start = (window.row0 + r) * nlon + window.col0;
            out[start..start + window.cols]
                .copy_from_slice(&values[r * window.cols..(r + 1) * window.cols]);
        }
    }
    Ok(out)
}

/// How two versions of one variable compare.
#[derive(Debug, Default)]
struct Agreement {
    values: usize,
    nan_mismatches: usize,
    beyond_tolerance: usize,
    max_abs_diff: f64,
}

impl Agreement {
    fn ok(&self) -> bool {
        self.nan_mismatches == 0 && self.beyond_tolerance == 0
    }

    fn add(&mut self, a: &[f32], b: &[f32], exact: bool) {
        for (&x, &y) in a.iter().zip(b) {
            self.values += 1;
            match (x.is_nan(), y.is_nan()) {
                (true, true) => continue,
                (false, false) => {}
                _ => {
                    self.nan_mismatches += 1;
                    continue;
                }
            }
            let diff = (f64::from(x) - f64::from(y)).abs();
            self.max_abs_diff = self.max_abs_diff.max(diff);
            let allowed = if exact {
                0.0
            } else {
                ATOL + RTOL * f64::from(y).abs()
            };
            if diff > allowed {
                self.beyond_tolerance += 1;
            }
        }
    }
}

/// Compares `variables` of two stores step by step; `map` turns the first store's values into
/// comparable ones (the object labels) and makes the comparison exact.
fn compare_store(
    a: &Path,
    b: &Path,
    variables: &[&str],
    map: Option<&BTreeMap<u64, u64>>,
) -> Result<Vec<(String, Agreement)>> {
    let (a, b) = (open_store(a)?, open_store(b)?);
    let (ia, ib) = (a.describe(), b.describe());
    let close = |x: &[f64], y: &[f64]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-9)
    };
    if !close(&ia.grid.lat, &ib.grid.lat) || !close(&ia.grid.lon, &ib.grid.lon) {
        bail!(
            "grids differ: {:?} and {:?}",
            ia.grid.shape(),
            ib.grid.shape()
        );
    }
    if ia.time.times != ib.time.times {
        bail!(
            "time axes differ: {} and {} steps",
            ia.time.times.len(),
            ib.time.times.len()
        );
    }
    let mut out = Vec::new();
    for variable in variables {
        let mut agreement = Agreement::default();
        for step in 0..ia.time.times.len() as u64 {
            let mut x = read_field(a.as_ref(), variable, step)?;
            let y = read_field(b.as_ref(), variable, step)?;
            if let Some(map) = map {
                for v in x.iter_mut().filter(|v| !v.is_nan()) {
                    *v = map.get(&(*v as u64)).map_or(*v, |id| *id as f32);
                }
            }
            agreement.add(&x, &y, map.is_some());
        }
        out.push(((*variable).to_owned(), agreement));
    }
    Ok(out)
}

/// `(id, node, step, area_km2)` rows of the catalog CSV the Python script wrote.
fn read_catalog_csv(path: &Path) -> Result<Vec<(u64, u64, u64, f64)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    if header.trim() != "id,node,step,area_km2" {
        bail!("{}: unexpected header {header:?}", path.display());
    }
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 4 {
                bail!("{}: bad row {line:?}", path.display());
            }
            Ok((f[0].parse()?, f[1].parse()?, f[2].parse()?, f[3].parse()?))
        })
        .collect()
}

/// Objects and object-steps of a catalog, and the largest relative area difference to another;
/// an error when their rows differ.
fn compare_catalogs(
    isotach: &[ObjectRecord],
    xarray: &[(u64, u64, u64, f64)],
) -> Result<(usize, usize, f64)> {
    if isotach.len() != xarray.len() {
        bail!(
            "catalogs differ: Isotach {} object-steps, xarray {}",
            isotach.len(),
            xarray.len()
        );
    }
    let mut worst = 0.0f64;
    for (r, &(id, node, step, area)) in isotach.iter().zip(xarray) {
        if (r.id, r.node, r.step) != (id, node, step) {
            bail!(
                "catalogs differ: Isotach (id {}, node {}, step {}), xarray (id {id}, node \
                 {node}, step {step})",
                r.id,
                r.node,
                r.step
            );
        }
        worst = worst.max((r.area_km2 - area).abs() / area.abs().max(1.0));
    }
    if worst > 1e-9 {
        bail!("catalog areas differ by up to {worst:.3e} (relative)");
    }
    let objects = isotach.iter().map(|r| r.id).collect::<BTreeSet<_>>().len();
    Ok((objects, isotach.len(), worst))
}

// ---------------------------------------------------------------------------------------------
// Profile: growing prefixes of the pipeline.

/// The standard spec cut after `steps` steps, delivering what the full spec delivers of the
/// variables that exist by then (a Zarr sink whose fields are dropped), with the catalog when
/// the objects step is in.
fn prefix_spec(full: &PipelineSpec, steps: usize, out: &Path) -> Result<PipelineSpec> {
    let mut spec = full.clone();
    spec.steps.truncate(steps);
    let mut exist: Vec<String> = spec.source.variables.clone();
    exist.extend(spec.steps.iter().map(|s| s.output().to_owned()));
    // One dropped Zarr sink per sink of the full spec (a store holds one grid).
    let mut sinks: Vec<SinkSpec> = Vec::new();
    for (i, sink) in full.sinks.iter().enumerate() {
        if let SinkSpec::Zarr(zarr) = sink {
            let variables: Vec<String> = zarr
                .variables
                .iter()
                .filter(|v| exist.contains(v))
                .cloned()
                .collect();
            if !variables.is_empty() {
                sinks.push(SinkSpec::Zarr(ZarrSink {
                    path: path_str(&out.join(format!("unused-{i}.zarr")))?.to_owned(),
                    variables,
                }));
            }
        }
    }
    if sinks.is_empty() {
        // Nothing computed yet: deliver the first input, so the reads are assembled as IVT is.
        sinks.push(SinkSpec::Zarr(ZarrSink {
            path: path_str(&out.join("unused.zarr"))?.to_owned(),
            variables: vec![spec.source.variables[0].clone()],
        }));
    }
    let catalog = full
        .sinks
        .iter()
        .find(|sink| matches!(sink, SinkSpec::Catalog(c) if exist.contains(&c.objects)));
    spec.sinks = sinks;
    spec.sinks.extend(catalog.cloned());
    Ok(spec)
}

// ---------------------------------------------------------------------------------------------

fn best(runs: &[Timing]) -> Timing {
    runs.iter()
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .cloned()
        .unwrap_or(Timing {
            seconds: f64::NAN,
            cpu_seconds: None,
        })
}

fn cpu(t: &Timing) -> String {
    t.cpu_seconds
        .map_or_else(|| "n/a".to_owned(), |c| format!("{c:.1}"))
}

fn main() -> Result<()> {
    let options = parse_options()?;
    let config = synth_config(&options)?;
    ensure_store(&options, &config)?;
    let store = open_store(&options.store)?;
    let info = store.describe().clone();
    let (nlat, nlon) = info.grid.shape();
    let steps = info.time.times.len();
    let plane_bytes = (nlat * nlon * 4) as f64;
    let store_mb = dir_size(&options.store)? as f64 / 1e6;
    let decoded_gb = plane_bytes * steps as f64 * info.variables.len() as f64 / 1e9;
    let read_gb = plane_bytes * steps as f64 * 2.0 / 1e9;
    drop(store);

    std::fs::create_dir_all(&options.out)?;
    let iso_out = |w: usize| options.out.join(format!("isotach-w{w}"));
    let py_out = |w: usize| options.out.join(format!("xarray-w{w}"));
    let template = benchmark_spec(&options.store, &iso_out(1))?;
    let settings = python_settings(&template)?;
    if options.python.components().count() > 1 && !options.python.exists() {
        bail!(
            "{} not found: set --python or ISOTACH_PYTHON to an interpreter with xarray, dask, \
             zarr, scipy, pandas and pyarrow",
            options.python.display()
        );
    }

    eprintln!(
        "store {}: {steps} steps × {nlat} × {nlon}, {} variables, {store_mb:.0} MB on disk, \
         {decoded_gb:.2} GB decoded; the pipeline reads ivt_u, ivt_v ({read_gb:.2} GB)",
        options.store.display(),
        info.variables.len()
    );
    let workers = [1usize, 2];
    let mut iso_times: BTreeMap<usize, Vec<Timing>> = BTreeMap::new();
    let mut py_times: BTreeMap<usize, Vec<Timing>> = BTreeMap::new();
    let mut reports: BTreeMap<usize, RunReport> = BTreeMap::new();
    let mut py_report = Value::Null;
    for round in 1..=options.repeat {
        for &w in &workers {
            let spec = benchmark_spec(&options.store, &iso_out(w))?;
            let (timing, report) = run_isotach(&spec, w, true)?;
            eprintln!(
                "  Isotach, {w} worker(s) #{round}: {:.2} s (CPU {} s)",
                timing.seconds,
                cpu(&timing)
            );
            iso_times.entry(w).or_default().push(timing);
            reports.insert(w, report);
        }
        for &w in &workers {
            let run = run_python(&options, &settings, &py_out(w), w)?;
            eprintln!(
                "  xarray + dask, {w} thread(s) #{round}: {:.2} s (CPU {} s)",
                run.timing.seconds,
                cpu(&run.timing)
            );
            py_times.entry(w).or_default().push(run.timing);
            py_report = run.report;
        }
    }

    // Results.
    eprintln!("checking results ...");
    let mut problems: Vec<String> = Vec::new();
    let catalog_name = "ar_id";
    let iso_catalog = |w: usize| {
        reports
            .get(&w)
            .and_then(|r| r.catalogs.get(catalog_name))
            .cloned()
            .unwrap_or_default()
    };
    let (iso1, iso2) = (iso_catalog(1), iso_catalog(2));
    if iso1 != iso2 {
        problems.push("Isotach's 1- and 2-worker catalogs differ".into());
    }
    let node_ids = node_to_object(&iso2);
    let mut agreements = Vec::new();
    agreements.extend(compare_store(
        &iso_out(2).join(FIELD_STORE),
        &py_out(2).join(FIELD_STORE),
        &["ivt", "ivt_anom"],
        None,
    )?);
    agreements.extend(compare_store(
        &iso_out(2).join(OBJECT_STORE),
        &py_out(2).join(OBJECT_STORE),
        &["ivt_1deg"],
        None,
    )?);
    agreements.extend(compare_store(
        &iso_out(2).join(OBJECT_STORE),
        &py_out(2).join(OBJECT_STORE),
        &["ar_id"],
        Some(&node_ids),
    )?);
    for (store, variables) in [
        (FIELD_STORE, &["ivt", "ivt_anom"][..]),
        (OBJECT_STORE, &["ivt_1deg", "ar_id"][..]),
    ] {
        for (variable, a) in compare_store(
            &iso_out(1).join(store),
            &iso_out(2).join(store),
            variables,
            None,
        )? {
            if a.nan_mismatches > 0 || a.max_abs_diff > 0.0 {
                problems.push(format!(
                    "Isotach 1 vs 2 workers: {variable} differs (max |diff| {:.3e}, {} NaN \
                     mismatches)",
                    a.max_abs_diff, a.nan_mismatches
                ));
            }
        }
    }
    let catalog_check = read_catalog_csv(&py_out(2).join("ar_catalog.csv"))
        .and_then(|py| compare_catalogs(&iso2, &py));
    for (variable, a) in &agreements {
        if !a.ok() {
            problems.push(format!(
                "{variable}: {} NaN mismatches, {} values beyond tolerance (max |diff| {:.3e})",
                a.nan_mismatches, a.beyond_tolerance, a.max_abs_diff
            ));
        }
    }
    if let Err(e) = &catalog_check {
        problems.push(e.to_string());
    }

    // Profile.
    let mut profile: Vec<(String, f64)> = Vec::new();
    if options.profile {
        eprintln!("profile (2 workers, fields delivered, nothing written) ...");
        let full = benchmark_spec(&options.store, &options.out.join("profile"))?;
        let mut measured = 0;
        for k in 0..=full.steps.len() {
            if k > 0 && matches!(full.steps[k - 1], StepSpec::Threshold { .. }) {
                continue; // its output is not delivered: measured with the objects step
            }
            let spec = prefix_spec(&full, k, &options.out.join("profile"))?;
            let (timing, _) = run_isotach(&spec, 2, false)?;
            let label = if k == 0 {
                "read ivt_u, ivt_v (deliver ivt_u)".to_owned()
            } else {
                let ops: Vec<&str> = full.steps[measured..k].iter().map(|s| s.op()).collect();
                format!("+ {}", ops.join(" + "))
            };
            measured = k;
            eprintln!("  {label}: {:.2} s", timing.seconds);
            profile.push((label, timing.seconds));
        }
        let written = best(&iso_times[&2]).seconds;
        profile.push((
            "+ write Zarr and Parquet (the benchmark run)".into(),
            written,
        ));
    }

    // Table.
    let (i1, i2) = (best(&iso_times[&1]), best(&iso_times[&2]));
    let (p1, p2) = (best(&py_times[&1]), best(&py_times[&2]));
    let available = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\npipeline benchmark: {} ({steps} steps × {nlat} × {nlon}, {store_mb:.0} MB on disk, \
         {decoded_gb:.2} GB decoded, {read_gb:.2} GB read), best of {}",
        options.store.display(),
        options.repeat
    );
    println!(
        "{:<18} {:>12} {:>12} {:>14}",
        "", "1 worker", "2 workers", "scaling 1→2"
    );
    let row = |name: &str, a: &Timing, b: &Timing| {
        println!(
            "{name:<18} {:>10.2} s {:>10.2} s {:>13.2}×",
            a.seconds,
            b.seconds,
            a.seconds / b.seconds
        );
        println!("{:<18} {:>10} s {:>10} s", "  CPU", cpu(a), cpu(b));
    };
    row("Isotach", &i1, &i2);
    row("xarray + dask", &p1, &p2);
    println!(
        "{:<18} {:>11.2}× {:>11.2}×   (goal ≥ 3×)",
        "xarray / Isotach",
        p1.seconds / i1.seconds,
        p2.seconds / i2.seconds
    );
    println!(
        "xarray {} · dask {} · zarr {} · numpy {}; anomaly as {}; Python imports {:.1} s not \
         counted; machine: available_parallelism {available}",
        py_report["xarray"].as_str().unwrap_or("?"),
        py_report["dask"].as_str().unwrap_or("?"),
        py_report["zarr"].as_str().unwrap_or("?"),
        py_report["numpy"].as_str().unwrap_or("?"),
        options.anomaly,
        py_report["import_seconds"].as_f64().unwrap_or(f64::NAN)
    );
    for (variable, a) in &agreements {
        println!(
            "  {variable:<9} {} values, NaN mismatches {}, max |Isotach − xarray| {:.3e}{}",
            a.values,
            a.nan_mismatches,
            a.max_abs_diff,
            if variable == "ar_id" {
                " (labels mapped to final ids through the catalog)"
            } else {
                ""
            }
        );
    }
    if let Ok((objects, rows, worst)) = &catalog_check {
        println!(
            "  catalog   {objects} objects, {rows} object-steps, same (id, node, step) rows, \
             areas within {worst:.1e} (relative)"
        );
    }
    if !profile.is_empty() {
        println!("where Isotach's time goes (2 workers; each prefix delivers its fields):");
        let mut previous = 0.0;
        for (label, seconds) in &profile {
            println!(
                "  {label:<46} {seconds:>7.2} s  (+{:.2} s)",
                seconds - previous
            );
            previous = *seconds;
        }
    }
    let equal = problems.is_empty();
    println!(
        "results: {}",
        if equal {
            "equal".to_owned()
        } else {
            format!("DIFFER\n  {}", problems.join("\n  "))
        }
    );

    let timing_json = |t: &Timing| json!({"seconds": t.seconds, "cpu_seconds": t.cpu_seconds});
    let report = json!({
        "store": options.store.display().to_string(),
        "shape": [steps, nlat, nlon],
        "store_mb": store_mb,
        "decoded_gb": decoded_gb,
        "read_gb": read_gb,
        "repeat": options.repeat,
        "available_parallelism": available,
        "isotach": {"1": timing_json(&i1), "2": timing_json(&i2)},
        "xarray_dask": {"1": timing_json(&p1), "2": timing_json(&p2)},
        "xarray_over_isotach": {"1": p1.seconds / i1.seconds, "2": p2.seconds / i2.seconds},
        "scaling_1_to_2": {"isotach": i1.seconds / i2.seconds, "xarray_dask": p1.seconds / p2.seconds},
        "python": py_report,
        "profile": profile.iter().map(|(l, s)| json!({"stage": l, "seconds": s})).collect::<Vec<_>>(),
        "results_equal": equal,
        "problems": problems,
    });
    let path = options.out.join("pipeline_benchmark.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("wrote {}", path.display());
    if !equal {
        bail!("results differ");
    }
    Ok(())
}
