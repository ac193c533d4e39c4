/// Result of a connector operation.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// What went wrong reading or writing a store, naming the store, the array and the chunk.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The location cannot be served by any connector.
    #[error("store {uri}: {why}")]
    UnsupportedUri {
        /// The location as given.
        uri: String,
        /// Why it is refused.
        why: String,
    },
    /// The store or one of its nodes could not be opened.
    #[error("store {uri}: cannot open {node}: {message}")]
    Open {
        /// The store.
        uri: String,
        /// The node (`/` for the root group, or an array name).
        node: String,
        /// The underlying reason.
        message: String,
    },
    /// Metadata is present but not usable (missing coordinate, wrong dimensions, bad units).
    #[error("store {uri}: array {array}: {message}")]
    Metadata {
        /// The store.
        uri: String,
        /// The array whose metadata is at fault.
        array: String,
        /// What is wrong, with the value.
        message: String,
    },
    /// A variable that is not in the store.
    #[error("variable {name:?} not found in store {uri} (have: {})", .available.join(", "))]
    UnknownVariable {
        /// The requested name.
        name: String,
        /// The store.
        uri: String,
        /// The variables it does have.
        available: Vec<String>,
    },
    /// A chunk could not be read or decoded.
    #[error("store {uri}: array {array}: chunk {chunk:?}: {message}")]
    Chunk {
        /// The store.
        uri: String,
        /// The array.
        array: String,
        /// The chunk's grid indices.
        chunk: Vec<u64>,
        /// The decoder's or storage's reason.
        message: String,
    },
    /// A table (Arrow IPC or Parquet) could not be read.
    #[error("reading table {path}: {message}")]
    ReadTable {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Writing failed.
    #[error("writing {path}: {message}")]
    Write {
        /// What was being written.
        path: String,
        /// Why it failed.
        message: String,
    },
}
