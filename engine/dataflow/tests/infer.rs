//! The `infer` step against real gRPC servers on 127.0.0.1 that speak the Open Inference Protocol:
//! patched, batched inference equals the model applied to whole fields; a worker that stalls or
//! fails mid-run loses no patch; a run whose workers are all gone fails with every reason; a model
//! that does not fit is refused before any work; no more requests are in flight than allowed.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use isotach_connectors::{Source, ZarrSource};
use isotach_core::{Field, PipelineSpec};
use isotach_engine::inference::{InferOptions, InferenceClient};
use isotach_engine::{EngineError, RunConfig};
use isotach_proto::inference::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use isotach_proto::inference::model_metadata_response::TensorMetadata;
use isotach_proto::inference::*;
use isotach_proto::tensor::{Tensor, infer_response, request_tensors};
use isotach_synth::{SynthConfig, generate};
use tonic::{Request, Response, Status};

/// What a test server does once it has answered `after` inference requests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Never answers again.
    Stall,
    /// Answers UNAVAILABLE, as a server going down does.
    Unavailable,
}

/// A model server whose model is a 3 × 3 box mean of the sum of its input channels, NaN on the
/// patch's outer ring (a halo of at least one cell hides it).
struct BoxMean {
    channels: i64,
    fault: Fault,
    after: usize,
    delay: Duration,
    requests: AtomicUsize,
    batch_sizes: Mutex<Vec<usize>>,
    concurrent: AtomicUsize,
    max_concurrent: AtomicUsize,
}

impl BoxMean {
    fn new(channels: i64) -> Self {
        Self {
            channels,
            fault: Fault::None,
            after: 0,
            delay: Duration::ZERO,
            requests: AtomicUsize::new(0),
            batch_sizes: Mutex::default(),
            concurrent: AtomicUsize::new(0),
            max_concurrent: AtomicUsize::new(0),
        }
    }

    fn failing(mut self, fault: Fault, after: usize) -> Self {
        (self.fault, self.after) = (fault, after);
        self
    }

    fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn infer(&self, tensor: &Tensor) -> Result<Tensor, Status> {
        let [n, c, h, w] = tensor.shape[..] else {
            return Err(Status::invalid_argument(format!(
                "shape {:?}",
                tensor.shape
            )));
        };
        let (n, c, h, w) = (n as usize, c as usize, h as usize, w as usize);
        let values = tensor
            .to_f32()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut out = vec![f32::NAN; n * h * w];
        for b in 0..n {
            let mut sum = vec![0.0f32; h * w];
            for ch in 0..c {
                let plane = &values[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
                sum.iter_mut().zip(plane).for_each(|(s, v)| *s += v);
            }
            for r in 1..h - 1 {
                for col in 1..w - 1 {
                    let mut acc = 0.0f32;
                    for rr in [r - 1, r, r + 1] {
                        for cc in [col - 1, col, col + 1] {
                            acc += sum[rr * w + cc];
                        }
                    }
                    out[b * h * w + r * w + col] = acc / 9.0;
                }
            }
        }
        Tensor::from_f32("mean", [n as i64, 1, h as i64, w as i64], &out)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for BoxMean {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }
    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }
    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let faulted =
            self.fault != Fault::None && self.requests.load(Ordering::SeqCst) >= self.after;
        Ok(Response::new(ModelReadyResponse {
            ready: request.get_ref().name == "box" && !faulted,
        }))
    }
    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "box-mean".into(),
            version: "1".into(),
            extensions: vec![],
        }))
    }
    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        if request.get_ref().name != "box" {
            return Err(Status::not_found(format!(
                "model {:?} is not loaded (loaded: box)",
                request.get_ref().name
            )));
        }
        Ok(Response::new(ModelMetadataResponse {
            name: "box".into(),
            versions: vec!["1".into()],
            platform: "test".into(),
            inputs: vec![TensorMetadata {
                name: "x".into(),
                datatype: "FP32".into(),
                shape: vec![-1, self.channels, -1, -1],
            }],
            outputs: vec![TensorMetadata {
                name: "mean".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 1, -1, -1],
            }],
        }))
    }
    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let seen = self.requests.fetch_add(1, Ordering::SeqCst);
        if seen >= self.after {
            match self.fault {
                Fault::None => {}
                Fault::Stall => std::future::pending::<()>().await,
                Fault::Unavailable => return Err(Status::unavailable("shutting down")),
            }
        }
        let now = self.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_concurrent.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let result = (|| {
            let tensors = request_tensors(request.into_inner())
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            self.batch_sizes
                .lock()
                .expect("batch sizes")
                .push(tensors[0].shape[0] as usize);
            let out = self.infer(&tensors[0])?;
            infer_response("box", vec![out]).map_err(|e| Status::internal(e.to_string()))
        })();
        self.concurrent.fetch_sub(1, Ordering::SeqCst);
        result.map(Response::new)
    }
}

/// A server on its own runtime, stopped when dropped.
struct Server {
    url: String,
    model: Arc<BoxMean>,
    _runtime: tokio::runtime::Runtime,
}

fn serve(model: BoxMean) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let model = Arc::new(model);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let service = GrpcInferenceServiceServer::from_arc(model.clone());
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    Server {
        url: format!("http://{addr}"),
        model,
        _runtime: runtime,
    }
}

fn store(dir: &std::path::Path) -> Arc<ZarrSource> {
    let path = dir.join("s.zarr");
    generate(
        &SynthConfig {
            resolution_deg: 3.0,
            steps: 6,
            ..Default::default()
        },
        &path,
    )
    .expect("generate");
    Arc::new(ZarrSource::open(path.to_str().expect("utf-8")).expect("open"))
}

fn spec(uri: &str, workers: &[&str], extra: &str) -> PipelineSpec {
    let workers: Vec<String> = workers.iter().map(|w| format!("{w:?}")).collect();
    PipelineSpec::from_toml_str(&format!(
        r#"
        name = "infer-test"
        [source]
        uri = "{uri}"
        variables = ["ivt_u", "ivt_v"]
        [[step]]
        op = "magnitude"
        inputs = ["ivt_u", "ivt_v"]
        output = "ivt"
        [[step]]
        op = "infer"
        model = "box"
        inputs = ["ivt", "ivt_u"]
        output = "smooth"
        units = "kg m-1 s-1"
        workers = [{}]
        patch_size = 32
        halo = 2
        batch_size = 4
        {extra}
        [[sink]]
        kind = "zarr"
        path = "unused"
        variables = ["smooth", "ivt", "ivt_u"]
        "#,
        workers.join(", ")
    ))
    .expect("spec")
}

/// The box mean of the two channels' sum on the whole field, wrapped in longitude, edge rows
/// repeated: what the model gives when it sees everything.
fn whole_field(a: &Field, b: &Field) -> Vec<f32> {
    let (rows, cols) = a.grid.shape();
    let sum: Vec<f32> = a
        .values
        .iter()
        .zip(&b.values)
        .map(|(x, y)| 0.0 + x + y)
        .collect();
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0.0f32;
            for dr in -1isize..=1 {
                for dc in -1isize..=1 {
                    let rr = (r as isize + dr).clamp(0, rows as isize - 1) as usize;
                    let cc = (c as isize + dc).rem_euclid(cols as isize) as usize;
                    acc += sum[rr * cols + cc];
                }
            }
            out[r * cols + c] = acc / 9.0;
        }
    }
    out
}

fn run(
    source: &Arc<ZarrSource>,
    spec: &PipelineSpec,
    workers: usize,
) -> (
    isotach_engine::Result<isotach_engine::RunReport>,
    Vec<Field>,
) {
    let config = RunConfig {
        workers,
        ..Default::default()
    };
    let source: Arc<dyn Source> = source.clone();
    support::run_collecting(source, spec, config)
}

fn check_against_whole_fields(fields: &[Field], steps: usize) {
    let of = |name: &str| -> Vec<&Field> { fields.iter().filter(|f| f.variable == name).collect() };
    let (smooth, ivt, ivt_u) = (of("smooth"), of("ivt"), of("ivt_u"));
    assert_eq!(smooth.len(), steps, "one output per step");
    for ((out, a), b) in smooth.iter().zip(&ivt).zip(&ivt_u) {
        assert_eq!(out.step, a.step);
        assert_eq!(out.units, "kg m-1 s-1");
        let expected = whole_field(a, b);
        let differing = out
            .values
            .iter()
            .zip(&expected)
            .position(|(x, y)| x.to_bits() != y.to_bits());
        assert_eq!(differing, None, "step {}: patched output differs", out.step);
    }
}

#[test]
fn patched_batched_inference_equals_the_model_on_whole_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = store(dir.path());
    let servers = [serve(BoxMean::new(2)), serve(BoxMean::new(2))];
    let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
    let spec = spec(&source.describe().uri, &urls, "max_batch_delay_ms = 20");
    // 61 × 120 cells in 28-cell centres: 3 × 5 patches a step.
    for workers in [1, 3] {
        let progress = Arc::new(isotach_engine::Progress::default());
        let config = RunConfig {
            workers,
            progress: progress.clone(),
            ..Default::default()
        };
        let (report, fields) = support::run_collecting(source.clone(), &spec, config);
        report.expect("run");
        check_against_whole_fields(&fields, 6);
        let timers = progress.snapshot().timers;
        let requests = timers
            .iter()
            .find(|t| t.name == "step[1] infer request")
            .expect("the request timer is registered");
        assert!(requests.count >= 6 * 15 / 4, "{requests:?}");
        assert!(requests.seconds > 0.0);
    }
    let sizes: Vec<usize> = servers
        .iter()
        .flat_map(|s| s.model.batch_sizes.lock().expect("batch sizes").clone())
        .collect();
    assert_eq!(
        sizes.iter().sum::<usize>(),
        2 * 6 * 15,
        "every patch sent once"
    );
    assert!(
        sizes.iter().all(|&n| n <= 4),
        "batches of at most 4: {sizes:?}"
    );
    assert!(sizes.contains(&4), "patches were merged: {sizes:?}");
    assert!(
        servers
            .iter()
            .all(|s| s.model.requests.load(Ordering::SeqCst) > 0),
        "both workers took requests"
    );
}

#[test]
fn a_worker_that_stalls_or_fails_mid_run_loses_no_patch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = store(dir.path());
    for fault in [Fault::Stall, Fault::Unavailable] {
        let servers = [
            serve(BoxMean::new(2).failing(fault, 3)),
            serve(BoxMean::new(2)),
        ];
        let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
        let spec = spec(&source.describe().uri, &urls, "timeout_ms = 400");
        let (report, fields) = run(&source, &spec, 2);
        report.unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        check_against_whole_fields(&fields, 6);
        assert!(
            servers[0].model.requests.load(Ordering::SeqCst) > 3,
            "{fault:?}: the faulty worker was reached after its fault"
        );
    }
}

#[test]
fn a_run_whose_workers_all_fail_ends_with_every_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = store(dir.path());
    let servers = [
        serve(BoxMean::new(2).failing(Fault::Unavailable, 1)),
        serve(BoxMean::new(2).failing(Fault::Unavailable, 1)),
    ];
    let urls: Vec<&str> = servers.iter().map(|s| s.url.as_str()).collect();
    let spec = spec(&source.describe().uri, &urls, "");
    let started = std::time::Instant::now();
    let (report, _) = run(&source, &spec, 2);
    let message = report.expect_err("every worker fails").to_string();
    assert!(message.contains("failed on every worker"), "{message}");
    for url in &urls {
        assert!(message.contains(url), "{message} names {url}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it failed instead of hanging"
    );
}

#[test]
fn a_model_that_does_not_fit_is_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = store(dir.path());
    let server = serve(BoxMean::new(3));
    let spec_3 = spec(&source.describe().uri, &[&server.url], "");
    let (report, fields) = run(&source, &spec_3, 1);
    let message = report.expect_err("3 channels expected, 2 sent").to_string();
    assert!(
        message.contains("[-1, 3, -1, -1]") && message.contains("[N, 2, 32, 32]"),
        "{message}"
    );
    assert!(fields.is_empty(), "nothing was read");
    assert_eq!(server.model.requests.load(Ordering::SeqCst), 0);

    let unknown = spec(&source.describe().uri, &[&server.url], "")
        .to_toml_string()
        .expect("toml")
        .replace("model = \"box\"", "model = \"nope\"");
    let unknown = PipelineSpec::from_toml_str(&unknown).expect("spec");
    let (report, _) = run(&source, &unknown, 1);
    let message = report.expect_err("unknown model").to_string();
    assert!(
        message.contains("\"nope\"") && message.contains("loaded: box"),
        "{message}"
    );

    let nobody = spec(&source.describe().uri, &["http://127.0.0.1:9"], "");
    let (report, _) = run(&source, &nobody, 1);
    let error = report.expect_err("no worker");
    assert!(matches!(error, EngineError::Inference(_)), "{error}");
    assert!(error.to_string().contains("http://127.0.0.1:9"), "{error}");
}

#[test]
fn no_more_requests_are_in_flight_than_allowed() {
    let server = serve(BoxMean::new(1).slow(Duration::from_millis(30)));
    let client = InferenceClient::connect(
        std::slice::from_ref(&server.url),
        InferOptions {
            model: "box".into(),
            model_output: None,
            channels: 1,
            patch_size: 16,
            halo: 1,
            batch_size: 2,
            max_batch_delay: Duration::from_millis(1),
            max_batches_in_flight: 3,
            timeout: Duration::from_secs(10),
        },
    )
    .expect("connect");
    let (tx, rx) = std::sync::mpsc::channel();
    let field: Vec<f32> = (0..40 * 40).map(|i| (i % 17) as f32).collect();
    for _ in 0..8 {
        let tx = tx.clone();
        client.infer_field(&[&field], (40, 40), false, move |r| {
            tx.send(r).expect("send")
        });
    }
    for _ in 0..8 {
        let values = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("answer")
            .expect("ok");
        assert_eq!(values.len(), 1600);
        assert!(values.iter().all(|v| v.is_finite()));
    }
    let stats = client.stats();
    assert_eq!(stats.patches.load(Ordering::SeqCst), 8 * 9);
    assert!(stats.max_in_flight.load(Ordering::SeqCst) <= 3);
    assert_eq!(
        server.model.max_concurrent.load(Ordering::SeqCst),
        3,
        "the bound was reached, not passed"
    );
}
