//! The client side of an `infer` step: batching patches, balancing batches across workers,
//! retrying on another worker when one fails or stalls.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isotach_proto::connect::ServerAddress;
use isotach_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use isotach_proto::inference::{
    ModelInferRequest, ModelMetadataRequest, ModelMetadataResponse, ModelReadyRequest,
    ServerReadyRequest,
};
use isotach_proto::tensor::{DataType, Tensor, infer_request, response_tensors};
use tokio::sync::{Semaphore, mpsc};
use tonic::transport::Channel;

use super::PatchPlan;

/// The largest request an `infer` step sends, bytes (a batch of patches of every channel).
pub const MAX_REQUEST_BYTES: usize = 512 << 20;

/// How long a worker has to answer a health or metadata call.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often failed workers are probed to see whether they are back.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

/// How an `infer` step talks to its workers.
#[derive(Debug, Clone, PartialEq)]
pub struct InferOptions {
    /// The model's name on the workers.
    pub model: String,
    /// The model output used; `None` for the first.
    pub model_output: Option<String>,
    /// Input channels (the step's inputs).
    pub channels: usize,
    /// Patch edge, cells.
    pub patch_size: usize,
    /// Halo, cells.
    pub halo: usize,
    /// Patches per request.
    pub batch_size: usize,
    /// How long a partial batch waits for more patches.
    pub max_batch_delay: Duration,
    /// Requests outstanding at once, across workers.
    pub max_batches_in_flight: usize,
    /// A request not answered within this is retried elsewhere.
    pub timeout: Duration,
}

/// What the model looks like on the wire, read from the workers' `ModelMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSignature {
    /// The input tensor's name.
    pub input: String,
    /// The output tensor's name.
    pub output: String,
}

/// Counters of an inference client, readable while it runs.
#[derive(Debug, Default)]
pub struct InferStats {
    /// Requests that succeeded.
    pub batches: AtomicU64,
    /// Patches returned.
    pub patches: AtomicU64,
    /// Requests that failed or timed out on a worker and were sent again.
    pub retries: AtomicU64,
    /// The successful requests' round trips.
    pub round_trips: crate::Timer,
    /// Most requests outstanding at once.
    pub max_in_flight: AtomicUsize,
    in_flight: AtomicUsize,
}

impl InferStats {
    /// Mean round trip of the successful requests.
    pub fn mean_latency(&self) -> Duration {
        let count = self.round_trips.count().max(1);
        Duration::from_secs_f64(self.round_trips.seconds() / count as f64)
    }
}

struct Worker {
    url: String,
    client: GrpcInferenceServiceClient<Channel>,
    outstanding: AtomicUsize,
    healthy: AtomicBool,
}

/// The workers of one step, chosen by least outstanding requests.
struct Pool {
    workers: Vec<Worker>,
    model: String,
    timeout: Duration,
    stats: Arc<InferStats>,
}

/// Why a request cannot succeed on any worker.
#[derive(Debug, Clone)]
struct Fatal(String);

impl Pool {
    fn pick(&self, tried: &[usize]) -> Option<usize> {
        let untried = || (0..self.workers.len()).filter(|i| !tried.contains(i));
        let least = |candidates: Vec<usize>| {
            candidates
                .into_iter()
                .min_by_key(|&i| self.workers[i].outstanding.load(Ordering::Relaxed))
        };
        least(
            untried()
                .filter(|&i| self.workers[i].healthy.load(Ordering::Relaxed))
                .collect(),
        )
        .or_else(|| least(untried().collect()))
    }

    /// Sends `request` to the least busy healthy worker; on a failure or a stall, to another.
    async fn infer(&self, request: ModelInferRequest) -> Result<Vec<Tensor>, Fatal> {
        let attempts = 2 * self.workers.len() + 2;
        let mut failures: Vec<String> = Vec::new();
        let mut tried: Vec<usize> = Vec::new();
        for attempt in 0..attempts {
            let Some(i) = self.pick(&tried) else {
                // Every worker failed this request once: give the failed ones a moment to come
                // back before going round again.
                tokio::time::sleep(
                    Duration::from_millis(200 * attempt as u64).min(HEALTH_INTERVAL * 4),
                )
                .await;
                tried.clear();
                continue;
            };
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            let worker = &self.workers[i];
            worker.outstanding.fetch_add(1, Ordering::Relaxed);
            let in_flight = self.stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            self.stats
                .max_in_flight
                .fetch_max(in_flight, Ordering::Relaxed);
            let started = Instant::now();
            let reply = tokio::time::timeout(
                self.timeout,
                worker.client.clone().model_infer(request.clone()),
            )
            .await;
            self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            worker.outstanding.fetch_sub(1, Ordering::Relaxed);
            tried.push(i);
            let failure = match reply {
                Ok(Ok(response)) => {
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    self.stats.round_trips.record(started.elapsed());
                    return response_tensors(response.into_inner()).map_err(|e| {
                        Fatal(format!("worker {} sent a malformed reply: {e}", worker.url))
                    });
                }
                Ok(Err(status)) if is_request_error(status.code()) => {
                    return Err(Fatal(format!(
                        "worker {} refused the request ({:?}): {}",
                        worker.url,
                        status.code(),
                        status.message()
                    )));
                }
                Ok(Err(status)) if status.code() == tonic::Code::ResourceExhausted => {
                    // Busy, not broken: try another, and leave this one in the pool.
                    format!("{}: busy ({})", worker.url, status.message())
                }
                Ok(Err(status)) => {
                    worker.healthy.store(false, Ordering::Relaxed);
                    format!("{}: {:?}: {}", worker.url, status.code(), status.message())
                }
                Err(_) => {
                    worker.healthy.store(false, Ordering::Relaxed);
                    format!(
                        "{}: no reply within {} ms",
                        worker.url,
                        self.timeout.as_millis()
                    )
                }
            };
            tracing::warn!(model = %self.model, %failure, "inference request failed; retrying");
            failures.push(failure);
        }
        Err(Fatal(format!(
            "model {:?}: a batch failed on every worker after {attempts} attempts: {}",
            self.model,
            failures.join("; ")
        )))
    }

    /// Probes failed workers until the pool is dropped; a worker that answers ready rejoins.
    async fn watch_health(pool: std::sync::Weak<Pool>) {
        loop {
            tokio::time::sleep(HEALTH_INTERVAL).await;
            let Some(pool) = pool.upgrade() else { return };
            for worker in pool.workers.iter() {
                if worker.healthy.load(Ordering::Relaxed) {
                    continue;
                }
                let ready = tokio::time::timeout(
                    PROBE_TIMEOUT,
                    worker.client.clone().model_ready(ModelReadyRequest {
                        name: pool.model.clone(),
                        version: String::new(),
                    }),
                )
                .await;
                if matches!(ready, Ok(Ok(ref r)) if r.get_ref().ready) {
                    tracing::info!(worker = %worker.url, "inference worker is back");
                    worker.healthy.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Status codes that say the request itself is wrong: no other worker would accept it.
fn is_request_error(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::InvalidArgument
            | tonic::Code::NotFound
            | tonic::Code::FailedPrecondition
            | tonic::Code::OutOfRange
            | tonic::Code::Unimplemented
            | tonic::Code::Unauthenticated
            | tonic::Code::PermissionDenied
    )
}

/// One patch on its way to a worker, and where its answer goes.
struct PatchWork {
    values: Vec<f32>,
    index: usize,
    field: Arc<FieldJob>,
}

/// A field being inferred: its patches come back in any order and are stitched as they come.
struct FieldJob {
    plan: PatchPlan,
    state: Mutex<FieldState>,
}

type FieldDone = Box<dyn FnOnce(Result<Vec<f32>, String>) + Send>;

struct FieldState {
    values: Vec<f32>,
    /// Cells where an input is NaN: NaN in the output too.
    missing: Vec<usize>,
    remaining: usize,
    done: Option<FieldDone>,
}

impl FieldJob {
    fn finish_patch(&self, index: usize, result: Result<&[f32], &str>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(_) = state.done else {
            return; // already failed
        };
        match result {
            Ok(output) => {
                self.plan.stitch(index, output, &mut state.values);
                state.remaining -= 1;
                if state.remaining == 0 {
                    let mut values = std::mem::take(&mut state.values);
                    for &cell in &state.missing {
                        values[cell] = f32::NAN;
                    }
                    if let Some(done) = state.done.take() {
                        drop(state);
                        done(Ok(values));
                    }
                }
            }
            Err(message) => {
                if let Some(done) = state.done.take() {
                    drop(state);
                    done(Err(message.to_owned()));
                }
            }
        }
    }
}

/// Sends fields to inference workers over the Open Inference Protocol.
///
/// Fields are cut into patches ([`PatchPlan`]); patches from every field in flight are merged into
/// batches of up to `batch_size`, waiting at most `max_batch_delay` for a batch to fill; at most
/// `max_batches_in_flight` requests are outstanding (the dataflow's backpressure); each goes to the
/// healthy worker with the fewest outstanding requests. A worker that fails or does not answer
/// within `timeout` leaves the pool until it answers a health probe, and the batch goes to another
/// worker: every patch is answered exactly once, or the field fails with every worker's reason.
pub struct InferenceClient {
    runtime: Option<tokio::runtime::Runtime>,
    patches: mpsc::UnboundedSender<PatchWork>,
    options: InferOptions,
    signature: ModelSignature,
    stats: Arc<InferStats>,
}

impl std::fmt::Debug for InferenceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceClient")
            .field("options", &self.options)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

impl InferenceClient {
    /// Connects to `workers` and checks, before any work, that the model is ready on at least one
    /// and that its signature fits: one FP32 input `[N, channels, H, W]`, and the output named by
    /// `model_output` (or a first output). Workers that are down now join when they come up.
    pub fn connect(workers: &[String], options: InferOptions) -> Result<Self, String> {
        let request_bytes = options.batch_size * options.channels * options.patch_size.pow(2) * 4;
        if request_bytes > MAX_REQUEST_BYTES {
            return Err(format!(
                "a batch of {} patches of {} × {} cells × {} channels is {} MiB, over the {} MiB \
                 a request may carry; lower batch_size or patch_size",
                options.batch_size,
                options.patch_size,
                options.patch_size,
                options.channels,
                request_bytes >> 20,
                MAX_REQUEST_BYTES >> 20
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("isotach-infer")
            .enable_all()
            .build()
            .map_err(|e| format!("starting the inference runtime: {e}"))?;
        let (signature, pool) = runtime.block_on(connect_pool(workers, &options))?;
        let stats = pool.stats.clone();
        let pool = Arc::new(pool);
        runtime.spawn(Pool::watch_health(Arc::downgrade(&pool)));
        let (patches, queue) = mpsc::unbounded_channel();
        runtime.spawn(batch_patches(
            queue,
            pool,
            options.clone(),
            signature.input.clone(),
            signature.output.clone(),
        ));
        Ok(Self {
            runtime: Some(runtime),
            patches,
            options,
            signature,
            stats,
        })
    }

    /// The model's input and output names.
    pub fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    /// Counters of the requests sent so far.
    pub fn stats(&self) -> &InferStats {
        &self.stats
    }

    /// Infers one field from its input channels (each `shape.0 × shape.1` values, row-major);
    /// `done` receives the stitched output, NaN where any input is NaN, or why it failed. Returns
    /// at once; `done` runs on the client's threads.
    pub fn infer_field(
        &self,
        channels: &[&[f32]],
        shape: (usize, usize),
        wrap_lon: bool,
        done: impl FnOnce(Result<Vec<f32>, String>) + Send + 'static,
    ) {
        let cells = shape.0 * shape.1;
        if channels.len() != self.options.channels || channels.iter().any(|c| c.len() != cells) {
            done(Err(format!(
                "expected {} channels of {} × {} values, got {:?} values",
                self.options.channels,
                shape.0,
                shape.1,
                channels.iter().map(|c| c.len()).collect::<Vec<_>>()
            )));
            return;
        }
        let Some(plan) =
            PatchPlan::new(shape, self.options.patch_size, self.options.halo, wrap_lon)
        else {
            done(Err(format!(
                "a {} × {} field cannot be cut into {}-cell patches with a {}-cell halo",
                shape.0, shape.1, self.options.patch_size, self.options.halo
            )));
            return;
        };
        let missing = (0..cells)
            .filter(|&cell| channels.iter().any(|c| c[cell].is_nan()))
            .collect();
        let field = Arc::new(FieldJob {
            plan,
            state: Mutex::new(FieldState {
                values: vec![f32::NAN; cells],
                missing,
                remaining: plan.count(),
                done: Some(Box::new(done)),
            }),
        });
        for index in 0..plan.count() {
            let mut values = Vec::new();
            plan.cut(channels, index, &mut values);
            let work = PatchWork {
                values,
                index,
                field: field.clone(),
            };
            if let Err(lost) = self.patches.send(work) {
                lost.0
                    .field
                    .finish_patch(index, Err("the inference client has stopped"));
                return;
            }
        }
    }
}

impl Drop for InferenceClient {
    fn drop(&mut self) {
        // Dropping a runtime blocks on its tasks, which panics inside another runtime: let the
        // tasks go without waiting.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn connect_pool(
    urls: &[String],
    options: &InferOptions,
) -> Result<(ModelSignature, Pool), String> {
    let mut workers = Vec::new();
    let mut signature: Option<(ModelSignature, String)> = None;
    let mut failures = Vec::new();
    for url in urls {
        let endpoint = ServerAddress::new(url.clone())
            .endpoint()
            .map_err(|e| format!("inference worker: {e}"))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true);
        let client = GrpcInferenceServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_REQUEST_BYTES);
        let checked = check_model(client.clone(), options).await;
        let healthy = match checked {
            Ok(found) => {
                match &signature {
                    Some((first, from)) if *first != found => {
                        return Err(format!(
                            "workers disagree on model {:?}: {from} has {first:?}, {url} has \
                             {found:?}",
                            options.model
                        ));
                    }
                    Some(_) => {}
                    None => signature = Some((found, url.clone())),
                }
                true
            }
            Err(CheckError::Model(message)) => return Err(format!("worker {url}: {message}")),
            Err(CheckError::Unreachable(message)) => {
                failures.push(format!("{url}: {message}"));
                false
            }
        };
        workers.push(Worker {
            url: url.clone(),
            client,
            outstanding: AtomicUsize::new(0),
            healthy: AtomicBool::new(healthy),
        });
    }
    let Some((signature, _)) = signature else {
        return Err(format!(
            "model {:?} is not ready on any worker: {}",
            options.model,
            failures.join("; ")
        ));
    };
    for failure in &failures {
        tracing::warn!(%failure, "inference worker not ready; it joins when it answers");
    }
    Ok((
        signature,
        Pool {
            workers,
            model: options.model.clone(),
            timeout: options.timeout,
            stats: Arc::default(),
        },
    ))
}

/// A worker that answers "no such model" or "bad request" is wrong for this step; any other
/// failure may pass.
fn classify(what: &str, status: tonic::Status) -> CheckError {
    let message = format!("{what}: {:?}: {}", status.code(), status.message());
    match status.code() {
        tonic::Code::NotFound | tonic::Code::InvalidArgument => CheckError::Model(message),
        _ => CheckError::Unreachable(message),
    }
}

enum CheckError {
    /// The worker did not answer: it may come up later.
    Unreachable(String),
    /// The worker answered, and the model does not fit the step.
    Model(String),
}

async fn check_model(
    mut client: GrpcInferenceServiceClient<Channel>,
    options: &InferOptions,
) -> Result<ModelSignature, CheckError> {
    let timed = |what: &'static str| {
        move |_| CheckError::Unreachable(format!("{what}: no answer within {PROBE_TIMEOUT:?}"))
    };
    tokio::time::timeout(PROBE_TIMEOUT, client.server_ready(ServerReadyRequest {}))
        .await
        .map_err(timed("ServerReady"))?
        .map_err(|s| classify("ServerReady", s))?;
    // Metadata first: a worker without the model says NOT_FOUND there, naming what it has.
    let metadata = tokio::time::timeout(
        PROBE_TIMEOUT,
        client.model_metadata(ModelMetadataRequest {
            name: options.model.clone(),
            version: String::new(),
        }),
    )
    .await
    .map_err(timed("ModelMetadata"))?
    .map_err(|s| classify("ModelMetadata", s))?
    .into_inner();
    let ready = tokio::time::timeout(
        PROBE_TIMEOUT,
        client.model_ready(ModelReadyRequest {
            name: options.model.clone(),
            version: String::new(),
        }),
    )
    .await
    .map_err(timed("ModelReady"))?
    .map_err(|s| classify("ModelReady", s))?;
    if !ready.into_inner().ready {
        return Err(CheckError::Unreachable(format!(
            "model {:?} is not ready",
            options.model
        )));
    }
    signature_of(&metadata, options).map_err(CheckError::Model)
}

/// The input and output to use, checked against what the step sends and expects.
fn signature_of(
    metadata: &ModelMetadataResponse,
    options: &InferOptions,
) -> Result<ModelSignature, String> {
    let model = &options.model;
    let [input] = metadata.inputs.as_slice() else {
        return Err(format!(
            "model {model:?} takes {} inputs ({}); an infer step sends one [N, C, H, W] tensor",
            metadata.inputs.len(),
            metadata
                .inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    if input.datatype != DataType::Fp32.name() {
        return Err(format!(
            "model {model:?} input {:?} is {}; an infer step sends FP32",
            input.name, input.datatype
        ));
    }
    let fits = |dim: i64, want: usize| dim == -1 || dim == want as i64;
    let p = options.patch_size;
    if input.shape.len() != 4
        || !fits(input.shape[1], options.channels)
        || !fits(input.shape[2], p)
        || !fits(input.shape[3], p)
    {
        return Err(format!(
            "model {model:?} input {:?} has shape {:?}; the step sends [N, {}, {p}, {p}] \
             ({} input variables, patch_size {p})",
            input.name, input.shape, options.channels, options.channels
        ));
    }
    let output = match &options.model_output {
        None => metadata.outputs.first(),
        Some(name) => metadata.outputs.iter().find(|o| &o.name == name),
    };
    let Some(output) = output else {
        return Err(format!(
            "model {model:?} has no output {:?} (has: {})",
            options.model_output.as_deref().unwrap_or("at all"),
            metadata
                .outputs
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let elements: i64 = output.shape.iter().skip(1).product();
    if !(output.shape.iter().skip(1).any(|&d| d == -1) || elements == (p * p) as i64) {
        return Err(format!(
            "model {model:?} output {:?} has shape {:?}; the step needs one value per input cell \
             ([N, 1, {p}, {p}])",
            output.name, output.shape
        ));
    }
    Ok(ModelSignature {
        input: input.name.clone(),
        output: output.name.clone(),
    })
}

/// Merges patches into batches and sends them, at most `max_batches_in_flight` at once.
async fn batch_patches(
    mut queue: mpsc::UnboundedReceiver<PatchWork>,
    pool: Arc<Pool>,
    options: InferOptions,
    input: String,
    output: String,
) {
    let in_flight = Arc::new(Semaphore::new(options.max_batches_in_flight));
    let names = Arc::new((input, output));
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + options.max_batch_delay;
        while batch.len() < options.batch_size {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(work)) => batch.push(work),
                Ok(None) | Err(_) => break,
            }
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let (pool, names, options) = (pool.clone(), names.clone(), options.clone());
        tokio::spawn(async move {
            send_batch(batch, &pool, &names, &options).await;
            drop(permit);
        });
    }
}

async fn send_batch(
    batch: Vec<PatchWork>,
    pool: &Pool,
    (input, output): &(String, String),
    options: &InferOptions,
) {
    let p = options.patch_size;
    let n = batch.len();
    let mut values = Vec::with_capacity(n * options.channels * p * p);
    for work in &batch {
        values.extend_from_slice(&work.values);
    }
    let shape = [n as i64, options.channels as i64, p as i64, p as i64];
    let result = Tensor::from_f32(input.clone(), shape, &values)
        .and_then(|tensor| infer_request(options.model.clone(), vec![tensor]))
        .map_err(|e| Fatal(format!("building the request: {e}")));
    let outputs = match result {
        Ok(request) => pool.infer(request).await,
        Err(e) => Err(e),
    };
    let values = outputs.and_then(|tensors| {
        let tensor = tensors
            .iter()
            .find(|t| &t.name == output)
            .ok_or_else(|| Fatal(format!("the reply has no output {output:?}")))?;
        let values = tensor
            .to_f32()
            .map_err(|e| Fatal(format!("output {output:?}: {e}")))?;
        if values.len() != n * p * p {
            return Err(Fatal(format!(
                "output {output:?} has shape {:?} for {n} patches of {p} × {p}; expected {n} × \
                 {p} × {p} values",
                tensor.shape
            )));
        }
        Ok(values)
    });
    match values {
        Ok(values) => {
            pool.stats.patches.fetch_add(n as u64, Ordering::Relaxed);
            for (work, out) in batch.into_iter().zip(values.chunks_exact(p * p)) {
                work.field.finish_patch(work.index, Ok(out));
            }
        }
        Err(Fatal(message)) => {
            for work in batch {
                work.field.finish_patch(work.index, Err(&message));
            }
        }
    }
}
