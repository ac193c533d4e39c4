//! `isotach sweep TEMPLATE`: one job per point of a template's grid on a job server, each watched
//! to its end and measured, and a results table with one row per point.
//!
//! Before anything is submitted, every point is expanded and checked: the template
//! ([`isotach_core::SweepTemplate`]), each point's spec against its data (opened from here, paths
//! taken from `--data-root`), and that no point's Zarr store exists already. Then the points are
//! submitted in order (waiting whenever the server answers RESOURCE_EXHAUSTED), watched
//! concurrently, and measured from their outputs: object counts and areas from their catalogs,
//! IoU from their Zarr stores, and a SHA-256 of every output file. The results folder holds
//! `points/<id>.toml` (the exact spec submitted; its SHA-256 is the point's `spec_hash`),
//! `results.parquet`, `results.csv` and `sweep.json` (the same, and each output file's hash).
//!
//! `--only POINT` reruns points of an earlier sweep in the same results folder: as reruns of their
//! jobs (the server replaces their Zarr stores), checking that the spec is unchanged, and then
//! compares every output file with the earlier run's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::service::ServerArgs;
use anyhow::{Context, Result, anyhow, bail};
use isotach_core::SweepTemplate;
use isotach_core::template::Point;

mod check;
mod measure;
mod record;
mod submit;

use record::{PointRecord, SweepRecord};

#[derive(clap::Args)]
pub(crate) struct SweepArgs {
    /// The template, TOML: a pipeline spec with {{placeholders}}, the parameter grid and the
    /// metrics (see "Templated experiments" in the README).
    template: PathBuf,
    /// Folder for the results: results.parquet, results.csv, sweep.json, points/<id>.toml.
    /// Default: out/sweeps/<the sweep's name>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these points (ids as the results name them; comma-separated or repeated). A point
    /// the results folder already holds is rerun from its job's stored spec, and its outputs are
    /// compared file by file with the earlier run's.
    #[arg(long, value_delimiter = ',', value_name = "POINT")]
    only: Vec<String>,
    /// Expand and check every point and write their specs; submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// The server's first data root as this machine sees it: relative paths in the spec are taken
    /// from it when the points are checked against their data, as the server takes them from its
    /// first root.
    #[arg(long, default_value = ".")]
    data_root: PathBuf,
    /// Do not open the points' data from here (for a server whose data this machine cannot
    /// see): only the template and the specs' form are checked before submitting, and the server
    /// refuses a point that does not fit its data when it comes to it.
    #[arg(long)]
    no_data_check: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// One point to submit: a new job from its spec, or a rerun of an earlier job.
pub(crate) struct Plan<'a> {
    pub point: &'a Point,
    pub spec_hash: String,
    /// The earlier job whose stored spec is run again.
    pub rerun_of: Option<String>,
    /// The earlier run of this point in the same results folder.
    pub previous: Option<PointRecord>,
}

pub(crate) fn sweep(args: &SweepArgs) -> Result<()> {
    let template = load_template(&args.template)?;
    let points = template.points().with_context(|| {
        format!(
            "template {}: nothing was submitted",
            args.template.display()
        )
    })?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out/sweeps").join(&template.name));
    let previous = record::load(&out)?;
    let selected = select(&points, &args.only)?;
    let plans = plan(&template, &selected, previous.as_ref(), &out, args)?;

    if args.no_data_check {
        eprintln!(
            "not checking the points against their data (--no-data-check): the server checks \
             each as it is submitted"
        );
    } else {
        check::against_data(&template, &plans, &args.data_root, points.len())
            .context("checking the points against their data: nothing was submitted")?;
    }

    std::fs::create_dir_all(out.join("points"))
        .with_context(|| format!("creating {}", out.join("points").display()))?;
    std::fs::copy(&args.template, out.join("template.toml"))
        .with_context(|| format!("copying the template into {}", out.display()))?;
    for plan in &plans {
        let path = out.join(record::spec_file(&plan.point.id));
        std::fs::write(&path, &plan.point.canonical_spec)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let grid: Vec<String> = template
        .parameters
        .iter()
        .map(|p| format!("{} {}", p.values.len(), p.name))
        .collect();
    println!(
        "sweep {}: {} of {} points ({}); specs in {}",
        template.name,
        plans.len(),
        points.len(),
        grid.join(" × "),
        out.join("points").display()
    );
    if args.dry_run {
        for plan in &plans {
            println!(
                "  {:<40} {}  {}",
                plan.point.id,
                short(&plan.spec_hash),
                plan.point.describe()
            );
        }
        println!("dry run: nothing submitted");
        return Ok(());
    }

    let outcomes = submit::run(&args.server.address(), &plans)?;
    let metric_objects = template.metric_objects(&points);
    let mut records = Vec::new();
    for (plan, outcome) in plans.iter().zip(outcomes) {
        let measured = if outcome.status == submit::Status::Succeeded {
            measure::point(&template, &metric_objects, plan.point, outcome.job_spec())
        } else {
            measure::Measured::default()
        };
        records.push(PointRecord::new(plan, outcome, measured));
    }

    let merged = record::merge(&template, &points, previous, records.clone());
    let (parquet, csv) = record::write(&out, &template, &points, &merged)?;
    println!("results: {} and {}", parquet.display(), csv.display());

    let failed: Vec<&PointRecord> = records
        .iter()
        .filter(|r| r.status != submit::Status::Succeeded.as_str())
        .collect();
    let mut not_reproduced = Vec::new();
    for record in &records {
        let Some(earlier) = plans
            .iter()
            .find(|p| p.point.id == record.point)
            .and_then(|p| p.previous.as_ref())
        else {
            continue;
        };
        match record.reproduced {
            Some(true) => println!(
                "point {}: outputs identical to job {}'s ({} files, sha256 {})",
                record.point,
                earlier.job_id.as_deref().unwrap_or("?"),
                record.outputs.len(),
                record.outputs_sha256.as_deref().unwrap_or("?")
            ),
            Some(false) => {
                let differ = measure::differing_files(&earlier.outputs, &record.outputs);
                eprintln!(
                    "point {}: outputs differ from job {}'s: {}",
                    record.point,
                    earlier.job_id.as_deref().unwrap_or("?"),
                    differ.join(", ")
                );
                not_reproduced.push(record.point.clone());
            }
            None => {}
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} points did not succeed ({}); see {}",
            failed.len(),
            records.len(),
            failed
                .iter()
                .map(|r| format!("{}: {}", r.point, r.status))
                .collect::<Vec<_>>()
                .join(", "),
            csv.display()
        );
    }
    if !not_reproduced.is_empty() {
        bail!(
            "rerunning did not reproduce the outputs of {}",
            not_reproduced.join(", ")
        );
    }
    Ok(())
}

fn load_template(path: &Path) -> Result<SweepTemplate> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading template {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    SweepTemplate::from_toml_str(&text, |spec| {
        let spec_path = base.join(spec);
        std::fs::read_to_string(&spec_path).map_err(|e| format!("{}: {e}", spec_path.display()))
    })
    .with_context(|| format!("template {}", path.display()))
}

/// The points `only` names (all without it), in grid order.
fn select<'a>(points: &'a [Point], only: &[String]) -> Result<Vec<&'a Point>> {
    if only.is_empty() {
        return Ok(points.iter().collect());
    }
    let wanted: BTreeSet<&str> = only.iter().map(|s| s.trim()).collect();
    if let Some(unknown) = wanted
        .iter()
        .find(|id| !points.iter().any(|p| p.id == **id))
    {
        let ids: Vec<&str> = points.iter().take(12).map(|p| p.id.as_str()).collect();
        let more = points.len().saturating_sub(ids.len());
        return Err(anyhow!(
            "--only {unknown:?} is not a point of this template (points: {}{})",
            ids.join(", "),
            if more > 0 {
                format!(", … {more} more")
            } else {
                String::new()
            }
        ));
    }
    Ok(points
        .iter()
        .filter(|p| wanted.contains(p.id.as_str()))
        .collect())
}

/// What to submit for each selected point, given the earlier sweep in the results folder.
fn plan<'a>(
    template: &SweepTemplate,
    selected: &[&'a Point],
    previous: Option<&SweepRecord>,
    out: &Path,
    args: &SweepArgs,
) -> Result<Vec<Plan<'a>>> {
    let earlier: BTreeMap<&str, &PointRecord> = match previous {
        None => BTreeMap::new(),
        Some(previous) => {
            if args.only.is_empty() {
                bail!(
                    "{} holds an earlier sweep ({} points); rerun points of it with --only POINT, \
                     or write this one elsewhere with --out",
                    out.display(),
                    previous.points.len()
                );
            }
            let names: Vec<&str> = template
                .parameters
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            if previous.sweep != template.name || previous.parameters != names {
                bail!(
                    "{} holds sweep {:?} over ({}), and this template is sweep {:?} over ({}); \
                     write this one elsewhere with --out",
                    out.display(),
                    previous.sweep,
                    previous.parameters.join(", "),
                    template.name,
                    names.join(", ")
                );
            }
            previous
                .points
                .iter()
                .map(|p| (p.point.as_str(), p))
                .collect()
        }
    };
    selected
        .iter()
        .map(|point| {
            let spec_hash = measure::sha256_hex(point.canonical_spec.as_bytes());
            let previous = earlier.get(point.id.as_str()).copied();
            if let Some(previous) = previous
                && previous.spec_hash != spec_hash
            {
                bail!(
                    "point {}: its spec changed since job {} ran it (spec_hash {} → {}), so a \
                     rerun would not reproduce it and would replace its outputs; write the changed \
                     sweep elsewhere with --out",
                    point.id,
                    previous.job_id.as_deref().unwrap_or("?"),
                    short(&previous.spec_hash),
                    short(&spec_hash)
                );
            }
            Ok(Plan {
                point,
                spec_hash,
                rerun_of: previous.and_then(|p| p.job_id.clone()),
                previous: previous.cloned(),
            })
        })
        .collect()
}

/// The first 12 hex digits of a hash, as printed.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// `path` as this machine reads it: relative paths from `root`, `file://` stripped; other URIs
/// as they are.
pub(crate) fn local_path(path: &str, root: &Path) -> String {
    if let Some(rest) = path.strip_prefix("file://") {
        return local_path(rest, root);
    }
    if path.contains("://") || Path::new(path).is_absolute() {
        return path.to_owned();
    }
    root.join(path).display().to_string()
}
