use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use differential_dataflow::AsCollection;
use isotach_connectors::{ReadOptions, Source, TileRequest};
use isotach_core::{
    Field, LatLonGrid, RegionKey, SinkSpec, StepScope, StepSpec, TileWindow, ValidatedPipeline,
    VerticalAxis,
};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concatenate, Exchange, Inspect, Operator, Probe};
use timely::dataflow::{InputHandle, ProbeHandle, Stream};

use crate::inference::{InferOptions, InferenceClient};
use crate::operators::{
    Anomaly, Coarsen, ConvertUnits, Expression, Normalize, NormalizeStats, ObjectRecord, Objects,
    ObjectsConfig, Regrid, Rolling, Threshold, ThresholdLevel, coarsen_grid, finish_catalog,
    regrid_target,
};
use crate::operators::{
    AssembleFields, FieldPlan, IntegratedVapourTransport, IvtConfig, Magnitude, ReadTiles,
    SplitFields, StepStatistics, TilePartial, block_regions,
};
use crate::operators::{Infer, InferOutput, StoredAnomaly, StoredClimatology};
use crate::{EngineError, ErrorSlot, Progress, Result, StepStats, load_climatology};

/// How long an idle worker sleeps before looking again: spinning workers take the cores the
/// readers and sinks need (measured: 2 workers under load 13 s spinning, 7 s parking).
const IDLE_PARK: std::time::Duration = std::time::Duration::from_millis(1);

/// Largest region, `[rows, cols]`, into which fields are cut again after a whole-field step.
const STAGE_BLOCK: [usize; 2] = [128, 256];

/// How to run a pipeline.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Timely worker threads in this process (default 2).
    pub workers: usize,
    /// Steps admitted into the dataflow before the oldest has completed (default 4): bounds
    /// memory whatever the length of the time range.
    pub max_steps_in_flight: u64,
    /// How each worker reads its tiles (concurrency and read-ahead memory).
    pub read: ReadOptions,
    /// The processes of a multi-process run (default: this process alone).
    pub cluster: Option<Cluster>,
    /// Live per-stage counts, readable while the run goes on.
    pub progress: Arc<Progress>,
}

/// One process's place in a multi-process run: timely's cluster over TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index into `addresses`.
    pub process: usize,
    /// `host:port` of every process, the same list in every process.
    pub addresses: Vec<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_steps_in_flight: 4,
            read: ReadOptions::default(),
            cluster: None,
            progress: Arc::default(),
        }
    }
}

impl RunConfig {
    /// True for the process that admits the work and holds the gathered tables (statistics,
    /// catalogs): process 0, or the only process.
    pub fn is_lead(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.process == 0)
    }

    fn timely(&self) -> Result<timely::Config> {
        let communication = match &self.cluster {
            None if self.workers == 1 => timely::CommunicationConfig::Thread,
            None => timely::CommunicationConfig::Process(self.workers),
            Some(cluster) => {
                if cluster.process >= cluster.addresses.len() {
                    return Err(EngineError::Plan(format!(
                        "process {} is not among the {} addresses given",
                        cluster.process,
                        cluster.addresses.len()
                    )));
                }
                timely::CommunicationConfig::Cluster {
                    threads: self.workers,
                    process: cluster.process,
                    addresses: cluster.addresses.clone(),
                    report: false,
                    zerocopy: false,
                }
            }
        };
        Ok(timely::Config {
            communication,
            worker: timely::WorkerConfig::default(),
        })
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// Steps processed.
    pub steps: usize,
    /// Tiles read from the source.
    pub tiles_read: usize,
    /// Fields delivered to this process's consumer.
    pub fields: usize,
    /// The variable the statistics describe (the first layer of the first frames sink).
    pub stats_variable: Option<String>,
    /// Units of that variable.
    pub stats_units: String,
    /// Per-step statistics of that variable, in step order (lead process only).
    pub stats: Vec<StepStats>,
    /// The object catalog of each objects step named by a catalog sink, duration filter applied,
    /// sorted by (id, step) (lead process only).
    pub catalogs: BTreeMap<String, Vec<ObjectRecord>>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// A grid the dataflow works on: the source grid, then one per whole-field step.
struct Stage {
    grid: Arc<LatLonGrid>,
    regions: Arc<Vec<(RegionKey, TileWindow)>>,
}

/// The grids of every stage, known before any data is read.
fn plan_stages(
    pipeline: &ValidatedPipeline,
    source_grid: &LatLonGrid,
    source_regions: Vec<(RegionKey, TileWindow)>,
) -> Result<Vec<Stage>> {
    let mut stages = vec![Stage {
        grid: Arc::new(source_grid.clone()),
        regions: Arc::new(source_regions),
    }];
    for (i, step) in pipeline.spec.steps.iter().enumerate() {
        if step.scope() != StepScope::WholeField {
            continue;
        }
        let input = &step.inputs()[0];
        let input_grid = &stages[pipeline.stage_of[input]].grid;
        let grid = match step {
            StepSpec::Coarsen { factor, .. } => {
                coarsen_grid(input_grid, [factor[0] as usize, factor[1] as usize])
            }
            StepSpec::Regrid { resolution_deg, .. } => regrid_target(input_grid, *resolution_deg),
            _ => Ok((**input_grid).clone()),
        }
        .map_err(|message| {
            EngineError::Spec(isotach_core::SpecError::Invalid {
                field: format!("step[{i}]"),
                message,
            })
        })?;
        let regions = block_regions(&grid, STAGE_BLOCK);
        stages.push(Stage {
            grid: Arc::new(grid),
            regions: Arc::new(regions),
        });
    }
    Ok(stages)
}

/// A pipeline with everything it needs from outside resolved: its grids and regions planned, and
/// what its steps read before any tile (levels, stored climatologies, inference workers and their
/// model) loaded and checked. Made by [`prepare_pipeline`], run by [`run_prepared`].
pub struct PreparedPipeline {
    pipeline: ValidatedPipeline,
    source: Arc<dyn Source>,
    regions_read: usize,
    stages: Arc<Vec<Stage>>,
    steps: Vec<Prepared>,
}

impl std::fmt::Debug for PreparedPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPipeline")
            .field("name", &self.pipeline.spec.name)
            .field("stages", &self.stages.len())
            .finish_non_exhaustive()
    }
}

/// Plans `pipeline` over `source` and prepares its steps, so that everything that can fail before
/// the data flows fails here: call it before creating any output.
pub fn prepare_pipeline(
    pipeline: &ValidatedPipeline,
    source: Arc<dyn Source>,
) -> Result<PreparedPipeline> {
    let info = source.describe();
    let spec = &pipeline.spec;
    let read_variables = &spec.source.variables;
    let regions = source.regions(&read_variables[0])?;
    for other in read_variables.iter().skip(1) {
        if source.regions(other)? != regions {
            return Err(EngineError::Plan(format!(
                "{other:?} is chunked differently from {:?}; tiles of one region must align",
                read_variables[0]
            )));
        }
    }
    let regions_read = regions.len();
    let stages = plan_stages(pipeline, &info.grid, regions)?;
    let selected_times: Vec<chrono::DateTime<chrono::Utc>> = pipeline
        .steps
        .clone()
        .filter_map(|s| info.time.times.get(s).copied())
        .collect();
    let steps = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| prepare_step(i, step, pipeline, &stages, &selected_times))
        .collect::<Result<_>>()?;
    Ok(PreparedPipeline {
        pipeline: pipeline.clone(),
        source,
        regions_read,
        stages: Arc::new(stages),
        steps,
    })
}

/// Runs `pipeline` over `source` with `config.workers` timely workers (in each of
/// `config.cluster`'s processes), sending every completed field this process assembles to `fields`
/// (a bounded channel: a slow consumer slows the dataflow, nothing piles up).
pub fn run_pipeline(
    pipeline: &ValidatedPipeline,
    source: Arc<dyn Source>,
    config: RunConfig,
    fields: tokio::sync::mpsc::Sender<Field>,
) -> Result<RunReport> {
    run_prepared(prepare_pipeline(pipeline, source)?, config, fields)
}

/// Runs a pipeline [`prepare_pipeline`] made, as [`run_pipeline`] does.
pub fn run_prepared(
    prepared: PreparedPipeline,
    config: RunConfig,
    fields: tokio::sync::mpsc::Sender<Field>,
) -> Result<RunReport> {
    if config.workers == 0 || config.max_steps_in_flight == 0 {
        return Err(EngineError::Plan(format!(
            "workers ({}) and max_steps_in_flight ({}) must be at least 1",
            config.workers, config.max_steps_in_flight
        )));
    }
    let started = Instant::now();
    let PreparedPipeline {
        pipeline,
        source,
        regions_read,
        stages,
        steps: prepared,
    } = prepared;
    let pipeline = &pipeline;
    let info = source.describe().clone();
    let spec = &pipeline.spec;
    let read_variables = Arc::new(spec.source.variables.clone());
    let times = Arc::new(info.time.times.clone());

    // What the sinks need, gathered into whole fields stage by stage.
    let mut delivered_variables: Vec<String> = Vec::new();
    let mut catalog_steps: Vec<String> = Vec::new();
    for sink in &spec.sinks {
        let names: Vec<String> = match sink {
            SinkSpec::Frames(frames) => frames.layers.iter().map(|l| l.variable.clone()).collect(),
            SinkSpec::Zarr(zarr) => zarr.variables.clone(),
            SinkSpec::Catalog(catalog) => {
                catalog_steps.push(catalog.objects.clone());
                Vec::new()
            }
        };
        for name in names {
            if !delivered_variables.contains(&name) {
                delivered_variables.push(name);
            }
        }
    }
    let stats_variable = spec.sinks.iter().find_map(|sink| match sink {
        SinkSpec::Frames(frames) => frames.layers.first().map(|l| l.variable.clone()),
        _ => None,
    });
    let describe = |name: &String| {
        let units = pipeline.units.get(name).cloned().unwrap_or_default();
        let long_name = pipeline
            .long_names
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.clone());
        (name.clone(), units, long_name)
    };
    let field_plan = |stage: usize, names: &[String]| {
        Arc::new(FieldPlan {
            grid: stages[stage].grid.clone(),
            times: times.clone(),
            variables: names.iter().map(describe).collect(),
            regions_per_step: stages[stage].regions.len(),
        })
    };
    let delivered_plans: Vec<(usize, Arc<FieldPlan>)> = (0..stages.len())
        .filter_map(|stage| {
            let names: Vec<String> = delivered_variables
                .iter()
                .filter(|v| pipeline.stage_of.get(*v) == Some(&stage))
                .cloned()
                .collect();
            (!names.is_empty()).then(|| (stage, field_plan(stage, &names)))
        })
        .collect();
    // Each whole-field step gathers its inputs from their stage.
    let step_plans: Vec<Option<Arc<FieldPlan>>> = spec
        .steps
        .iter()
        .map(|step| {
            (step.scope() == StepScope::WholeField).then(|| {
                let inputs = step.inputs();
                field_plan(pipeline.stage_of[&inputs[0]], &inputs)
            })
        })
        .collect();
    let stage_outputs: Vec<usize> = spec
        .steps
        .iter()
        .map(|step| pipeline.stage_of[step.output()])
        .collect();
    let step_in_stage: Vec<usize> = spec
        .steps
        .iter()
        .map(|step| {
            step.inputs()
                .first()
                .and_then(|input| pipeline.stage_of.get(input).copied())
                .unwrap_or(0)
        })
        .collect();
    let input_units = pipeline.units.clone();
    let long_names = pipeline.long_names.clone();

    let selected_steps = pipeline.steps.clone();
    let steps_total = selected_steps.len() as u64;
    let progress = config.progress.clone();
    let read_counter = progress.stage(
        "read",
        "tiles",
        steps_total * (regions_read * read_variables.len()) as u64,
    );
    let step_counters: Vec<_> = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| progress.stage(&format!("step[{i}] {}", step.op()), "bundles", 0))
        .collect();
    let deliver_counter = progress.stage("deliver", "fields", 0);
    for (i, step) in prepared.iter().enumerate() {
        if let Prepared::Infer(client) = step {
            progress.timer(
                &format!("step[{i}] infer request"),
                client.stats().round_trips.clone(),
            );
        }
    }

    let ops = Arc::new(spec.steps.clone());
    let errors = ErrorSlot::default();
    let partials: Arc<Mutex<BTreeMap<u64, TilePartial>>> = Arc::default();
    let catalog_records: Arc<Mutex<BTreeMap<String, BTreeMap<ObjectRecord, isize>>>> =
        Arc::default();
    let delivered: Arc<Mutex<usize>> = Arc::default();
    let timely_config = config.timely()?;
    let (max_in_flight, read_options) = (config.max_steps_in_flight, config.read);

    let worker_errors = errors.clone();
    let worker_partials = partials.clone();
    let worker_catalogs = catalog_records.clone();
    let worker_delivered = delivered.clone();
    let worker_stats_variable = stats_variable.clone().map(|v| {
        let stage = pipeline.stage_of.get(&v).copied().unwrap_or(0);
        (v, stage)
    });
    let guards = timely::execute(timely_config, move |worker| {
        let errors = worker_errors.clone();
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<TileRequest>>>::new();
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            let read_counter = read_counter.clone();
            let read = input
                .to_stream(scope)
                .read_tiles(source.clone(), read_variables.clone(), read_options, errors.clone())
                .inspect(move |bundle| read_counter.add(bundle.tiles.len() as u64));
            let mut stage_streams: Vec<Option<Stream<'_, u64, Vec<crate::TileBundle>>>> =
                (0..stages.len()).map(|_| None).collect();
            stage_streams[0] = Some(read);
            for (i, op) in ops.iter().enumerate() {
                let counter = step_counters[i].clone();
                let output = op.output().to_owned();
                let out_stage = stage_outputs[i];
                let Some(plan) = &step_plans[i] else {
                    let Some(bundles) = stage_streams[out_stage].take() else {
                        continue;
                    };
                    let bundles =
                        cell_step(op, bundles, &prepared[i], (&input_units, &times), errors.clone());
                    stage_streams[out_stage] =
                        Some(bundles.inspect(move |_| counter.add(1)));
                    continue;
                };
                let in_stage = step_in_stage[i];
                let Some(bundles) = stage_streams[in_stage].clone() else {
                    continue;
                };
                let gathered = bundles.assemble_fields(plan.clone(), errors.clone());
                let produced = match op {
                    StepSpec::Coarsen { input, factor, .. } => gathered.coarsen(
                        input.clone(),
                        output.clone(),
                        [factor[0] as usize, factor[1] as usize],
                        errors.clone(),
                    ),
                    StepSpec::Regrid { input, .. } => gathered.regrid(
                        input.clone(),
                        output.clone(),
                        stages[out_stage].grid.clone(),
                        errors.clone(),
                    ),
                    StepSpec::Objects { .. } => {
                        let Some(objects) = objects_config(op) else {
                            continue;
                        };
                        let (labels, catalog) = gathered.objects(Arc::new(objects), errors.clone());
                        if catalog_steps.contains(&output) {
                            let records = worker_catalogs.clone();
                            let name = output.clone();
                            catalog
                                .inspect(move |(record, _time, diff)| {
                                    let mut all = records.lock().unwrap_or_else(|p| p.into_inner());
                                    let entry = all
                                        .entry(name.clone())
                                        .or_default()
                                        .entry(record.clone())
                                        .or_default();
                                    *entry += diff;
                                })
                                .probe_with(&probe);
                        } else {
                            catalog.probe_with(&probe);
                        }
                        labels
                    }
                    StepSpec::Infer { inputs, .. } => match &prepared[i] {
                        Prepared::Infer(client) => gathered.infer(
                            Arc::new(inputs.clone()),
                            InferOutput {
                                name: output.clone(),
                                units: input_units.get(&output).cloned().unwrap_or_default(),
                                long_name: long_names.get(&output).cloned().unwrap_or_default(),
                            },
                            client.clone(),
                            errors.clone(),
                        ),
                        _ => {
                            errors.set(EngineError::Plan(format!(
                                "step {output} (infer) has no inference client"
                            )));
                            gathered
                        }
                    },
                    _ => gathered,
                };
                let produced = produced.inspect(move |_| counter.add(1));
                stage_streams[out_stage] = Some(
                    produced.split_fields(Arc::new(vec![output]), stages[out_stage].regions.clone()),
                );
            }

            if let Some((variable, stage)) = worker_stats_variable.clone()
                && let Some(bundles) = stage_streams[stage].clone()
            {
                let grid = stages[stage].grid.clone();
                let partials = worker_partials.clone();
                bundles
                    .flat_map(move |bundle| {
                        let partial = bundle.tile(&variable).and_then(|tile| TilePartial::of(tile, &grid));
                        partial.map(|p| ((bundle.step, p), bundle.step, 1isize))
                    })
                    .as_collection()
                    .step_statistics()
                    .inner
                    .exchange(|_| 0)
                    .inspect(move |((step, partial), _time, diff)| {
                        let mut partials = partials.lock().unwrap_or_else(|p| p.into_inner());
                        if *diff > 0 {
                            partials.insert(*step, *partial);
                        } else if partials.get(step) == Some(partial) {
                            partials.remove(step);
                        }
                    })
                    .probe_with(&probe);
            }

            let mut delivered_streams = Vec::new();
            for (stage, plan) in delivered_plans.iter() {
                if let Some(bundles) = stage_streams[*stage].clone() {
                    delivered_streams.push(bundles.assemble_fields(plan.clone(), errors.clone()));
                }
            }
            let tx = fields.clone();
            let delivered = worker_delivered.clone();
            let deliver_counter = deliver_counter.clone();
            let sink_errors = errors.clone();
            scope
                .concatenate(delivered_streams)
                .inspect(|field| tracing::debug!(step = field.step, variable = %field.variable, "field complete"))
                .probe_with(&probe)
                .sink(Pipeline, "SendFields", move |(input, _)| {
                    input.for_each(|_, data| {
                        for field in data.drain(..) {
                            let step = field.step;
                            if tx.blocking_send(field).is_err() {
                                sink_errors.set(EngineError::ConsumerGone(step));
                            } else {
                                deliver_counter.add(1);
                                *delivered.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                            }
                        }
                    });
                });
        });

        // Worker 0 of process 0 admits the requests step by step; the exchange in ReadTiles
        // shards them across every worker of every process.
        if worker.index() == 0 {
            for step in selected_steps.clone() {
                if errors.is_set() {
                    break;
                }
                input.advance_to(step as u64);
                for (region, window) in stages[0].regions.iter() {
                    input.send(TileRequest { step: step as u64, region: *region, window: *window });
                }
                let oldest_allowed = (step as u64 + 1).saturating_sub(max_in_flight);
                while probe.less_than(&oldest_allowed) && !errors.is_set() {
                    worker.step_or_park(Some(IDLE_PARK));
                }
            }
        }
        input.close();
        while worker.step_or_park(Some(IDLE_PARK)) {}
    })
    .map_err(EngineError::Dataflow)?;
    for result in guards.join() {
        result.map_err(EngineError::Dataflow)?;
    }
    if let Some(error) = errors.take() {
        return Err(error);
    }

    let stats = partials
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(step, p)| {
            let time = info
                .time
                .times
                .get(*step as usize)
                .copied()
                .unwrap_or_default();
            StepStats::from_partial(*step, time, p)
        })
        .collect();
    let catalogs = catalog_records
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(name, records)| {
            let kept: Vec<ObjectRecord> = records
                .iter()
                .filter(|(_, count)| **count > 0)
                .map(|(record, _)| record.clone())
                .collect();
            let min_duration = spec
                .steps
                .iter()
                .find_map(|step| match step {
                    StepSpec::Objects {
                        output,
                        min_duration_steps,
                        ..
                    } if output == name => Some(*min_duration_steps),
                    _ => None,
                })
                .unwrap_or(1);
            (name.clone(), finish_catalog(kept, min_duration))
        })
        .collect();
    let fields = *delivered.lock().unwrap_or_else(|p| p.into_inner());
    Ok(RunReport {
        steps: pipeline.steps.len(),
        tiles_read: pipeline.steps.len() * regions_read * spec.source.variables.len(),
        fields,
        stats_units: stats_variable
            .as_ref()
            .and_then(|v| pipeline.units.get(v).cloned())
            .unwrap_or_default(),
        stats_variable,
        stats,
        catalogs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Applies a cell-by-cell step to the bundles of its stage.
fn cell_step<'scope>(
    op: &StepSpec,
    bundles: Stream<'scope, u64, Vec<crate::TileBundle>>,
    prepared: &Prepared,
    (units, times): (
        &BTreeMap<String, String>,
        &Arc<Vec<chrono::DateTime<chrono::Utc>>>,
    ),
    errors: ErrorSlot,
) -> Stream<'scope, u64, Vec<crate::TileBundle>> {
    let output = op.output().to_owned();
    match (op, prepared) {
        (StepSpec::Ivt { .. }, Prepared::Ivt(config)) => bundles.ivt(config.clone(), errors),
        (StepSpec::Anomaly { input, .. }, Prepared::StoredClimatology(climatology)) => bundles
            .stored_anomaly(
                input.clone(),
                output,
                climatology.clone(),
                times.clone(),
                errors,
            ),
        (_, Prepared::Nothing) => cell_step_from_spec(op, bundles, units, times, errors),
        (_, _) => {
            errors.set(EngineError::Plan(format!(
                "step {} ({}) was prepared as another kind of step",
                op.output(),
                op.op()
            )));
            bundles
        }
    }
}

/// What a step needs beyond its spec, resolved from the data before any work starts.
enum Prepared {
    /// Nothing: the spec says it all.
    Nothing,
    /// An ivt step's levels in Pa and unit scales.
    Ivt(Arc<IvtConfig>),
    /// An anomaly step's climatology, read from its store.
    StoredClimatology(Arc<StoredClimatology>),
    /// An infer step's client, connected to its workers and checked against the model.
    Infer(Arc<InferenceClient>),
}

fn prepare_step(
    i: usize,
    step: &StepSpec,
    pipeline: &ValidatedPipeline,
    stages: &[Stage],
    selected_times: &[chrono::DateTime<chrono::Utc>],
) -> Result<Prepared> {
    Ok(match step {
        StepSpec::Ivt { .. } => Prepared::Ivt(Arc::new(
            ivt_config(step, &pipeline.units, &pipeline.on_levels).map_err(|message| {
                EngineError::Spec(isotach_core::SpecError::Invalid {
                    field: format!("step[{i}]"),
                    message,
                })
            })?,
        )),
        StepSpec::Anomaly {
            input,
            by,
            climatology: Some(store),
            ..
        } => {
            let units = pipeline
                .units
                .get(input)
                .map(String::as_str)
                .unwrap_or_default();
            let stage = pipeline.stage_of.get(input).copied().unwrap_or(0);
            Prepared::StoredClimatology(Arc::new(load_climatology(
                &format!("step[{i}].climatology"),
                store,
                *by,
                (input, units),
                &stages[stage].grid,
                selected_times,
            )?))
        }
        StepSpec::Infer {
            model,
            inputs,
            workers,
            model_output,
            patch_size,
            halo,
            batch_size,
            max_batch_delay_ms,
            max_batches_in_flight,
            timeout_ms,
            ..
        } => {
            let options = InferOptions {
                model: model.clone(),
                model_output: model_output.clone(),
                channels: inputs.len(),
                patch_size: *patch_size as usize,
                halo: *halo as usize,
                batch_size: *batch_size as usize,
                max_batch_delay: std::time::Duration::from_millis(*max_batch_delay_ms),
                max_batches_in_flight: *max_batches_in_flight as usize,
                timeout: std::time::Duration::from_millis(*timeout_ms),
            };
            Prepared::Infer(Arc::new(
                InferenceClient::connect(workers, options).map_err(|message| {
                    EngineError::Inference(format!("step[{i}] (infer {model:?}): {message}"))
                })?,
            ))
        }
        _ => Prepared::Nothing,
    })
}

/// Cell steps that need nothing beyond their spec.
fn cell_step_from_spec<'scope>(
    op: &StepSpec,
    bundles: Stream<'scope, u64, Vec<crate::TileBundle>>,
    units: &BTreeMap<String, String>,
    times: &Arc<Vec<chrono::DateTime<chrono::Utc>>>,
    errors: ErrorSlot,
) -> Stream<'scope, u64, Vec<crate::TileBundle>> {
    let output = op.output().to_owned();
    match op {
        StepSpec::Magnitude { inputs, .. } => bundles.magnitude(inputs.clone(), output, errors),
        StepSpec::Expr { expr, units, .. } => match isotach_core::expr::Expr::parse(expr) {
            Ok(parsed) => bundles.expression(Arc::new(parsed), output, units.clone(), errors),
            Err(e) => {
                errors.set(EngineError::Plan(e.to_string()));
                bundles
            }
        },
        StepSpec::Units { input, to, .. } => {
            let from = units.get(input).cloned().unwrap_or_default();
            match isotach_core::units::conversion(&from, to) {
                Ok(conversion) => {
                    bundles.convert_units(input.clone(), output, to.clone(), conversion, errors)
                }
                Err(e) => {
                    errors.set(EngineError::Plan(e.to_string()));
                    bundles
                }
            }
        }
        StepSpec::Anomaly { input, by, .. } => {
            bundles
                .anomaly(input.clone(), output, *by, times.clone(), errors)
                .0
        }
        StepSpec::Normalize {
            input, mean, std, ..
        } => {
            let stats = match (mean, std) {
                (Some(mean), Some(std)) => NormalizeStats::Supplied {
                    mean: *mean,
                    std: *std,
                },
                _ => NormalizeStats::Running,
            };
            bundles.normalize(input.clone(), output, stats, errors)
        }
        StepSpec::Rolling { input, window, .. } => {
            bundles.rolling(input.clone(), output, *window as usize, errors)
        }
        StepSpec::Threshold {
            input,
            value,
            percentile,
            ..
        } => {
            let level = match (value, percentile) {
                (Some(v), _) => ThresholdLevel::Value(*v),
                (None, Some(p)) => ThresholdLevel::Percentile(*p),
                (None, None) => ThresholdLevel::Value(f32::NAN),
            };
            bundles.threshold(input.clone(), output, level, errors)
        }
        StepSpec::Coarsen { .. }
        | StepSpec::Regrid { .. }
        | StepSpec::Objects { .. }
        | StepSpec::Infer { .. }
        | StepSpec::Ivt { .. } => bundles,
    }
}

/// The operator's configuration for an ivt step: levels in Pa, inputs scaled to SI units (the
/// validator has checked that each converts).
fn ivt_config(
    op: &StepSpec,
    units: &BTreeMap<String, String>,
    on_levels: &BTreeMap<String, VerticalAxis>,
) -> std::result::Result<IvtConfig, String> {
    let StepSpec::Ivt {
        humidity,
        wind,
        output,
        components,
    } = op
    else {
        return Err(format!("{} is not an ivt step", op.op()));
    };
    let axis = on_levels
        .get(humidity)
        .ok_or_else(|| format!("ivt: {humidity:?} does not lie on levels"))?;
    let scale = |name: &str, to: &str| {
        let from = units.get(name).map(String::as_str).unwrap_or_default();
        isotach_core::units::conversion(from, to)
            .map(|c| c.scale)
            .map_err(|e| format!("ivt: {name:?}: {e}"))
    };
    Ok(IvtConfig {
        humidity: humidity.clone(),
        wind: wind.clone(),
        output: output.clone(),
        components: components.clone(),
        pressure_pa: axis.pressure_pa()?,
        humidity_scale: scale(humidity, "kg kg-1")?,
        wind_scale: scale(&wind[0], "m s-1")?,
    })
}

/// The operator's configuration for an objects step (`None` for any other step).
fn objects_config(op: &StepSpec) -> Option<ObjectsConfig> {
    let StepSpec::Objects {
        input,
        output,
        threshold,
        min_area_km2,
        min_duration_steps,
        wind,
        criterion,
    } = op
    else {
        return None;
    };
    Some(ObjectsConfig {
        input: input.clone(),
        output: output.clone(),
        threshold: *threshold,
        min_area_km2: *min_area_km2,
        min_duration_steps: *min_duration_steps,
        criterion: *criterion,
        wind: wind.clone().map(|[u, v]| (u, v)),
    })
}

/// The store layout of a Zarr sink: its variables' grid, the selected steps, units and long names.
pub fn zarr_sink_layout(
    pipeline: &ValidatedPipeline,
    dataset: &isotach_core::DatasetInfo,
    sink: &isotach_core::ZarrSink,
) -> Result<isotach_connectors::FieldStoreLayout> {
    let first = sink
        .variables
        .first()
        .ok_or_else(|| EngineError::Plan(format!("zarr sink {} names no variable", sink.path)))?;
    let describe =
        |map: &BTreeMap<String, String>, name: &String| map.get(name).cloned().unwrap_or_default();
    Ok(isotach_connectors::FieldStoreLayout {
        grid: variable_grid(pipeline, &dataset.grid, first)?,
        times: dataset.time.times[pipeline.steps.clone()].to_vec(),
        first_step: pipeline.steps.start as u64,
        variables: sink
            .variables
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    describe(&pipeline.units, name),
                    describe(&pipeline.long_names, name),
                )
            })
            .collect(),
    })
}

/// The grid `variable` lies on: the source grid, or the grid a coarsen or regrid step made.
pub fn variable_grid(
    pipeline: &ValidatedPipeline,
    source_grid: &LatLonGrid,
    variable: &str,
) -> Result<LatLonGrid> {
    let stages = plan_stages(pipeline, source_grid, Vec::new())?;
    let stage = pipeline.stage_of.get(variable).copied().unwrap_or(0);
    Ok((*stages[stage].grid).clone())
}
