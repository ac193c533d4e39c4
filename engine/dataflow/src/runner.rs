use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use differential_dataflow::AsCollection;
use isotach_connectors::{ReadOptions, Source, TileRequest};
use isotach_core::{Field, SinkSpec, StepSpec, ValidatedPipeline};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Inspect, Operator, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use crate::operators::{
    AssembleFields, FieldPlan, Magnitude, ReadTiles, StepStatistics, TilePartial,
};
use crate::{EngineError, ErrorSlot, Result, StepStats};

/// How to run a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunConfig {
    /// Timely worker threads in this process (default 2).
    pub workers: usize,
    /// Steps admitted into the dataflow before the oldest has completed (default 4): bounds
    /// memory whatever the length of the time range.
    pub max_steps_in_flight: u64,
    /// How each worker reads its tiles (concurrency and read-ahead memory).
    pub read: ReadOptions,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_steps_in_flight: 4,
            read: ReadOptions::default(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// Steps processed.
    pub steps: usize,
    /// Tiles read from the source.
    pub tiles_read: usize,
    /// Fields delivered to the consumer.
    pub fields: usize,
    /// The variable the statistics describe (the first layer of the first frames sink).
    pub stats_variable: Option<String>,
    /// Units of that variable.
    pub stats_units: String,
    /// Per-step statistics of that variable, in step order.
    pub stats: Vec<StepStats>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Runs `pipeline` over `source` with `config.workers` timely workers, sending every completed
/// field to `fields` (a bounded channel: a slow consumer slows the dataflow, nothing piles up).
pub fn run_pipeline(
    pipeline: &ValidatedPipeline,
    source: Arc<dyn Source>,
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
    let info = source.describe().clone();
    let spec = &pipeline.spec;
    let read_variables = Arc::new(spec.source.variables.clone());
    let regions = source.regions(&read_variables[0])?;
    for other in read_variables.iter().skip(1) {
        if source.regions(other)? != regions {
            return Err(EngineError::Plan(format!(
                "{other:?} is chunked differently from {:?}; tiles of one region must align",
                read_variables[0]
            )));
        }
    }

    let mut drawn: Vec<String> = Vec::new();
    for sink in &spec.sinks {
        match sink {
            SinkSpec::Frames(frames) => {
                for layer in &frames.layers {
                    if !drawn.contains(&layer.variable) {
                        drawn.push(layer.variable.clone());
                    }
                }
            }
        }
    }
    let stats_variable = drawn.first().cloned();
    let describe = |name: &String| {
        let units = pipeline.units.get(name).cloned().unwrap_or_default();
        let long_name = pipeline
            .long_names
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.clone());
        (name.clone(), units, long_name)
    };
    let grid = Arc::new(info.grid.clone());
    let plan = Arc::new(FieldPlan {
        grid: grid.clone(),
        times: Arc::new(info.time.times.clone()),
        variables: drawn.iter().map(describe).collect(),
        regions_per_step: regions.len(),
    });
    let steps = pipeline.steps.clone();
    let regions_per_step = plan.regions_per_step;
    let ops = Arc::new(spec.steps.clone());
    let regions = Arc::new(regions);
    let errors = ErrorSlot::default();
    let partials: Arc<Mutex<BTreeMap<u64, TilePartial>>> = Arc::default();
    let delivered: Arc<Mutex<usize>> = Arc::default();

    let worker_errors = errors.clone();
    let worker_partials = partials.clone();
    let worker_delivered = delivered.clone();
    let worker_stats_variable = stats_variable.clone();
    let guards = timely::execute(timely::Config::process(config.workers), move |worker| {
        let errors = worker_errors.clone();
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<TileRequest>>>::new();
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            let mut bundles = input.to_stream(scope).read_tiles(source.clone(), read_variables.clone(), config.read, errors.clone());
            for op in ops.iter() {
                bundles = match op {
                    StepSpec::Magnitude { inputs, output } => bundles.magnitude(inputs.clone(), output.clone(), errors.clone()),
                };
            }
            if let Some(variable) = worker_stats_variable.clone() {
                let grid = grid.clone();
                let partials = worker_partials.clone();
                bundles
                    .clone()
                    .flat_map(move |bundle| {
                        let partial = bundle.tile(&variable).and_then(|tile| TilePartial::of(tile, &grid));
                        partial.map(|p| ((bundle.step, p), bundle.step, 1isize))
                    })
                    .as_collection()
                    .step_statistics()
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
            let tx = fields.clone();
            let delivered = worker_delivered.clone();
            let sink_errors = errors.clone();
            bundles
                .assemble_fields(plan.clone(), errors.clone())
                .inspect(|field| tracing::debug!(step = field.step, variable = %field.variable, "field complete"))
                .probe_with(&probe)
                .sink(Pipeline, "SendFields", move |(input, _)| {
                    input.for_each(|_, data| {
                        for field in data.drain(..) {
                            let step = field.step;
                            if tx.blocking_send(field).is_err() {
                                sink_errors.set(EngineError::ConsumerGone(step));
                            } else {
                                *delivered.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                            }
                        }
                    });
                });
        });

        // Worker 0 admits the requests step by step; the exchange in ReadTiles shards them.
        if worker.index() == 0 {
            for step in steps.clone() {
                if errors.is_set() {
                    break;
                }
                input.advance_to(step as u64);
                for (region, window) in regions.iter() {
                    input.send(TileRequest { step: step as u64, region: *region, window: *window });
                }
                let oldest_allowed = (step as u64 + 1).saturating_sub(config.max_steps_in_flight);
                while probe.less_than(&oldest_allowed) && !errors.is_set() {
                    worker.step();
                }
            }
        }
        input.close();
        while worker.step() {}
    })
    .map_err(EngineError::Dataflow)?;
    for result in guards.join() {
        result.map_err(EngineError::Dataflow)?;
    }
    if let Some(error) = errors.take() {
        return Err(error);
    }

    let partials = partials.lock().unwrap_or_else(|p| p.into_inner());
    let stats = partials
        .iter()
        .map(|(step, p)| {
            StepStats::from_partial(
                *step,
                info.time
                    .times
                    .get(*step as usize)
                    .copied()
                    .unwrap_or_default(),
                p,
            )
        })
        .collect();
    let fields = *delivered.lock().unwrap_or_else(|p| p.into_inner());
    Ok(RunReport {
        steps: pipeline.steps.len(),
        tiles_read: pipeline.steps.len() * regions_per_step * spec.source.variables.len(),
        fields,
        stats_units: stats_variable
            .as_ref()
            .and_then(|v| pipeline.units.get(v).cloned())
            .unwrap_or_default(),
        stats_variable,
        stats,
        seconds: started.elapsed().as_secs_f64(),
    })
}
