//! Isotach's job service: the code that runs a validated pipeline with its sinks, and the gRPC
//! `JobService` (`isotach serve`) that queues, runs, records and streams jobs.
//!
//! - [`execute`] runs one spec in this process: the dataflow, the Zarr sinks, the frames (rendered
//!   with `isotach-viz`), the statistics and catalog tables. `isotach run` and every job of the
//!   service call it, so both write the same outputs. An [`ExecutionControl`] receives its events
//!   (a step completed, a frame written) and can cancel it.
//! - [`JobStore`] keeps job records and their event logs in SQLite (`jobs.sqlite3` in the data
//!   directory), so a restart loses nothing: finished jobs keep their records, and jobs that were
//!   queued or running are marked [`JobState::Interrupted`] and can be rerun from their stored
//!   spec.
//! - [`JobManager`] admits jobs (validation against the data, data-root confinement, a limit on
//!   running and queued jobs), runs them on threads of their own, and records every event with a
//!   sequence number; watchers replay the log and then follow live events.
//! - [`serve`] speaks `isotach.v1.JobService` over gRPC with bearer-token authentication
//!   ([`ServiceConfig`] says where tokens and data roots come from). Wire types stop in the
//!   server module: everything else works on core types.
//!
//! See `engine/service/README.md` for the configuration file, the job states and how to run it.

pub mod client;
mod config;
mod display;
mod execute;
pub mod frames;
mod jobs;
pub mod replay;
mod roots;
mod server;
mod store;
mod wall_sync;
mod wire;

pub use config::{ServiceConfig, TlsFiles, Token};
pub use execute::{
    CancelToken, ExecuteError, ExecutionControl, ExecutionEvent, FrameOutlet, Outcome, execute,
    validate_spec,
};
pub use jobs::{JobError, JobManager};
pub use roots::{confine_inference_workers, confine_path, confine_spec};
pub use server::{serve, serve_metrics};
pub use store::{DATABASE_FILE, EventKind, JobEventRecord, JobRecord, JobState, JobStore};
pub use wall_sync::{Ready, Release, SpreadStats, WallSync, WallSyncError};
pub use wire::JobSummary;

/// Result of the service's operations.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Why the service could not start or keep its records.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The configuration file is unreadable or wrong.
    #[error("config {path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong, naming the field and the value.
        message: String,
    },
    /// The job database failed.
    #[error("job database {path}: {message}")]
    Database {
        /// The database file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The server could not listen or stopped with an error.
    #[error("serving on {address}: {message}")]
    Serve {
        /// The listen address.
        address: String,
        /// What failed.
        message: String,
    },
}
