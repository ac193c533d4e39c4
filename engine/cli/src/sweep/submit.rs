//! Submitting the points and following their jobs to the end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use isotach_core::PipelineSpec;
use isotach_service::client::{ClientError, ConnectError, JobClient, ServerAddress};
use isotach_service::{EventKind, JobState, JobSummary};
use tokio::sync::Notify;
use tokio_stream::StreamExt;

use super::Plan;

/// How long to wait for a free place before asking again, when the server is full and none of
/// this sweep's jobs has ended meanwhile (other clients' jobs end too).
const FULL_RETRY: Duration = Duration::from_secs(2);

/// How often to try again when the server cannot be reached, before giving up on a point.
const UNREACHABLE_TRIES: u32 = 10;

/// How a point's job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
    /// The server refused the submission.
    Refused,
    /// The job could not be followed to its end (the server went away).
    Lost,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
            Self::Refused => "refused",
            Self::Lost => "lost",
        }
    }
}

/// What happened to one point's job.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The job as the server accepted it (its spec with the paths the server resolved).
    pub job: Option<JobSummary>,
    pub status: Status,
    pub error: Option<String>,
    /// When the server accepted the job.
    pub submitted_at: Option<DateTime<Utc>>,
    /// When it started: its acceptance when the server started it at once, else its first event
    /// after validation (a progress report or a completed step: late by up to the server's
    /// progress interval or the time to the first step; no event marks a queued job's start).
    pub started_at: Option<DateTime<Utc>>,
    /// Its final event.
    pub finished_at: Option<DateTime<Utc>>,
    pub time_steps: Option<u64>,
}

impl Outcome {
    fn refused(error: String) -> Self {
        Self {
            job: None,
            status: Status::Refused,
            error: Some(error),
            submitted_at: None,
            started_at: None,
            finished_at: None,
            time_steps: None,
        }
    }

    /// The spec the server ran, with its resolved paths.
    pub(crate) fn job_spec(&self) -> Option<&PipelineSpec> {
        self.job.as_ref().and_then(|job| job.spec.as_ref())
    }
}

/// Submits every plan in order and follows each job to its end; one outcome per plan, in order.
pub(crate) fn run(server: &ServerAddress, plans: &[Plan<'_>]) -> Result<Vec<Outcome>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(submit_all(server, plans))
}

async fn submit_all(server: &ServerAddress, plans: &[Plan<'_>]) -> Result<Vec<Outcome>> {
    let mut client = JobClient::connect(server)
        .await
        .with_context(|| format!("connecting to the job server {}", server.url))?;
    let ended = Arc::new(Notify::new());
    let mut followers = Vec::with_capacity(plans.len());
    for (i, plan) in plans.iter().enumerate() {
        let id = &plan.point.id;
        match submit_one(&mut client, server, plan, plans.len() - i, &ended).await {
            Ok(job) => {
                let how = match &plan.rerun_of {
                    Some(earlier) => format!(" (a rerun of job {earlier})"),
                    None => String::new(),
                };
                println!(
                    "point {id}: job {} {}{how}",
                    job.id,
                    job.state.map_or("submitted", JobState::as_str)
                );
                let (server, ended) = (server.clone(), ended.clone());
                let id = id.clone();
                followers.push(tokio::spawn(async move {
                    let outcome = follow(&server, job).await;
                    report(&id, &outcome);
                    ended.notify_one();
                    outcome
                }));
            }
            Err(e) => {
                let message = e.to_string();
                eprintln!("point {id}: refused: {message}");
                followers.push(tokio::spawn(async move { Outcome::refused(message) }));
            }
        }
    }
    let mut outcomes = Vec::with_capacity(followers.len());
    for follower in followers {
        outcomes.push(follower.await.context("following a job")?);
    }
    Ok(outcomes)
}

/// Submits one point, waiting while the server is full and retrying while it is unreachable.
async fn submit_one(
    client: &mut JobClient,
    server: &ServerAddress,
    plan: &Plan<'_>,
    left: usize,
    ended: &Notify,
) -> Result<JobSummary, ClientError> {
    let mut told_full = false;
    let mut unreachable = 0;
    loop {
        let attempt = match &plan.rerun_of {
            Some(job) => client.rerun(job).await,
            None => client.submit(&plan.point.spec).await,
        };
        match attempt {
            Ok(job) => return Ok(job),
            Err(ClientError::Status {
                code: "RESOURCE_EXHAUSTED",
                message,
            }) => {
                if !told_full {
                    eprintln!(
                        "point {}: the server is full ({message}); waiting to submit it and {} \
                         more",
                        plan.point.id,
                        left - 1
                    );
                    told_full = true;
                }
                // Until one of this sweep's jobs ends, or a while (other clients' jobs end too).
                let _ = tokio::time::timeout(FULL_RETRY, ended.notified()).await;
            }
            Err(
                e @ (ClientError::Connect(ConnectError::Unreachable { .. })
                | ClientError::Status {
                    code: "UNAVAILABLE",
                    ..
                }),
            ) if unreachable < UNREACHABLE_TRIES => {
                unreachable += 1;
                eprintln!(
                    "point {}: cannot reach the server ({e}); trying again \
                     ({unreachable}/{UNREACHABLE_TRIES})",
                    plan.point.id
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(fresh) = JobClient::connect(server).await {
                    *client = fresh;
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Follows `job`'s events to its final one, watching again from the last event seen when the
/// stream breaks off.
async fn follow(server: &ServerAddress, job: JobSummary) -> Outcome {
    let mut outcome = Outcome {
        submitted_at: job.created,
        started_at: (job.state == Some(JobState::Running))
            .then_some(job.created)
            .flatten(),
        job: Some(job.clone()),
        status: Status::Lost,
        error: None,
        finished_at: None,
        time_steps: None,
    };
    let mut last_seq = 0;
    let mut breaks = 0;
    loop {
        let watched = async {
            let mut client = JobClient::connect(server).await?;
            let events = client.watch(&job.id, last_seq).await?;
            // The client stays alive as long as its stream.
            Ok::<_, ClientError>((client, events))
        };
        let why = match watched.await {
            Ok((_client, events)) => {
                let mut events = std::pin::pin!(events);
                let mut why = format!("the event stream of job {} ended early", job.id);
                while let Some(event) = events.next().await {
                    let event = match event {
                        Ok(event) => event,
                        Err(e) => {
                            why = e.to_string();
                            break;
                        }
                    };
                    last_seq = event.seq;
                    let (status, error, steps) = match event.kind {
                        EventKind::Accepted | EventKind::Validated { .. } => continue,
                        EventKind::Succeeded { time_steps } => {
                            (Status::Succeeded, None, Some(time_steps))
                        }
                        EventKind::Failed { reason, .. } => (Status::Failed, Some(reason), None),
                        EventKind::Cancelled { reason } => (Status::Cancelled, Some(reason), None),
                        EventKind::Interrupted { reason } => {
                            (Status::Interrupted, Some(reason), None)
                        }
                        _ => {
                            outcome.started_at.get_or_insert(event.time);
                            continue;
                        }
                    };
                    outcome.started_at.get_or_insert(event.time);
                    outcome.finished_at = Some(event.time);
                    outcome.status = status;
                    outcome.error = error;
                    outcome.time_steps = steps;
                    return outcome;
                }
                why
            }
            Err(e) => e.to_string(),
        };
        breaks += 1;
        if breaks > UNREACHABLE_TRIES {
            outcome.error = Some(format!(
                "lost track of job {} after {breaks} tries: {why}",
                job.id
            ));
            return outcome;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn report(id: &str, outcome: &Outcome) {
    let job = outcome.job.as_ref().map_or("?", |j| j.id.as_str());
    let took = match (outcome.submitted_at, outcome.finished_at) {
        (Some(a), Some(b)) => format!(" in {:.1} s", (b - a).as_seconds_f64()),
        _ => String::new(),
    };
    match &outcome.error {
        None => println!("point {id}: job {job} {}{took}", outcome.status.as_str()),
        Some(error) => eprintln!(
            "point {id}: job {job} {}{took}: {error}",
            outcome.status.as_str()
        ),
    }
}
