//! The worker's errors.

/// Why the worker could not start or serve. Messages name the thing and the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// An invalid configuration.
    #[error("invalid worker configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// The backend could not start (ONNX Runtime library missing, CUDA unavailable, ...).
    #[error("backend {backend} is unavailable: {message}")]
    BackendUnavailable {
        /// The backend's name.
        backend: &'static str,
        /// Why.
        message: String,
    },
    /// A model file could not be read, parsed or prepared.
    #[error("cannot load model {model:?} from {path}: {message}")]
    ModelLoad {
        /// The model's name.
        model: String,
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A model whose inputs or outputs the worker cannot serve.
    #[error("model {model:?} cannot be served: {message}")]
    Unsupported {
        /// The model's name.
        model: String,
        /// Why.
        message: String,
    },
    /// A model run failed.
    #[error("model {model:?} failed: {message}")]
    Run {
        /// The model's name.
        model: String,
        /// The backend's message.
        message: String,
    },
    /// The gRPC server failed.
    #[error("serving on {address} failed: {message}")]
    Serve {
        /// The listen address.
        address: String,
        /// Why.
        message: String,
    },
}

/// The worker's result type.
pub type Result<T, E = WorkerError> = std::result::Result<T, E>;
