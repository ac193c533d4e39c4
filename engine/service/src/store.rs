//! Job records and their event logs in an embedded SQLite database (`jobs.sqlite3` in the data
//! directory): they survive a restart of the server.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use isotach_core::PipelineSpec;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{Result, ServiceError};

/// File name of the database inside the data directory.
pub const DATABASE_FILE: &str = "jobs.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    state        TEXT NOT NULL,
    spec_toml    TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    submitted_by TEXT NOT NULL,
    rerun_of     INTEGER,
    reason       TEXT
);
CREATE TABLE IF NOT EXISTS events (
    job_id  INTEGER NOT NULL REFERENCES jobs(id),
    seq     INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    event   TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, id);
";

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Accepted, waiting for a free slot.
    Queued,
    /// Running.
    Running,
    /// Finished; every result was written.
    Succeeded,
    /// Stopped by an error.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// The server stopped while the job was queued or running; it can be rerun.
    Interrupted,
}

impl JobState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
            Self::Interrupted,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// True once the job will not change again.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

/// A job as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Server-assigned id, from 1.
    pub id: i64,
    /// The spec's name.
    pub name: String,
    /// Where the job is.
    pub state: JobState,
    /// The spec as run: its paths resolved inside the data roots.
    pub spec: PipelineSpec,
    /// When the server accepted it.
    pub created: DateTime<Utc>,
    /// When its state last changed.
    pub updated: DateTime<Utc>,
    /// The name of the token that submitted it.
    pub submitted_by: String,
    /// The job this one reruns.
    pub rerun_of: Option<i64>,
    /// Why it failed, was cancelled or interrupted.
    pub reason: Option<String>,
}

/// What happened to a job, as recorded in its event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventKind {
    /// The server accepted the job.
    Accepted,
    /// The spec passed validation against its data.
    Validated {
        /// Time steps the job will process.
        time_steps: u64,
    },
    /// A stage made progress.
    Progress {
        /// The stage (`read`, `step[0] magnitude`, `assemble`, `deliver`).
        stage: String,
        /// Units of work done.
        done: u64,
        /// Units of work in all (0 when unknown).
        total: u64,
        /// Units of work per second.
        rate_per_s: f64,
    },
    /// Every field of a time step was written.
    StepCompleted {
        /// The step's index in the store.
        step: u64,
        /// The step's instant.
        time: DateTime<Utc>,
    },
    /// A frame was written.
    FramePublished {
        /// The frames folder.
        channel: String,
        /// The step's index in the store.
        step: u64,
        /// The variable drawn.
        variable: String,
    },
    /// Something worth telling that does not stop the job.
    Warning {
        /// What happened.
        message: String,
    },
    /// The job failed.
    Failed {
        /// Why.
        reason: String,
        /// Whether running it again may succeed.
        retryable: bool,
    },
    /// The job succeeded.
    Succeeded {
        /// Time steps processed.
        time_steps: u64,
    },
    /// The job was cancelled.
    Cancelled {
        /// Who asked.
        reason: String,
    },
    /// The server stopped while the job was queued or running.
    Interrupted {
        /// What happened.
        reason: String,
    },
}

impl EventKind {
    /// True for the last event of a job's log.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Failed { .. }
                | Self::Succeeded { .. }
                | Self::Cancelled { .. }
                | Self::Interrupted { .. }
        )
    }
}

/// One entry of a job's event log.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEventRecord {
    /// The job.
    pub job_id: i64,
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
}

/// The database. One connection; callers serialize access (the service holds it in a mutex).
pub struct JobStore {
    connection: Connection,
    path: PathBuf,
}

impl JobStore {
    /// Opens (creating if needed) `DATA_DIR/jobs.sqlite3`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| ServiceError::Database {
            path: data_dir.display().to_string(),
            message: format!("creating the data directory: {e}"),
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let connection = Connection::open(&path).map_err(|e| ServiceError::Database {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let store = Self { connection, path };
        // WAL: readers never block the writer, and a killed server loses no committed record.
        store.sql(|c| {
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c.pragma_update(None, "foreign_keys", "ON")?;
            c.execute_batch(SCHEMA)
        })?;
        Ok(store)
    }

    fn sql<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&self.connection).map_err(|e| ServiceError::Database {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Records a new queued job and returns its id.
    pub fn insert_job(
        &self,
        spec: &PipelineSpec,
        submitted_by: &str,
        rerun_of: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let spec_toml = spec.to_toml_string().map_err(|e| ServiceError::Database {
            path: self.path.display().to_string(),
            message: format!("spec {:?} cannot be stored as TOML: {e}", spec.name),
        })?;
        self.sql(|c| {
            c.execute(
                "INSERT INTO jobs (name, state, spec_toml, created_ms, updated_ms, submitted_by, rerun_of)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
                params![
                    spec.name,
                    JobState::Queued.as_str(),
                    spec_toml,
                    now.timestamp_millis(),
                    submitted_by,
                    rerun_of
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Sets a job's state (and the reason, when given).
    pub fn set_state(&self, id: i64, state: JobState, now: DateTime<Utc>) -> Result<()> {
        self.sql(|c| {
            c.execute(
                "UPDATE jobs SET state = ?2, updated_ms = ?3 WHERE id = ?1",
                params![id, state.as_str(), now.timestamp_millis()],
            )
            .map(drop)
        })
    }

    /// Appends `kind` to a job's log, and when `final_state` is given sets the job's state and
    /// reason in the same transaction; returns the event as recorded.
    pub fn append_event(
        &mut self,
        id: i64,
        kind: EventKind,
        final_state: Option<(JobState, Option<&str>)>,
        now: DateTime<Utc>,
    ) -> Result<JobEventRecord> {
        let event = serde_json::to_string(&kind).map_err(|e| ServiceError::Database {
            path: self.path.display().to_string(),
            message: format!("event {kind:?} cannot be stored: {e}"),
        })?;
        let path = self.path.display().to_string();
        let seq = (|| {
            let tx = self.connection.transaction()?;
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?1",
                [id],
                |row| row.get(0),
            )?;
            tx.execute(
                "INSERT INTO events (job_id, seq, time_ms, event) VALUES (?1, ?2, ?3, ?4)",
                params![id, seq, now.timestamp_millis(), event],
            )?;
            if let Some((state, reason)) = final_state {
                tx.execute(
                    "UPDATE jobs SET state = ?2, reason = ?3, updated_ms = ?4 WHERE id = ?1",
                    params![id, state.as_str(), reason, now.timestamp_millis()],
                )?;
            }
            tx.commit()?;
            Ok::<_, rusqlite::Error>(seq)
        })()
        .map_err(|e| ServiceError::Database {
            path,
            message: e.to_string(),
        })?;
        Ok(JobEventRecord {
            job_id: id,
            seq: u64::try_from(seq).unwrap_or_default(),
            // As stored, so that a live event and its replay are the same.
            time: millis(now.timestamp_millis()),
            kind,
        })
    }

    /// One job, or `None`.
    pub fn get(&self, id: i64) -> Result<Option<JobRecord>> {
        let row = self.sql(|c| {
            c.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                JobRow::from_row,
            )
            .optional()
        })?;
        row.map(|r| r.into_record(&self.path)).transpose()
    }

    /// Up to `limit` jobs with ids below `before` (all when `None`), newest first, only in `state`
    /// when given.
    pub fn list(
        &self,
        state: Option<JobState>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<JobRecord>> {
        let rows = self.sql(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = statement.query_map(
                params![
                    state.map(JobState::as_str),
                    before,
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                JobRow::from_row,
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|r| r.into_record(&self.path))
            .collect()
    }

    /// A job's events with a seq above `after_seq`, in order.
    pub fn events_after(&self, id: i64, after_seq: u64) -> Result<Vec<JobEventRecord>> {
        let rows = self.sql(|c| {
            let mut statement = c.prepare(
                "SELECT seq, time_ms, event FROM events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = statement.query_map(
                params![id, i64::try_from(after_seq).unwrap_or(i64::MAX)],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter()
            .map(|(seq, time_ms, event)| {
                let kind = serde_json::from_str(&event).map_err(|e| ServiceError::Database {
                    path: self.path.display().to_string(),
                    message: format!("job {id} event {seq} is unreadable ({e}): {event}"),
                })?;
                Ok(JobEventRecord {
                    job_id: id,
                    seq: u64::try_from(seq).unwrap_or_default(),
                    time: millis(time_ms),
                    kind,
                })
            })
            .collect()
    }

    /// How many jobs are recorded in each state (states without jobs are left out).
    pub fn count_by_state(&self) -> Result<Vec<(String, u64)>> {
        self.sql(|c| {
            let mut statement =
                c.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?.max(0) as u64,
                ))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    /// Ids of the jobs recorded as queued or running, oldest first: after a restart, the jobs the
    /// previous server did not finish.
    pub fn unfinished(&self) -> Result<Vec<(i64, JobState)>> {
        let rows = self.sql(|c| {
            let mut statement =
                c.prepare("SELECT id, state FROM jobs WHERE state IN (?1, ?2) ORDER BY id")?;
            let rows = statement.query_map(
                params![JobState::Queued.as_str(), JobState::Running.as_str()],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, state)| (id, JobState::parse(&state).unwrap_or(JobState::Running)))
            .collect())
    }
}

const JOB_COLUMNS: &str =
    "id, name, state, spec_toml, created_ms, updated_ms, submitted_by, rerun_of, reason";

struct JobRow {
    id: i64,
    name: String,
    state: String,
    spec_toml: String,
    created_ms: i64,
    updated_ms: i64,
    submitted_by: String,
    rerun_of: Option<i64>,
    reason: Option<String>,
}

impl JobRow {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            name: row.get(1)?,
            state: row.get(2)?,
            spec_toml: row.get(3)?,
            created_ms: row.get(4)?,
            updated_ms: row.get(5)?,
            submitted_by: row.get(6)?,
            rerun_of: row.get(7)?,
            reason: row.get(8)?,
        })
    }

    fn into_record(self, path: &Path) -> Result<JobRecord> {
        let broken = |message: String| ServiceError::Database {
            path: path.display().to_string(),
            message: format!("job {}: {message}", self.id),
        };
        let state = JobState::parse(&self.state)
            .ok_or_else(|| broken(format!("unknown state {:?}", self.state)))?;
        let spec = PipelineSpec::from_toml_str(&self.spec_toml)
            .map_err(|e| broken(format!("stored spec is unreadable: {e}")))?;
        Ok(JobRecord {
            id: self.id,
            name: self.name,
            state,
            spec,
            created: millis(self.created_ms),
            updated: millis(self.updated_ms),
            submitted_by: self.submitted_by,
            rerun_of: self.rerun_of,
            reason: self.reason,
        })
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PipelineSpec {
        PipelineSpec::from_toml_str(
            "name = \"t\"\n[source]\nuri = \"s.zarr\"\nvariables = [\"u\"]\n\
             [[sink]]\nkind = \"zarr\"\npath = \"o.zarr\"\nvariables = [\"u\"]\n",
        )
        .expect("spec")
    }

    #[test]
    fn jobs_and_events_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let (first, second) = {
            let mut store = JobStore::open(dir.path()).expect("open");
            let first = store.insert_job(&spec(), "ci", None, now).expect("insert");
            let second = store
                .insert_job(&spec(), "ci", Some(first), now)
                .expect("insert");
            store
                .append_event(first, EventKind::Accepted, None, now)
                .expect("event");
            let done = store
                .append_event(
                    first,
                    EventKind::Succeeded { time_steps: 3 },
                    Some((JobState::Succeeded, None)),
                    now,
                )
                .expect("event");
            assert_eq!(done.seq, 2);
            store
                .set_state(second, JobState::Running, now)
                .expect("state");
            (first, second)
        };
        let store = JobStore::open(dir.path()).expect("reopen");
        let job = store.get(first).expect("get").expect("first job");
        assert_eq!((job.state, job.spec), (JobState::Succeeded, spec()));
        assert_eq!(store.events_after(first, 1).expect("events").len(), 1);
        assert_eq!(
            store.unfinished().expect("unfinished"),
            [(second, JobState::Running)]
        );
        let page = store.list(None, None, 1).expect("list");
        assert_eq!(page[0].id, second);
        assert_eq!(page[0].rerun_of, Some(first));
        let older = store.list(None, Some(second), 10).expect("list");
        assert_eq!(older.iter().map(|j| j.id).collect::<Vec<_>>(), [first]);
        assert!(store.get(99).expect("get").is_none());
    }
}
