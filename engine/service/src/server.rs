//! The gRPC edge: `isotach.v1.JobService` with bearer-token authentication. Wire types are
//! converted to core and service types here and go no further.

use std::pin::Pin;
use std::sync::Arc;

use isotach_core::PipelineSpec;
use isotach_proto::v1;
use isotach_proto::v1::frame_service_server::FrameServiceServer;
use isotach_proto::v1::job_service_server::{JobService, JobServiceServer};
use isotach_proto::v1::replay_control_server::ReplayControlServer;
use isotach_proto::v1::wall_sync_server::WallSyncServer;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::display::{Frames, ReplayRpc, Walls};
use crate::jobs::{JobError, JobManager, parse_id};
use crate::replay::Replays;
use crate::wall_sync::WallSync;
use crate::wire::{event_to_wire, job_to_wire, state_from_wire};
use crate::{Result, ServiceError};

/// The largest frame message sent: a frame carries its fields (a 0.25° global field is 4 MB).
pub const MAX_FRAME_MESSAGE_BYTES: usize = 256 << 20;

/// The name of the token a call was authenticated with, put there by [`BearerAuth`].
#[derive(Debug, Clone)]
struct Caller(String);

/// Checks `authorization: Bearer SECRET` against the configured tokens.
#[derive(Clone)]
struct BearerAuth {
    manager: Arc<JobManager>,
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> std::result::Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated(
                    "no authorization metadata: send `authorization: Bearer TOKEN` \
                     (isotach --token or ISOTACH_TOKEN)",
                )
            })?
            .to_str()
            .map_err(|_| Status::unauthenticated("the authorization metadata is not ASCII"))?;
        let secret = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("the authorization metadata is not `Bearer TOKEN`")
            })?;
        let name = self
            .manager
            .config()
            .token_name(secret.trim())
            .ok_or_else(|| {
                Status::unauthenticated("the bearer token is not one this server knows")
            })?
            .to_owned();
        request.extensions_mut().insert(Caller(name));
        Ok(request)
    }
}

/// The `JobService` implementation over a [`JobManager`].
struct Jobs {
    manager: Arc<JobManager>,
}

pub(crate) fn caller<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Caller>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.clone())
}

impl From<JobError> for Status {
    fn from(error: JobError) -> Self {
        let message = error.to_string();
        match error {
            JobError::InvalidArgument(_) => Status::invalid_argument(message),
            JobError::OutsideRoots(_) => Status::permission_denied(message),
            JobError::QueueFull(_) => Status::resource_exhausted(message),
            JobError::NotFound(_) => Status::not_found(message),
            JobError::WrongState(_) => Status::failed_precondition(message),
            JobError::Internal(_) => {
                tracing::error!(error = %message, "internal error");
                Status::internal(message)
            }
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = std::result::Result<v1::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl JobService for Jobs {
    async fn submit(
        &self,
        request: Request<v1::SubmitJobRequest>,
    ) -> std::result::Result<Response<v1::Job>, Status> {
        let by = caller(&request);
        let request = request.into_inner();
        let manager = self.manager.clone();
        let rerun_of = request.rerun_of.trim().to_owned();
        let submitted = if rerun_of.is_empty() {
            let wire = request
                .spec
                .ok_or_else(|| Status::invalid_argument("spec is required (or set rerun_of)"))?;
            let spec = PipelineSpec::try_from(wire)
                .map_err(|e| Status::invalid_argument(format!("spec: {e}")))?;
            tokio::task::spawn_blocking(move || manager.submit(spec, &by, None)).await
        } else {
            if request.spec.is_some() {
                return Err(Status::invalid_argument(format!(
                    "rerun_of {rerun_of:?} runs that job's stored spec: leave spec unset"
                )));
            }
            let id = parse_id(&rerun_of)?;
            tokio::task::spawn_blocking(move || manager.rerun(id, &by)).await
        };
        let job = submitted.map_err(|e| Status::internal(format!("submit task: {e}")))??;
        Ok(Response::new(job_to_wire(&job)))
    }

    async fn get(
        &self,
        request: Request<v1::GetJobRequest>,
    ) -> std::result::Result<Response<v1::Job>, Status> {
        let id = parse_id(&request.get_ref().id)?;
        Ok(Response::new(job_to_wire(&self.manager.get(id)?)))
    }

    async fn list(
        &self,
        request: Request<v1::ListJobsRequest>,
    ) -> std::result::Result<Response<v1::ListJobsResponse>, Status> {
        let request = request.into_inner();
        let state = state_from_wire(request.state());
        let (jobs, next_page_token) =
            self.manager
                .list(state, request.page_size as usize, &request.page_token)?;
        Ok(Response::new(v1::ListJobsResponse {
            jobs: jobs.iter().map(job_to_wire).collect(),
            next_page_token,
        }))
    }

    type WatchStream = EventStream;

    async fn watch(
        &self,
        request: Request<v1::WatchJobRequest>,
    ) -> std::result::Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        let id = parse_id(&request.id)?;
        let events = self.manager.watch(id, request.after_seq)?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(events)
            .map(|event| event.map(event_to_wire).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel(
        &self,
        request: Request<v1::CancelJobRequest>,
    ) -> std::result::Result<Response<v1::Job>, Status> {
        let by = caller(&request);
        let id = parse_id(&request.get_ref().id)?;
        let job = self.manager.cancel(id, &by).await?;
        Ok(Response::new(job_to_wire(&job)))
    }
}

/// Serves `JobService`, `FrameService`, `WallSync` and `ReplayControl` for `manager` on
/// `listener` until `shutdown` resolves; every call needs a bearer token.
pub async fn serve(
    manager: Arc<JobManager>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let tls = manager.config().tls.clone();
    let auth = BearerAuth {
        manager: manager.clone(),
    };
    let walls = Arc::new(WallSync::default());
    let replays = Arc::new(Replays::new(manager.clone()));
    let jobs = JobServiceServer::with_interceptor(
        Jobs {
            manager: manager.clone(),
        },
        auth.clone(),
    );
    let frames = tonic::service::interceptor::InterceptedService::new(
        FrameServiceServer::new(Frames {
            manager,
            walls: walls.clone(),
        })
        .max_encoding_message_size(MAX_FRAME_MESSAGE_BYTES),
        auth.clone(),
    );
    let sync = WallSyncServer::with_interceptor(Walls { walls }, auth.clone());
    let replay = ReplayControlServer::with_interceptor(ReplayRpc { replays }, auth);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        let config = tls.server_config().map_err(|message| ServiceError::Serve {
            address: address.clone(),
            message,
        })?;
        server = server.tls_config(config).map_err(|e| ServiceError::Serve {
            address: address.clone(),
            message: format!("[tls]: {e}"),
        })?;
    }
    server
        .add_service(jobs)
        .add_service(frames)
        .add_service(sync)
        .add_service(replay)
        .serve_with_incoming_shutdown(
            // No Nagle delay: small replies (events, job records) would wait for the peer's ACK.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|e| ServiceError::Serve {
            address,
            message: e.to_string(),
        })
}

/// The largest request head the metrics endpoint reads.
const MAX_METRICS_REQUEST_BYTES: usize = 8 * 1024;

/// Serves `GET /metrics` (the Prometheus text format of [`JobManager::metrics`]) on `listener`,
/// one short HTTP/1.1 exchange per connection, until an accept fails.
pub async fn serve_metrics(
    manager: Arc<JobManager>,
    listener: tokio::net::TcpListener,
) -> Result<()> {
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    loop {
        let (stream, peer) = listener.accept().await.map_err(|e| ServiceError::Serve {
            address: address.clone(),
            message: e.to_string(),
        })?;
        let manager = manager.clone();
        tokio::spawn(async move {
            if let Err(e) = answer_metrics(&manager, stream).await {
                tracing::debug!(%peer, error = %e, "metrics request failed");
            }
        });
    }
}

async fn answer_metrics(
    manager: &JobManager,
    mut stream: tokio::net::TcpStream,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
        if n == 0 || head.len() + n > MAX_METRICS_REQUEST_BYTES {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (status, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => match manager.metrics() {
            Ok(body) => ("200 OK", body),
            Err(e) => ("500 Internal Server Error", format!("{e}\n")),
        },
        (Some("GET"), Some(path)) => ("404 Not Found", format!("no {path}; try /metrics\n")),
        _ => ("405 Method Not Allowed", "GET /metrics\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
