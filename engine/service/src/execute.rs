//! Running one validated spec with its sinks: the code behind both `isotach run` and a job of the
//! job service.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use isotach_connectors::{
    ConnectorError, FieldStoreLayout, Source, StoreOptions, ZarrFieldSink, open_source, write_table,
};
use isotach_core::{
    Field, Frame, FramesSink, PipelineSpec, SinkSpec, SpecError, ValidatedPipeline, ZarrSink,
};
use isotach_engine::operators::catalog_table;
use isotach_engine::{
    EngineError, RunConfig, RunReport, Timer, prepare_pipeline, run_prepared, stats_table,
};
use isotach_viz::{Canvas, Renderer, VizError, frame_scene, resolve_ranges};
use serde_json::{Map, json};

/// Fields waiting between the dataflow and the sinks: a slow renderer slows the dataflow instead
/// of piling fields up.
const FIELD_QUEUE: usize = 4;

/// Why an execution stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// The spec does not fit its data.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The source could not be opened or read.
    #[error(transparent)]
    Source(#[from] ConnectorError),
    /// The dataflow failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Rendering a frame failed (or no graphics adapter exists).
    #[error(transparent)]
    Render(#[from] VizError),
    /// A file or folder could not be made.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A Zarr sink could not be created or written.
    #[error("zarr sink {path}: {source}")]
    ZarrSink {
        /// The sink's store.
        path: String,
        /// Why it failed.
        source: ConnectorError,
    },
    /// A statistics or catalog table could not be built or written.
    #[error("table {path}: {message}")]
    Table {
        /// The table's file.
        path: String,
        /// Why it failed.
        message: String,
    },
    /// A task of the execution died (a panic in the engine or a sink).
    #[error("{task} task: {message}")]
    Task {
        /// Which task.
        task: &'static str,
        /// What happened.
        message: String,
    },
    /// Cancelled through its [`CancelToken`].
    #[error("cancelled")]
    Cancelled,
    /// A frames sink names a display channel where none exist.
    #[error(
        "frames sink channel {channel:?}: display channels exist only in `isotach serve`; submit \
         the spec there, or give the sink a path and no channel to write PNGs"
    )]
    NoChannels {
        /// The channel named.
        channel: String,
    },
}

impl ExecuteError {
    /// True when running the same spec again may succeed (a store or a file system was
    /// unavailable), false when the spec or the code must change first.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::Source(_) | Self::Io { .. } | Self::ZarrSink { .. } | Self::Table { .. }
        )
    }
}

/// Asks a running execution to stop. Cloning shares the request.
#[derive(Debug, Clone)]
pub struct CancelToken(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for CancelToken {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl CancelToken {
    /// Asks every holder to stop.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// True once [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once [`CancelToken::cancel`] was called.
    pub async fn cancelled(&self) {
        let mut receiver = self.0.subscribe();
        // Cannot fail: `self` holds the sender.
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
    }
}

/// Something an execution did that a watcher may want to know.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionEvent {
    /// Every field of a time step arrived and was written to the sinks.
    StepCompleted {
        /// The step's index in the store.
        step: u64,
        /// The step's instant.
        time: DateTime<Utc>,
    },
    /// A frame was written or published.
    FramePublished {
        /// The display channel it went out on, or the PNG folder of a sink without one.
        channel: String,
        /// The step's index in the store.
        step: u64,
        /// The variable drawn.
        variable: String,
        /// The PNG file, when the sink writes them.
        path: Option<PathBuf>,
    },
}

/// Takes each completed frame of an execution's frames sinks (a server's display channels):
/// called on the sink thread, in step order per sink; keep it quick.
pub type FrameOutlet = Arc<dyn Fn(Frame) + Send + Sync>;

/// How an execution reports what it does and learns that it should stop.
#[derive(Clone, Default)]
pub struct ExecutionControl {
    /// Called on the sink thread for every event, in order; keep it quick.
    pub on_event: Option<Arc<dyn Fn(ExecutionEvent) + Send + Sync>>,
    /// Where frames go besides PNG folders; `None` (as in `isotach run`): frames sinks that
    /// name a channel are refused before any work starts.
    pub frames: Option<FrameOutlet>,
    /// Stops the execution: the sinks stop taking fields, the dataflow stops at its next delivery,
    /// and [`execute`] returns [`ExecuteError::Cancelled`].
    pub cancel: CancelToken,
}

impl ExecutionControl {
    fn emit(&self, event: ExecutionEvent) {
        if let Some(on_event) = &self.on_event {
            on_event(event);
        }
    }
}

/// What an execution wrote.
#[derive(Debug)]
pub struct Outcome {
    /// The engine's report.
    pub report: RunReport,
    /// Every frame written, in order.
    pub frames: Vec<PathBuf>,
    /// The graphics adapter that drew them (or "no frames sink").
    pub adapter: String,
    /// True in the process that wrote the tables (the only one, or process 0 of a cluster).
    pub lead: bool,
}

/// Opens `spec`'s source and checks the spec against it, before any work starts.
pub fn validate_spec(
    spec: &PipelineSpec,
) -> Result<(Arc<dyn Source>, ValidatedPipeline), ExecuteError> {
    let source = open_source(
        &spec.source.uri,
        &StoreOptions::default(),
        spec.source.region,
    )?;
    let pipeline = spec.validate(source.describe())?;
    Ok((source, pipeline))
}

/// Validates `spec` against its store, runs it, renders and stores every completed field, and (in
/// the lead process) writes the statistics and catalog tables.
///
/// Blocking: call it from a thread of its own, not from async code (it runs a small runtime of
/// its own for the dataflow and the sinks).
pub fn execute(
    spec: &PipelineSpec,
    config: RunConfig,
    control: &ExecutionControl,
) -> Result<Outcome, ExecuteError> {
    let (source, pipeline) = validate_spec(spec)?;
    // Steps that need something from outside (stored climatologies, inference workers) check it
    // here, before any output exists.
    let prepared = prepare_pipeline(&pipeline, source.clone())?;
    let lead = config.is_lead();
    let frames_sinks: Vec<FramesSink> = spec
        .sinks
        .iter()
        .filter_map(|sink| match sink {
            SinkSpec::Frames(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    for sink in &frames_sinks {
        if let (Some(channel), None) = (&sink.channel, &control.frames) {
            return Err(ExecuteError::NoChannels {
                channel: channel.clone(),
            });
        }
        if let Some(path) = &sink.path {
            std::fs::create_dir_all(path).map_err(|source| ExecuteError::Io {
                what: "creating frames folder",
                path: path.clone(),
                source,
            })?;
        }
    }
    let zarr_sinks = open_zarr_sinks(spec, &pipeline, source.describe(), lead)?;
    // The renderer is created before any data is read, so a machine without an adapter fails fast.
    let renderer = if frames_sinks.iter().any(|sink| sink.path.is_some()) {
        Some(Renderer::new_headless()?)
    } else {
        None
    };
    let adapter = renderer
        .as_ref()
        .map_or_else(|| "no frames sink".to_owned(), |r| r.adapter_summary());
    if control.cancel.is_cancelled() {
        return Err(ExecuteError::Cancelled);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .map_err(|e| ExecuteError::Task {
            task: "runtime",
            message: e.to_string(),
        })?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Field>(FIELD_QUEUE);
    let sinks = Sinks {
        frame_timer: config.progress.timer("frame", Timer::default()),
        zarr: zarr_sinks,
        frames: frames_sinks.into_iter().map(FrameComposer::new).collect(),
        renderer,
        fields_per_step: delivered_variables(spec).len(),
        control: control.clone(),
    };
    let handle = runtime.handle().clone();
    let (report, frames) = runtime.block_on(async move {
        let consume = tokio::task::spawn_blocking(move || sinks.consume(&handle, rx));
        let engine = tokio::task::spawn_blocking(move || run_prepared(prepared, config, tx));
        // Join both before judging either: when a sink fails (or is cancelled) the engine stops
        // with ConsumerGone, and the sink's error is the one worth reporting.
        let (engine, consume) = tokio::join!(engine, consume);
        let task_error = |task: &'static str| {
            move |e: tokio::task::JoinError| ExecuteError::Task {
                task,
                message: e.to_string(),
            }
        };
        let frames = consume.map_err(task_error("sink"))??;
        let report = engine.map_err(task_error("engine"))??;
        Ok::<_, ExecuteError>((report, frames))
    })?;

    if lead {
        write_tables(spec, &report)?;
    }
    Ok(Outcome {
        report,
        frames,
        adapter,
        lead,
    })
}

/// The variables the dataflow delivers as fields, one field each per step.
fn delivered_variables(spec: &PipelineSpec) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for sink in &spec.sinks {
        let sink_names: Vec<&String> = match sink {
            SinkSpec::Frames(frames) => frames.layers.iter().map(|l| &l.variable).collect(),
            SinkSpec::Zarr(zarr) => zarr.variables.iter().collect(),
            SinkSpec::Catalog(_) => Vec::new(),
        };
        for name in sink_names {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// Where fields go: Zarr stores and rendered frames.
struct Sinks {
    zarr: Vec<LazyZarrSink>,
    frames: Vec<FrameComposer>,
    /// How long each frame takes from its last layer's arrival to its PNG on disk.
    frame_timer: Timer,
    renderer: Option<Renderer>,
    fields_per_step: usize,
    control: ExecutionControl,
}

impl Sinks {
    /// Writes every field that arrives until the dataflow ends or the execution is cancelled;
    /// returns the frames written.
    fn consume(
        mut self,
        runtime: &tokio::runtime::Handle,
        mut fields: tokio::sync::mpsc::Receiver<Field>,
    ) -> Result<Vec<PathBuf>, ExecuteError> {
        let mut written = Vec::new();
        let mut arrived_per_step: HashMap<u64, usize> = HashMap::new();
        let cancel = self.control.cancel.clone();
        loop {
            let next = runtime.block_on(async {
                tokio::select! {
                    field = fields.recv() => field,
                    () = cancel.cancelled() => None,
                }
            });
            let Some(field) = next else { break };
            self.write(&field, &mut written)?;
            let arrived = arrived_per_step.entry(field.step).or_default();
            *arrived += 1;
            if *arrived == self.fields_per_step {
                arrived_per_step.remove(&field.step);
                self.control.emit(ExecutionEvent::StepCompleted {
                    step: field.step,
                    time: field.time,
                });
            }
        }
        if cancel.is_cancelled() {
            // Dropping `fields` here stops the dataflow at its next delivery.
            return Err(ExecuteError::Cancelled);
        }
        Ok(written)
    }

    fn write(&mut self, field: &Field, written: &mut Vec<PathBuf>) -> Result<(), ExecuteError> {
        for sink in self.zarr.iter_mut() {
            sink.write(field)?;
        }
        for composer in self.frames.iter_mut() {
            let Some(fields) = composer.add(field) else {
                continue;
            };
            let started = std::time::Instant::now();
            let sink = &composer.sink;
            let mut layers = sink.layers.clone();
            resolve_ranges(&mut layers, &fields)?;
            let frame = Frame {
                job_id: String::new(),
                channel: sink.channel.clone().unwrap_or_default(),
                number: 0,
                width_px: sink.width_px,
                height_px: sink.height_px,
                layers,
                fields,
                completed_at: Utc::now(),
            };
            let (step, variable) = (frame.step(), frame.fields[0].variable.clone());
            let mut path = None;
            if let (Some(folder), Some(renderer)) = (&sink.path, self.renderer.as_mut()) {
                let canvas = Canvas::new(sink.width_px, sink.height_px);
                let image = renderer.render_scene(&frame_scene(&frame)?, canvas)?;
                let file = Path::new(folder).join(format!("{variable}_{step:05}.png"));
                image.write_png(&file)?;
                written.push(file.clone());
                path = Some(file);
            }
            let channel = sink
                .channel
                .clone()
                .or_else(|| sink.path.clone())
                .unwrap_or_default();
            if let Some(outlet) = &self.control.frames {
                outlet(frame);
            }
            self.frame_timer.record(started.elapsed());
            self.control.emit(ExecutionEvent::FramePublished {
                channel,
                step,
                variable,
                path,
            });
        }
        Ok(())
    }
}

/// Gathers the layers of one frames sink step by step: a frame is drawn once every layer's field
/// of its step has arrived.
struct FrameComposer {
    sink: FramesSink,
    waiting: HashMap<u64, Vec<Option<Field>>>,
}

impl FrameComposer {
    fn new(sink: FramesSink) -> Self {
        Self {
            sink,
            waiting: HashMap::new(),
        }
    }

    /// Takes `field` if a layer draws it; returns the step's layers, in order, once all are here.
    fn add(&mut self, field: &Field) -> Option<Vec<Field>> {
        let slots: Vec<usize> = (0..self.sink.layers.len())
            .filter(|&j| self.sink.layers[j].variable == field.variable)
            .collect();
        if slots.is_empty() {
            return None;
        }
        let layers = self.sink.layers.len();
        let entry = self
            .waiting
            .entry(field.step)
            .or_insert_with(|| vec![None; layers]);
        for j in slots {
            entry[j] = Some(field.clone());
        }
        if entry.iter().any(Option::is_none) {
            return None;
        }
        self.waiting
            .remove(&field.step)
            .map(|layers| layers.into_iter().flatten().collect())
    }
}

/// A Zarr sink that opens its store lazily: the lead process creates the store before the
/// dataflow starts; the others open it on their first field, by which time the cluster has
/// connected and the store exists.
struct LazyZarrSink {
    path: PathBuf,
    layout: FieldStoreLayout,
    sink: Option<ZarrFieldSink>,
}

impl LazyZarrSink {
    fn write(&mut self, field: &Field) -> Result<(), ExecuteError> {
        if !self
            .layout
            .variables
            .iter()
            .any(|(name, _, _)| *name == field.variable)
        {
            return Ok(());
        }
        let failed = |source| ExecuteError::ZarrSink {
            path: self.path.display().to_string(),
            source,
        };
        if self.sink.is_none() {
            self.sink = Some(ZarrFieldSink::open(&self.path, &self.layout).map_err(failed)?);
        }
        if let Some(sink) = &self.sink {
            sink.write(field).map_err(|source| ExecuteError::ZarrSink {
                path: self.path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

fn open_zarr_sinks(
    spec: &PipelineSpec,
    pipeline: &ValidatedPipeline,
    dataset: &isotach_core::DatasetInfo,
    lead: bool,
) -> Result<Vec<LazyZarrSink>, ExecuteError> {
    let zarr: Vec<&ZarrSink> = spec
        .sinks
        .iter()
        .filter_map(|sink| match sink {
            SinkSpec::Zarr(z) => Some(z),
            _ => None,
        })
        .collect();
    let mut sinks = Vec::new();
    for sink in zarr {
        let layout = isotach_engine::zarr_sink_layout(pipeline, dataset, sink)?;
        let path = PathBuf::from(&sink.path);
        let created = if lead {
            let mut attributes = Map::new();
            attributes.insert("Conventions".into(), json!("CF-1.8"));
            attributes.insert(
                "title".into(),
                json!(format!("Isotach pipeline {}", spec.name)),
            );
            attributes.insert("source".into(), json!(spec.source.uri));
            attributes.insert(
                "isotach_spec".into(),
                json!(spec.to_toml_string().unwrap_or_default()),
            );
            Some(
                ZarrFieldSink::create(&path, &layout, attributes).map_err(|source| {
                    ExecuteError::ZarrSink {
                        path: sink.path.clone(),
                        source,
                    }
                })?,
            )
        } else {
            None
        };
        sinks.push(LazyZarrSink {
            path,
            layout,
            sink: created,
        });
    }
    Ok(sinks)
}

fn write_tables(spec: &PipelineSpec, report: &RunReport) -> Result<(), ExecuteError> {
    let table_error = |path: &Path, message: String| ExecuteError::Table {
        path: path.display().to_string(),
        message,
    };
    if let Some(variable) = &report.stats_variable {
        let table = stats_table(variable, &report.stats_units, &report.stats)
            .map_err(|e| table_error(Path::new(&format!("{variable}_stats")), e.to_string()))?;
        for sink in &spec.sinks {
            if let SinkSpec::Frames(FramesSink {
                path: Some(folder), ..
            }) = sink
            {
                let folder = Path::new(folder);
                let tables = std::slice::from_ref(&table);
                for extension in ["arrow", "parquet"] {
                    let path = folder.join(format!("{variable}_stats.{extension}"));
                    write_table(&path, tables).map_err(|e| table_error(&path, e.to_string()))?;
                }
            }
        }
    }
    for sink in &spec.sinks {
        if let SinkSpec::Catalog(catalog) = sink {
            let path = Path::new(&catalog.path);
            let records = report
                .catalogs
                .get(&catalog.objects)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let table = catalog_table(records).map_err(|e| table_error(path, e.to_string()))?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| ExecuteError::Io {
                    what: "creating",
                    path: parent.display().to_string(),
                    source,
                })?;
            }
            write_table(path, std::slice::from_ref(&table))
                .map_err(|e| table_error(path, e.to_string()))?;
        }
    }
    Ok(())
}
