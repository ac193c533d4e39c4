//! Conversions between the service's records and `isotach.v1` messages, both ways: the server
//! sends them, the client reads them back. Wire types go no further than this module, the server
//! and the client.

use chrono::{DateTime, Utc};
use isotach_core::PipelineSpec;
use isotach_proto::v1::{self, job_event};
use isotach_proto::{from_timestamp, to_timestamp};

use crate::store::{EventKind, JobEventRecord, JobRecord, JobState};

pub(crate) fn state_to_wire(state: JobState) -> v1::JobState {
    match state {
        JobState::Queued => v1::JobState::Queued,
        JobState::Running => v1::JobState::Running,
        JobState::Succeeded => v1::JobState::Succeeded,
        JobState::Failed => v1::JobState::Failed,
        JobState::Cancelled => v1::JobState::Cancelled,
        JobState::Interrupted => v1::JobState::Interrupted,
    }
}

pub(crate) fn state_from_wire(state: v1::JobState) -> Option<JobState> {
    match state {
        v1::JobState::Unspecified => None,
        v1::JobState::Queued => Some(JobState::Queued),
        v1::JobState::Running => Some(JobState::Running),
        v1::JobState::Succeeded => Some(JobState::Succeeded),
        v1::JobState::Failed => Some(JobState::Failed),
        v1::JobState::Cancelled => Some(JobState::Cancelled),
        v1::JobState::Interrupted => Some(JobState::Interrupted),
    }
}

pub(crate) fn job_to_wire(job: &JobRecord) -> v1::Job {
    v1::Job {
        id: job.id.to_string(),
        name: job.name.clone(),
        state: state_to_wire(job.state) as i32,
        spec: Some(v1::PipelineSpec::from(&job.spec)),
        created: Some(to_timestamp(job.created)),
        updated: Some(to_timestamp(job.updated)),
        submitted_by: job.submitted_by.clone(),
        rerun_of: job.rerun_of.map(|id| id.to_string()).unwrap_or_default(),
        reason: job.reason.clone().unwrap_or_default(),
    }
}

pub(crate) fn event_to_wire(event: JobEventRecord) -> v1::JobEvent {
    use job_event::Event;
    let body = match event.kind {
        EventKind::Accepted => Event::Accepted(job_event::Accepted {}),
        EventKind::Validated { time_steps } => {
            Event::Validated(job_event::Validated { time_steps })
        }
        EventKind::Progress {
            stage,
            done,
            total,
            rate_per_s,
        } => Event::Progress(job_event::StageProgress {
            stage,
            done,
            total,
            rate_per_s,
        }),
        EventKind::StepCompleted { step, time } => Event::StepCompleted(job_event::StepCompleted {
            step,
            time: Some(to_timestamp(time)),
        }),
        EventKind::FramePublished {
            channel,
            step,
            variable,
        } => Event::FramePublished(job_event::FramePublished {
            channel,
            step,
            variable,
        }),
        EventKind::Warning { message } => Event::Warning(job_event::Warning { message }),
        EventKind::Failed { reason, retryable } => {
            Event::Failed(job_event::Failed { reason, retryable })
        }
        EventKind::Succeeded { time_steps } => {
            Event::Succeeded(job_event::Succeeded { time_steps })
        }
        EventKind::Cancelled { reason } => Event::Cancelled(job_event::Cancelled { reason }),
        EventKind::Interrupted { reason } => Event::Interrupted(job_event::Interrupted { reason }),
    };
    v1::JobEvent {
        job_id: event.job_id.to_string(),
        seq: event.seq,
        time: Some(to_timestamp(event.time)),
        event: Some(body),
    }
}

/// A job as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    /// Server-assigned id.
    pub id: String,
    /// The spec's name.
    pub name: String,
    /// Where the job is (`None`: a state this client does not know).
    pub state: Option<JobState>,
    /// The spec as the server runs it (paths resolved inside its data roots).
    pub spec: Option<PipelineSpec>,
    /// When the server accepted it.
    pub created: Option<DateTime<Utc>>,
    /// When its state last changed.
    pub updated: Option<DateTime<Utc>>,
    /// The name of the token that submitted it.
    pub submitted_by: String,
    /// The job whose stored spec it runs again.
    pub rerun_of: Option<String>,
    /// Why it failed, was cancelled or interrupted.
    pub reason: Option<String>,
}

pub(crate) fn job_from_wire(job: v1::Job) -> JobSummary {
    JobSummary {
        state: state_from_wire(job.state()),
        created: job
            .created
            .as_ref()
            .and_then(|t| from_timestamp("created", t).ok()),
        updated: job
            .updated
            .as_ref()
            .and_then(|t| from_timestamp("updated", t).ok()),
        spec: job.spec.and_then(|s| PipelineSpec::try_from(s).ok()),
        id: job.id,
        name: job.name,
        submitted_by: job.submitted_by,
        rerun_of: Some(job.rerun_of).filter(|id| !id.is_empty()),
        reason: Some(job.reason).filter(|r| !r.is_empty()),
    }
}

/// An event as the client reads it; `None` for an event this client does not know.
pub(crate) fn event_from_wire(event: v1::JobEvent) -> Option<JobEventRecord> {
    use job_event::Event;
    let time = |t: Option<&isotach_proto::prost_types::Timestamp>, field: &str| {
        t.and_then(|t| from_timestamp(field, t).ok())
            .unwrap_or_default()
    };
    let kind = match event.event? {
        Event::Accepted(_) => EventKind::Accepted,
        Event::Validated(v) => EventKind::Validated {
            time_steps: v.time_steps,
        },
        Event::Progress(p) => EventKind::Progress {
            stage: p.stage,
            done: p.done,
            total: p.total,
            rate_per_s: p.rate_per_s,
        },
        Event::StepCompleted(s) => EventKind::StepCompleted {
            step: s.step,
            time: time(s.time.as_ref(), "step_completed.time"),
        },
        Event::FramePublished(f) => EventKind::FramePublished {
            channel: f.channel,
            step: f.step,
            variable: f.variable,
        },
        Event::Warning(w) => EventKind::Warning { message: w.message },
        Event::Failed(f) => EventKind::Failed {
            reason: f.reason,
            retryable: f.retryable,
        },
        Event::Succeeded(s) => EventKind::Succeeded {
            time_steps: s.time_steps,
        },
        Event::Cancelled(c) => EventKind::Cancelled { reason: c.reason },
        Event::Interrupted(i) => EventKind::Interrupted { reason: i.reason },
    };
    Some(JobEventRecord {
        job_id: event.job_id.parse().unwrap_or_default(),
        seq: event.seq,
        time: time(event.time.as_ref(), "time"),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_survives_the_wire() {
        let time: DateTime<Utc> = "2017-01-01T06:00:00Z".parse().expect("instant");
        let kinds = [
            EventKind::Accepted,
            EventKind::Validated { time_steps: 3 },
            EventKind::Progress {
                stage: "read".into(),
                done: 4,
                total: 8,
                rate_per_s: 2.5,
            },
            EventKind::StepCompleted { step: 1, time },
            EventKind::FramePublished {
                channel: "/data/frames".into(),
                step: 1,
                variable: "ivt".into(),
            },
            EventKind::Warning {
                message: "w".into(),
            },
            EventKind::Failed {
                reason: "r".into(),
                retryable: true,
            },
            EventKind::Succeeded { time_steps: 3 },
            EventKind::Cancelled { reason: "c".into() },
            EventKind::Interrupted { reason: "i".into() },
        ];
        for (seq, kind) in kinds.into_iter().enumerate() {
            let record = JobEventRecord {
                job_id: 7,
                seq: seq as u64 + 1,
                time,
                kind,
            };
            assert_eq!(event_from_wire(event_to_wire(record.clone())), Some(record));
        }
        for state in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
            JobState::Interrupted,
        ] {
            assert_eq!(state_from_wire(state_to_wire(state)), Some(state));
        }
    }
}
