//! Measuring a finished point: its metrics, and the SHA-256 of every file it wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{Context as Digest, SHA256};
use isotach_connectors::{Source, StoreOptions, TileRequest};
use isotach_core::template::{
    CatalogSummary, IouCounts, IouSpec, Point, catalog_sinks, output_paths,
};
use isotach_core::{PipelineSpec, SinkSpec, SweepTemplate};

/// What was measured on one point's outputs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    /// Metric column → value; a metric that could not be measured is absent (null).
    pub metrics: BTreeMap<String, f64>,
    /// Why some metrics are missing.
    pub notes: Vec<String>,
    /// Every output file (as the server named it) → its SHA-256.
    pub outputs: BTreeMap<String, String>,
    /// SHA-256 over the sorted `path\tsha256` lines of `outputs`; `None` when an output could not
    /// be read here.
    pub outputs_sha256: Option<String>,
}

/// Measures `point` from the outputs of the spec its job ran (`job_spec`, the server's resolved
/// paths; `point.spec` when the server sent none).
pub(crate) fn point(
    template: &SweepTemplate,
    metric_objects: &[String],
    point: &Point,
    job_spec: Option<&PipelineSpec>,
) -> Measured {
    let spec = job_spec.unwrap_or(&point.spec);
    let mut measured = Measured::default();
    for objects in metric_objects {
        let Some((_, path)) = catalog_sinks(spec).find(|(o, _)| o == objects) else {
            measured
                .notes
                .push(format!("{objects}: no catalog sink in this point's spec"));
            continue;
        };
        let summary = isotach_connectors::read_table(Path::new(path))
            .map_err(|e| e.to_string())
            .and_then(|batches| {
                CatalogSummary::from_batches(&batches)
                    .map_err(|message| format!("catalog {path}: {message}"))
            });
        match summary {
            Ok(summary) => {
                let mut put = |name: &str, value: Option<f64>| {
                    if let Some(value) = value {
                        measured.metrics.insert(format!("{objects}_{name}"), value);
                    }
                };
                put("object_steps", Some(summary.object_steps as f64));
                put("objects", Some(summary.objects as f64));
                put("area_km2_total", Some(summary.area_km2_total));
                put("area_km2_mean", summary.area_km2_mean);
                put("area_km2_max", summary.area_km2_max);
                put("ar_objects", summary.ar_objects.map(|n| n as f64));
            }
            Err(e) => measured.notes.push(e.to_string()),
        }
    }
    for iou in &template.metrics.iou {
        match intersection_over_union(spec, iou) {
            Ok(Some(value)) => {
                measured.metrics.insert(iou.column(), value);
            }
            Ok(None) => measured.notes.push(format!(
                "{}: neither {} nor {} has a positive cell",
                iou.column(),
                iou.prediction,
                iou.labels
            )),
            Err(message) => measured.notes.push(format!("{}: {message}", iou.column())),
        }
    }
    match digest_outputs(spec) {
        Ok((files, total)) => {
            measured.outputs = files;
            measured.outputs_sha256 = Some(total);
        }
        Err(message) => measured.notes.push(message),
    }
    measured
}

/// IoU of `iou.prediction` and `iou.labels` pooled over every step of the Zarr stores that hold
/// them.
fn intersection_over_union(spec: &PipelineSpec, iou: &IouSpec) -> Result<Option<f64>, String> {
    let store_of = |variable: &str| {
        spec.sinks
            .iter()
            .find_map(|sink| match sink {
                SinkSpec::Zarr(z) if z.variables.iter().any(|v| v == variable) => {
                    Some(z.path.clone())
                }
                _ => None,
            })
            .ok_or_else(|| format!("no zarr sink writes {variable:?}"))
    };
    let open = |path: &str| {
        isotach_connectors::open_source(path, &StoreOptions::default(), None)
            .map_err(|e| e.to_string())
    };
    let prediction = open(&store_of(&iou.prediction)?)?;
    let labels = open(&store_of(&iou.labels)?)?;
    let (p_info, l_info) = (prediction.describe(), labels.describe());
    if p_info.grid.shape() != l_info.grid.shape() {
        return Err(format!(
            "{} is {:?} cells and {} {:?}; they must lie on one grid",
            iou.prediction,
            p_info.grid.shape(),
            iou.labels,
            l_info.grid.shape()
        ));
    }
    let steps = p_info.time.len().min(l_info.time.len());
    let mut counts = IouCounts::default();
    for step in 0..steps as u64 {
        let p = read_field(prediction.as_ref(), &iou.prediction, step)?;
        let l = read_field(labels.as_ref(), &iou.labels, step)?;
        counts.add(&p, &l, iou.prediction_min, iou.labels_min)?;
    }
    Ok(counts.iou())
}

/// One whole field of `variable` at `step`, row-major.
fn read_field(source: &dyn Source, variable: &str, step: u64) -> Result<Vec<f32>, String> {
    let (rows, cols) = source.describe().grid.shape();
    let mut field = vec![f32::NAN; rows * cols];
    for (region, window) in source.regions(variable).map_err(|e| e.to_string())? {
        let request = TileRequest {
            step,
            region,
            window,
        };
        let tile = source
            .read_tile(variable, &request)
            .map_err(|e| e.to_string())?;
        let values = tile.values.as_slice();
        for r in 0..window.rows {
            let start = (window.row0 + r) * cols + window.col0;
            field[start..start + window.cols]
                .copy_from_slice(&values[r * window.cols..(r + 1) * window.cols]);
        }
    }
    Ok(field)
}

/// Every file under the spec's output paths with its SHA-256, and one SHA-256 over them all.
fn digest_outputs(spec: &PipelineSpec) -> Result<(BTreeMap<String, String>, String), String> {
    let mut files = BTreeMap::new();
    for (field, path) in output_paths(spec) {
        let path = isotach_connectors::local_path(&path).map_err(|e| e.to_string())?;
        if !path.exists() {
            return Err(format!(
                "{field} {} cannot be read here; no output hashes",
                path.display()
            ));
        }
        let mut found = Vec::new();
        walk(&path, &mut found).map_err(|e| format!("listing {}: {e}", path.display()))?;
        for file in found {
            let bytes =
                std::fs::read(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
            files.insert(file.display().to_string(), sha256_hex(&bytes));
        }
    }
    let mut total = Digest::new(&SHA256);
    for (path, hash) in &files {
        total.update(format!("{path}\t{hash}\n").as_bytes());
    }
    Ok((files, hex(total.finish().as_ref())))
}

fn walk(path: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for entry in entries {
            walk(&entry, found)?;
        }
    } else {
        found.push(path.to_owned());
    }
    Ok(())
}

/// The files whose hashes differ between two runs, or that only one of them wrote.
pub(crate) fn differing_files(
    earlier: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut differ: Vec<String> = earlier
        .iter()
        .filter(|(path, hash)| now.get(*path) != Some(*hash))
        .map(|(path, _)| path.clone())
        .collect();
    differ.extend(
        now.keys()
            .filter(|path| !earlier.contains_key(*path))
            .cloned(),
    );
    differ
}

/// SHA-256 of `bytes`, in lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn differing_files_names_changed_missing_and_new_files() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let earlier = map(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let now = map(&[("a", "1"), ("b", "9"), ("d", "4")]);
        assert_eq!(differing_files(&earlier, &now), ["b", "c", "d"]);
        assert!(differing_files(&earlier, &earlier).is_empty());
    }
}
