//! The worker: loaded models, their batching queues, and the `GRPCInferenceService` over them.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use isotach_proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use isotach_proto::inference::model_metadata_response::TensorMetadata;
use isotach_proto::inference::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    ModelReadyRequest, ModelReadyResponse, ServerLiveRequest, ServerLiveResponse,
    ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};
use isotach_proto::tensor::{infer_response, request_tensors};
use isotach_proto::{DataType, Tensor};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::backend::{Backend, Model, ModelSignature, TensorSpec, open_backend};
use crate::batcher::{BatchSettings, Job, ModelStats, Queue, SubmitError};
use crate::config::{BackendKind, Device, WorkerConfig};
use crate::convert::{self, ConvertError};
use crate::error::{Result, WorkerError};

/// The server name in `ServerMetadata`.
pub const SERVER_NAME: &str = "isotach-worker";
/// The one version every model is served under.
pub const MODEL_VERSION: &str = "1";

struct Served {
    model: Arc<dyn Model>,
    queue: Queue,
    settings: BatchSettings,
}

struct Inner {
    backend: Arc<dyn Backend>,
    models: BTreeMap<String, Served>,
    max_message_bytes: usize,
}

/// A worker with its models loaded, ready to serve. Cheap to clone (shared state), so a caller
/// can keep a handle for [`Worker::stats`] while [`Worker::serve`] runs.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("backend", &self.backend())
            .field("device", &self.device())
            .field("models", &self.models())
            .finish()
    }
}

impl Worker {
    /// Validates `config`, opens the backend and loads every model. Blocking (model preparation
    /// can take seconds): in async code, call it in `spawn_blocking`.
    pub fn load(config: &WorkerConfig) -> Result<Self> {
        config.validate()?;
        let backend = open_backend(config)?;
        let mut models = BTreeMap::new();
        for entry in &config.models {
            let model: Arc<dyn Model> = Arc::from(backend.load(&entry.name, &entry.path)?);
            let signature = model.signature();
            let batchable = signature.batchable() && config.max_batch_size > 1;
            tracing::info!(
                model = %entry.name,
                path = %entry.path.display(),
                inputs = %describe(&signature.inputs),
                outputs = %describe(&signature.outputs),
                batchable,
                "loaded model"
            );
            models.insert(
                entry.name.clone(),
                Served {
                    model,
                    queue: Queue::new(config.max_queued_requests),
                    settings: BatchSettings {
                        batchable,
                        max_rows: i64::try_from(config.max_batch_size).unwrap_or(i64::MAX),
                        max_delay: Duration::from_millis(config.max_queue_delay_ms),
                    },
                },
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                models,
                max_message_bytes: config.max_message_bytes,
            }),
        })
    }

    /// The backend running the models.
    pub fn backend(&self) -> BackendKind {
        self.inner.backend.kind()
    }

    /// The device the backend runs on.
    pub fn device(&self) -> Device {
        self.inner.backend.device()
    }

    /// The served model names, sorted.
    pub fn models(&self) -> Vec<String> {
        self.inner.models.keys().cloned().collect()
    }

    /// A model's signature, as `ModelMetadata` reports it.
    pub fn signature(&self, model: &str) -> Option<ModelSignature> {
        self.inner
            .models
            .get(model)
            .map(|s| s.model.signature().clone())
    }

    /// A model's counters: requests, backend runs (batches), rows, the queue's length.
    pub fn stats(&self, model: &str) -> Option<ModelStats> {
        self.inner.models.get(model).map(|s| s.queue.stats())
    }

    /// Runs `inputs` (model order, the model's datatypes) on `model` directly, bypassing the
    /// queue and gRPC: what benchmarks compare the served path with.
    pub fn run_direct(&self, model: &str, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let served = self
            .inner
            .models
            .get(model)
            .ok_or_else(|| WorkerError::Config {
                message: format!(
                    "model {model:?} is not loaded (loaded: {})",
                    self.models().join(", ")
                ),
            })?;
        served.model.run(inputs)
    }

    /// Serves `GRPCInferenceService` on `listener` until `shutdown` resolves, then finishes the
    /// calls in flight and returns. Starts the batching tasks; serve a worker once.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let address = listener
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let mut tasks = Vec::new();
        for (name, served) in &self.inner.models {
            match served.queue.start(served.model.clone(), served.settings) {
                Some(task) => tasks.push(task),
                None => {
                    return Err(WorkerError::Serve {
                        address,
                        message: format!(
                            "model {name:?} is already being served; serve a worker once"
                        ),
                    });
                }
            }
        }
        let limit = self.inner.max_message_bytes;
        let service = GrpcInferenceServiceServer::new(Grpc {
            inner: self.inner.clone(),
        })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
        let result = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                // No Nagle delay: small responses would otherwise wait for the peer's ACK.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                shutdown,
            )
            .await
            .map_err(|e| WorkerError::Serve {
                address,
                message: e.to_string(),
            });
        for task in tasks {
            task.abort();
        }
        result
    }
}

/// Loads the models of `config` and serves them on `listener` until `shutdown` resolves.
pub async fn serve(
    config: WorkerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let worker = tokio::task::spawn_blocking(move || Worker::load(&config))
        .await
        .map_err(|e| WorkerError::Config {
            message: format!("loading the models panicked: {e}"),
        })??;
    worker.serve(listener, shutdown).await
}

fn describe(specs: &[TensorSpec]) -> String {
    specs
        .iter()
        .map(|t| format!("{} {} {:?}", t.name, t.datatype, t.shape))
        .collect::<Vec<_>>()
        .join(", ")
}

struct Grpc {
    inner: Arc<Inner>,
}

impl Grpc {
    fn served(&self, name: &str, version: &str) -> Result<&Served, Status> {
        let served = self.inner.models.get(name).ok_or_else(|| {
            let loaded = self
                .inner
                .models
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            Status::not_found(format!(
                "model {name:?} is not loaded on this worker (loaded: {loaded})"
            ))
        })?;
        if !version.is_empty() && version != MODEL_VERSION {
            return Err(Status::not_found(format!(
                "model {name:?} has no version {version:?} (versions: {MODEL_VERSION})"
            )));
        }
        Ok(served)
    }
}

fn metadata(specs: &[TensorSpec]) -> Vec<TensorMetadata> {
    specs
        .iter()
        .map(|t| TensorMetadata {
            name: t.name.clone(),
            datatype: t.datatype.name().to_owned(),
            shape: t.shape.clone(),
        })
        .collect()
}

/// Checks `tensors` against the model's inputs and converts them to its datatypes, in its order.
fn prepare_inputs(
    model_name: &str,
    signature: &ModelSignature,
    tensors: Vec<Tensor>,
) -> Result<Vec<Tensor>, Status> {
    let expected = describe(&signature.inputs);
    if tensors.len() != signature.inputs.len() {
        let got = tensors
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Status::invalid_argument(format!(
            "model {model_name:?} takes {} input(s) ({expected}); got {} ({got})",
            signature.inputs.len(),
            tensors.len()
        )));
    }
    let mut by_name: HashMap<String, Tensor> = HashMap::new();
    for tensor in tensors {
        if !signature.inputs.iter().any(|s| s.name == tensor.name) {
            return Err(Status::invalid_argument(format!(
                "model {model_name:?} has no input {:?} (inputs: {expected})",
                tensor.name
            )));
        }
        if by_name.contains_key(&tensor.name) {
            return Err(Status::invalid_argument(format!(
                "input {:?} is given more than once",
                tensor.name
            )));
        }
        by_name.insert(tensor.name.clone(), tensor);
    }
    signature
        .inputs
        .iter()
        .map(|spec| {
            let tensor = by_name.remove(&spec.name).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "input {:?} of model {model_name:?} is missing (inputs: {expected})",
                    spec.name
                ))
            })?;
            check_shape(model_name, spec, &tensor.shape)?;
            let from = tensor.datatype;
            convert::convert(tensor, spec.datatype).map_err(|e| match e {
                ConvertError::Unsupported => Status::invalid_argument(format!(
                    "input {:?} of model {model_name:?} is {}; got {from} (accepted: {})",
                    spec.name,
                    spec.datatype,
                    convert::accepted(spec.datatype)
                )),
                ConvertError::OutOfRange { index, value } => Status::invalid_argument(format!(
                    "input {:?} of model {model_name:?} is {}; value {value} at index {index} of the {from} tensor does not fit",
                    spec.name, spec.datatype
                )),
            })
        })
        .collect()
}

fn check_shape(model_name: &str, spec: &TensorSpec, shape: &[i64]) -> Result<(), Status> {
    let mismatch = |detail: String| {
        Status::invalid_argument(format!(
            "input {:?} of model {model_name:?} has shape {:?} (-1: any size); got {shape:?}: {detail}",
            spec.name, spec.shape
        ))
    };
    if shape.len() != spec.shape.len() {
        return Err(mismatch(format!(
            "{} dimensions, expected {}",
            shape.len(),
            spec.shape.len()
        )));
    }
    for (i, (&want, &got)) in spec.shape.iter().zip(shape).enumerate() {
        if want >= 0 && want != got {
            return Err(mismatch(format!("dimension {i} must be {want}")));
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        // Every model is loaded before the server accepts a connection.
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let request = request.into_inner();
        let ready = self.served(&request.name, &request.version).is_ok();
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: SERVER_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            extensions: vec![
                format!("backend:{}", self.inner.backend.kind()),
                format!("device:{}", self.inner.backend.device()),
            ],
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let request = request.into_inner();
        let served = self.served(&request.name, &request.version)?;
        let signature = served.model.signature();
        Ok(Response::new(ModelMetadataResponse {
            name: request.name,
            versions: vec![MODEL_VERSION.to_owned()],
            platform: "onnx".to_owned(),
            inputs: metadata(&signature.inputs),
            outputs: metadata(&signature.outputs),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let request = request.into_inner();
        let model_name = request.model_name.clone();
        let id = request.id.clone();
        let served = self.served(&model_name, &request.model_version)?;
        let signature = served.model.signature();
        let requested: Vec<String> = request.outputs.iter().map(|o| o.name.clone()).collect();
        for name in &requested {
            if !signature.outputs.iter().any(|o| &o.name == name) {
                return Err(Status::invalid_argument(format!(
                    "model {model_name:?} has no output {name:?} (outputs: {})",
                    describe(&signature.outputs)
                )));
            }
        }
        let tensors =
            request_tensors(request).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let inputs = prepare_inputs(&model_name, signature, tensors)?;
        let (rows, key) = if served.settings.batchable {
            let rows = inputs[0].shape[0];
            if let Some(other) = inputs.iter().find(|t| t.shape[0] != rows) {
                return Err(Status::invalid_argument(format!(
                    "inputs disagree on the batch dimension (dim 0): {:?} has {rows}, {:?} has {}",
                    inputs[0].name, other.name, other.shape[0]
                )));
            }
            let key = inputs
                .iter()
                .map(|t| (t.datatype, t.shape[1..].to_vec()))
                .collect();
            (rows, key)
        } else {
            (1, Vec::<(DataType, Vec<i64>)>::new())
        };
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            inputs,
            rows,
            key,
            reply,
            enqueued: tokio::time::Instant::now(),
        };
        served.queue.submit(job).map_err(|e| match e {
            SubmitError::Full { capacity } => Status::resource_exhausted(format!(
                "model {model_name:?} has {capacity} requests queued, its limit (max_queued_requests); retry later"
            )),
            SubmitError::Stopped => Status::unavailable("the worker is shutting down; retry on another"),
        })?;
        let outputs = outcome
            .await
            .map_err(|_| {
                Status::internal(format!(
                    "model {model_name:?}: the run was lost (the worker thread panicked)"
                ))
            })?
            .map_err(Status::internal)?;
        let outputs = if requested.is_empty() {
            outputs
        } else {
            outputs
                .into_iter()
                .filter(|t| requested.contains(&t.name))
                .collect()
        };
        let mut response =
            infer_response(model_name, outputs).map_err(|e| Status::internal(e.to_string()))?;
        response.id = id;
        response.model_version = MODEL_VERSION.to_owned();
        Ok(Response::new(response))
    }
}
