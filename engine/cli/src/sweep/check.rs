//! Checking every point against its data before anything is submitted.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use isotach_connectors::StoreOptions;
use isotach_core::template::{PointError, TemplateError, output_paths};
use isotach_core::{DatasetInfo, PipelineSpec, SinkSpec, StepSpec, SweepTemplate};

use super::{Plan, local_path};

/// Validates each planned point's spec against its source (opened from here, relative paths taken
/// from `data_root`), checks that the metrics' prediction and labels lie on one grid, and that no
/// new point's Zarr store exists already. Every invalid point is reported together.
pub(crate) fn against_data(
    template: &SweepTemplate,
    plans: &[Plan<'_>],
    data_root: &Path,
    grid_points: usize,
) -> Result<()> {
    // Stores opened, and opened on a region box, once each.
    let mut stores: HashMap<String, Result<DatasetInfo, String>> = HashMap::new();
    let mut regions: HashMap<String, Result<DatasetInfo, String>> = HashMap::new();
    let mut errors = Vec::new();
    for plan in plans {
        let point = plan.point;
        let error = |message: String| PointError {
            point: point.id.clone(),
            assignment: point.describe(),
            message,
        };
        let local = localized(&point.spec, data_root);
        let open = |region| {
            isotach_connectors::open_source(&local.source.uri, &StoreOptions::default(), region)
                .map(|source| source.describe().clone())
                .map_err(|e| e.to_string())
        };
        let store = stores
            .entry(local.source.uri.clone())
            .or_insert_with(|| open(None));
        if let Err(message) = store {
            errors.push(error(format!(
                "source.uri {:?} (read here as {}): {message}; pass --data-root (the server's \
                 first data root as this machine sees it), or --no-data-check when this machine \
                 cannot see the data",
                point.spec.source.uri, local.source.uri
            )));
            continue;
        }
        let dataset = match local.source.region {
            None => store,
            Some(region) => regions
                .entry(format!("{}\u{0}{region:?}", local.source.uri))
                .or_insert_with(|| open(Some(region))),
        };
        let dataset = match dataset {
            Ok(dataset) => dataset,
            Err(message) => {
                errors.push(error(message.clone()));
                continue;
            }
        };
        let pipeline = match local.validate(dataset) {
            Ok(pipeline) => pipeline,
            Err(e) => {
                errors.push(error(e.to_string()));
                continue;
            }
        };
        for (i, iou) in template.metrics.iou.iter().enumerate() {
            let grid = |name: &str| {
                pipeline
                    .stage_of
                    .get(name)
                    .and_then(|stage| pipeline.stage_grid.get(*stage))
            };
            if grid(&iou.prediction) != grid(&iou.labels) {
                errors.push(error(format!(
                    "metrics.iou[{i}]: the prediction {:?} and the labels {:?} lie on different \
                     grids (a coarsen or regrid step stands between them)",
                    iou.prediction, iou.labels
                )));
            }
        }
        if plan.rerun_of.is_none() {
            for (field, path) in output_paths(&point.spec) {
                let is_zarr = point
                    .spec
                    .sinks
                    .iter()
                    .any(|sink| matches!(sink, SinkSpec::Zarr(z) if z.path == path));
                let local = local_path(&path, data_root);
                let occupied = std::fs::read_dir(&local).is_ok_and(|mut d| d.next().is_some());
                if is_zarr && occupied {
                    errors.push(error(format!(
                        "{field} {path:?} ({local}) exists and is not empty, so the job would \
                         fail: an earlier run wrote it? Rerun the point with --only into that \
                         run's results folder, or remove it"
                    )));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(TemplateError::Points {
            errors,
            points: grid_points,
        }
        .into())
    }
}

/// `spec` with the stores it reads as this machine reads them.
fn localized(spec: &PipelineSpec, data_root: &Path) -> PipelineSpec {
    let mut local = spec.clone();
    local.source.uri = local_path(&local.source.uri, data_root);
    for step in &mut local.steps {
        if let StepSpec::Anomaly {
            climatology: Some(store),
            ..
        } = step
        {
            store.uri = local_path(&store.uri, data_root);
        }
    }
    local
}
