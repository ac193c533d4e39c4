//! The sweep's record (`sweep.json`) and its results table (`results.parquet`, `results.csv`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use isotach_core::SweepTemplate;
use isotach_core::template::{ColumnValues, Point, ResultsTable};
use serde::{Deserialize, Serialize};

use super::Plan;
use super::measure::Measured;
use super::submit::Outcome;

/// File name of the record in the results folder.
const RECORD: &str = "sweep.json";

/// Everything a sweep knows about its points, as `sweep.json` holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SweepRecord {
    /// The sweep's name.
    pub sweep: String,
    /// The parameters, in declaration order.
    pub parameters: Vec<String>,
    /// One record per point run, in grid order.
    pub points: Vec<PointRecord>,
}

/// One point's run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PointRecord {
    pub point: String,
    /// Position in the grid.
    pub index: usize,
    /// Parameter → the label of its value.
    pub parameters: BTreeMap<String, String>,
    /// SHA-256 of the canonical resolved spec, `points/<point>.toml`.
    pub spec_hash: String,
    pub spec_file: String,
    pub job_id: Option<String>,
    /// The earlier job this one reran.
    pub rerun_of: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub time_steps: Option<u64>,
    /// Every output file → its SHA-256.
    pub outputs: BTreeMap<String, String>,
    pub outputs_sha256: Option<String>,
    /// For a rerun: whether every output file is byte-identical to the earlier run's.
    pub reproduced: Option<bool>,
    /// Metric column → value.
    pub metrics: BTreeMap<String, f64>,
    pub metrics_note: Option<String>,
}

/// `points/<id>.toml`, relative to the results folder.
pub(crate) fn spec_file(point: &str) -> String {
    format!("points/{point}.toml")
}

impl PointRecord {
    pub(crate) fn new(plan: &Plan<'_>, outcome: Outcome, measured: Measured) -> Self {
        let reproduced = plan.previous.as_ref().and_then(|earlier| {
            match (&earlier.outputs_sha256, &measured.outputs_sha256) {
                (Some(a), Some(b)) => Some(a == b),
                _ => None,
            }
        });
        Self {
            point: plan.point.id.clone(),
            index: plan.point.index,
            parameters: plan
                .point
                .assignment
                .iter()
                .map(|a| (a.parameter.clone(), a.label.clone()))
                .collect(),
            spec_hash: plan.spec_hash.clone(),
            spec_file: spec_file(&plan.point.id),
            job_id: outcome.job.as_ref().map(|j| j.id.clone()),
            rerun_of: plan.rerun_of.clone(),
            status: outcome.status.as_str().to_owned(),
            error: outcome.error,
            submitted_at: outcome.submitted_at,
            started_at: outcome.started_at,
            finished_at: outcome.finished_at,
            time_steps: outcome.time_steps,
            outputs: measured.outputs,
            outputs_sha256: measured.outputs_sha256,
            reproduced,
            metrics: measured.metrics,
            metrics_note: (!measured.notes.is_empty()).then(|| measured.notes.join("; ")),
        }
    }
}

/// The earlier sweep in `out`, if there is one.
pub(crate) fn load(out: &Path) -> Result<Option<SweepRecord>> {
    let path = out.join(RECORD);
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let record = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a sweep record", path.display()))?;
    Ok(Some(record))
}

/// The earlier sweep's records with `records` in place of the points they rerun, in grid order.
pub(crate) fn merge(
    template: &SweepTemplate,
    points: &[Point],
    previous: Option<SweepRecord>,
    records: Vec<PointRecord>,
) -> SweepRecord {
    let mut all: Vec<PointRecord> = previous
        .map(|p| p.points)
        .unwrap_or_default()
        .into_iter()
        .filter(|earlier| !records.iter().any(|r| r.point == earlier.point))
        .collect();
    all.extend(records);
    // Grid order of the current template; a point it no longer has keeps its recorded index.
    let position = |record: &PointRecord| {
        points
            .iter()
            .find(|p| p.id == record.point)
            .map_or(record.index, |p| p.index)
    };
    all.sort_by_key(position);
    SweepRecord {
        sweep: template.name.clone(),
        parameters: template.parameters.iter().map(|p| p.name.clone()).collect(),
        points: all,
    }
}

/// Writes `sweep.json`, `results.parquet` and `results.csv` into `out`; returns the tables' paths.
pub(crate) fn write(
    out: &Path,
    template: &SweepTemplate,
    points: &[Point],
    record: &SweepRecord,
) -> Result<(PathBuf, PathBuf)> {
    let json = serde_json::to_string_pretty(record).context("the sweep record as JSON")?;
    let path = out.join(RECORD);
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;

    let table = results_table(template, points, record);
    let parquet = out.join("results.parquet");
    let batch = table
        .to_record_batch()
        .context("the results as an Arrow table")?;
    isotach_connectors::write_parquet(&parquet, &[batch])
        .with_context(|| format!("writing {}", parquet.display()))?;
    let csv = out.join("results.csv");
    std::fs::write(&csv, table.to_csv()).with_context(|| format!("writing {}", csv.display()))?;
    Ok((parquet, csv))
}

/// One row per point: id, parameters (typed), spec hash and file, job, status and error, times
/// and durations, time steps, output hash, reproduced, the metrics, and why any is missing.
fn results_table(template: &SweepTemplate, points: &[Point], record: &SweepRecord) -> ResultsTable {
    let rows = &record.points;
    let text = |get: fn(&PointRecord) -> Option<String>| {
        ColumnValues::Text(rows.iter().map(get).collect())
    };
    let time = |get: fn(&PointRecord) -> Option<DateTime<Utc>>| {
        ColumnValues::Time(rows.iter().map(get).collect())
    };
    let seconds = |from: fn(&PointRecord) -> Option<DateTime<Utc>>,
                   to: fn(&PointRecord) -> Option<DateTime<Utc>>| {
        ColumnValues::Float(
            rows.iter()
                .map(|r| match (from(r), to(r)) {
                    (Some(a), Some(b)) => Some((b - a).as_seconds_f64()),
                    _ => None,
                })
                .collect(),
        )
    };
    let mut table = ResultsTable::default();
    table.push("point", text(|r| Some(r.point.clone())));
    for parameter in &template.parameters {
        let labels: Vec<&str> = rows
            .iter()
            .map(|r| r.parameters.get(&parameter.name).map_or("", String::as_str))
            .collect();
        table.push(parameter.name.clone(), parameter.column(labels));
    }
    table.push("spec_hash", text(|r| Some(r.spec_hash.clone())));
    table.push("spec_file", text(|r| Some(r.spec_file.clone())));
    table.push("job_id", text(|r| r.job_id.clone()));
    table.push("rerun_of", text(|r| r.rerun_of.clone()));
    table.push("status", text(|r| Some(r.status.clone())));
    table.push("error", text(|r| r.error.clone()));
    table.push("submitted_at", time(|r| r.submitted_at));
    table.push("started_at", time(|r| r.started_at));
    table.push("finished_at", time(|r| r.finished_at));
    table.push("queue_s", seconds(|r| r.submitted_at, |r| r.started_at));
    table.push("run_s", seconds(|r| r.started_at, |r| r.finished_at));
    table.push("total_s", seconds(|r| r.submitted_at, |r| r.finished_at));
    table.push(
        "time_steps",
        ColumnValues::Count(rows.iter().map(|r| r.time_steps).collect()),
    );
    table.push("outputs_sha256", text(|r| r.outputs_sha256.clone()));
    table.push(
        "reproduced",
        ColumnValues::Flag(rows.iter().map(|r| r.reproduced).collect()),
    );
    for column in template.metric_columns(points) {
        let values = rows.iter().map(|r| r.metrics.get(&column).copied());
        let is_count = ["_object_steps", "_objects", "_ar_objects"]
            .iter()
            .any(|suffix| column.ends_with(suffix));
        let values = if is_count {
            ColumnValues::Count(values.map(|v| v.map(|v| v as u64)).collect())
        } else {
            ColumnValues::Float(values.collect())
        };
        table.push(column, values);
    }
    table.push("metrics_note", text(|r| r.metrics_note.clone()));
    table
}
