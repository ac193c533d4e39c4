//! A `JobService` client on core and service types, for `isotach submit`, `jobs`, `cancel` and
//! `watch`, and a `ReplayControl` client for `isotach replay`: callers never see wire types.

use isotach_core::PipelineSpec;
use isotach_proto::connect::Bearer;
pub use isotach_proto::connect::{ConnectError, ServerAddress};
use isotach_proto::v1;
use isotach_proto::v1::job_service_client::JobServiceClient;
use isotach_proto::v1::replay_control_client::ReplayControlClient;
use tokio_stream::{Stream, StreamExt};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::display::replay_from_wire;
use crate::replay::{ReplayChange, ReplayStatus};
use crate::store::{JobEventRecord, JobState};
use crate::wire::{JobSummary, event_from_wire, job_from_wire, state_to_wire};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the address, token or CA is unusable.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server answered with an error status.
    #[error("{code}: {message}")]
    Status {
        /// The gRPC status code's canonical name (`INVALID_ARGUMENT`, `UNAUTHENTICATED`, ...).
        code: &'static str,
        /// The server's message.
        message: String,
    },
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        Self::Status {
            code: code_name(status.code()),
            message: status.message().to_owned(),
        }
    }
}

/// gRPC's canonical name of a status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A connection to a job server.
pub struct JobClient {
    inner: JobServiceClient<InterceptedService<Channel, Bearer>>,
}

impl JobClient {
    /// Connects to `server`, sending its token with every call.
    pub async fn connect(server: &ServerAddress) -> Result<Self, ClientError> {
        let (channel, bearer) = server.connect().await?;
        Ok(Self {
            inner: JobServiceClient::with_interceptor(channel, bearer),
        })
    }

    /// Submits `spec` as a new job.
    pub async fn submit(&mut self, spec: &PipelineSpec) -> Result<JobSummary, ClientError> {
        let request = v1::SubmitJobRequest {
            spec: Some(v1::PipelineSpec::from(spec)),
            rerun_of: String::new(),
        };
        Ok(job_from_wire(
            self.inner.submit(request).await?.into_inner(),
        ))
    }

    /// Runs the stored spec of job `id` again as a new job.
    pub async fn rerun(&mut self, id: &str) -> Result<JobSummary, ClientError> {
        let request = v1::SubmitJobRequest {
            spec: None,
            rerun_of: id.to_owned(),
        };
        Ok(job_from_wire(
            self.inner.submit(request).await?.into_inner(),
        ))
    }

    /// One job.
    pub async fn get(&mut self, id: &str) -> Result<JobSummary, ClientError> {
        let request = v1::GetJobRequest { id: id.to_owned() };
        Ok(job_from_wire(self.inner.get(request).await?.into_inner()))
    }

    /// Up to `limit` jobs, newest first, only in `state` when given.
    pub async fn list(
        &mut self,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<JobSummary>, ClientError> {
        let mut jobs = Vec::new();
        let mut page_token = String::new();
        while jobs.len() < limit {
            let request = v1::ListJobsRequest {
                page_size: u32::try_from(limit - jobs.len()).unwrap_or(u32::MAX),
                page_token: page_token.clone(),
                state: state.map_or(v1::JobState::Unspecified, state_to_wire) as i32,
            };
            let page = self.inner.list(request).await?.into_inner();
            jobs.extend(page.jobs.into_iter().map(job_from_wire));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        Ok(jobs)
    }

    /// Cancels job `id`; the answer is its state afterwards.
    pub async fn cancel(&mut self, id: &str) -> Result<JobSummary, ClientError> {
        let request = v1::CancelJobRequest { id: id.to_owned() };
        Ok(job_from_wire(
            self.inner.cancel(request).await?.into_inner(),
        ))
    }

    /// Job `id`'s events after `after_seq`, until the job ends. Events this client does not know
    /// are skipped.
    pub async fn watch(
        &mut self,
        id: &str,
        after_seq: u64,
    ) -> Result<impl Stream<Item = Result<JobEventRecord, ClientError>> + use<>, ClientError> {
        let request = v1::WatchJobRequest {
            id: id.to_owned(),
            after_seq,
        };
        let stream = self.inner.watch(request).await?.into_inner();
        Ok(stream.filter_map(|event| match event {
            Ok(event) => event_from_wire(event).map(Ok),
            Err(status) => Some(Err(status.into())),
        }))
    }
}

/// A connection to a server's `ReplayControl`.
pub struct ReplayClient {
    inner: ReplayControlClient<InterceptedService<Channel, Bearer>>,
}

impl ReplayClient {
    /// Connects to `server`, sending its token with every call.
    pub async fn connect(server: &ServerAddress) -> Result<Self, ClientError> {
        let (channel, bearer) = server.connect().await?;
        Ok(Self {
            inner: ReplayControlClient::with_interceptor(channel, bearer),
        })
    }

    /// Starts replaying `spec` at `steps_per_second`.
    pub async fn start(
        &mut self,
        spec: &PipelineSpec,
        steps_per_second: f64,
        looping: bool,
        paused: bool,
    ) -> Result<ReplayStatus, ClientError> {
        let request = v1::StartReplayRequest {
            spec: Some(v1::PipelineSpec::from(spec)),
            steps_per_second: Some(steps_per_second),
            r#loop: looping,
            paused,
        };
        Ok(replay_from_wire(
            self.inner.start(request).await?.into_inner(),
        ))
    }

    /// Changes a replay.
    pub async fn control(
        &mut self,
        id: &str,
        change: &ReplayChange,
    ) -> Result<ReplayStatus, ClientError> {
        let request = v1::ReplayCommand {
            replay_id: id.to_owned(),
            paused: change.paused,
            seek: change.seek,
            steps_per_second: change.steps_per_second,
            r#loop: change.looping,
        };
        Ok(replay_from_wire(
            self.inner.control(request).await?.into_inner(),
        ))
    }

    /// A replay's state.
    pub async fn get(&mut self, id: &str) -> Result<ReplayStatus, ClientError> {
        let request = v1::GetReplayRequest {
            replay_id: id.to_owned(),
        };
        Ok(replay_from_wire(
            self.inner.get(request).await?.into_inner(),
        ))
    }

    /// Stops a replay.
    pub async fn stop(&mut self, id: &str) -> Result<ReplayStatus, ClientError> {
        let request = v1::GetReplayRequest {
            replay_id: id.to_owned(),
        };
        Ok(replay_from_wire(
            self.inner.stop(request).await?.into_inner(),
        ))
    }
}
