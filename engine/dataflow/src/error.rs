use std::sync::{Arc, Mutex};

/// Result of running a pipeline.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Why a pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The spec does not fit the data.
    #[error(transparent)]
    Spec(#[from] isotach_core::SpecError),
    /// Reading the source failed.
    #[error(transparent)]
    Source(#[from] isotach_connectors::ConnectorError),
    /// The plan cannot be carried out (for example source variables chunked differently).
    #[error("plan: {0}")]
    Plan(String),
    /// An operator failed on a tile.
    #[error("step {step}, region {region}: {message}")]
    Operator {
        /// Time step.
        step: u64,
        /// Region key, as `row,col`.
        region: String,
        /// What failed.
        message: String,
    },
    /// The consumer of the fields went away before the pipeline finished.
    #[error("the frame consumer stopped before step {0} was delivered")]
    ConsumerGone(u64),
    /// An infer step cannot reach a worker that serves its model, or the model does not fit.
    #[error("inference: {0}")]
    Inference(String),
    /// The dataflow runtime failed.
    #[error("dataflow: {0}")]
    Dataflow(String),
}

/// The first error raised inside a dataflow. Operators cannot return errors, so they record the
/// first one here; the feeding loop sees it and stops the job, and [`crate::run_pipeline`] returns it.
#[derive(Debug, Clone, Default)]
pub struct ErrorSlot(Arc<Mutex<Option<EngineError>>>);

impl ErrorSlot {
    /// Records `error` unless an earlier one is already recorded.
    pub fn set(&self, error: EngineError) {
        let mut slot = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    /// True once an error is recorded.
    pub fn is_set(&self) -> bool {
        self.0.lock().map(|s| s.is_some()).unwrap_or(true)
    }

    /// Takes the recorded error.
    pub fn take(&self) -> Option<EngineError> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
    }
}
