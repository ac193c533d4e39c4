use std::fmt;

/// Result of validating or parsing user input.
pub type Result<T, E = SpecError> = std::result::Result<T, E>;

/// A pipeline spec that cannot run, with the thing and the value named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The TOML (or protobuf) text itself is malformed.
    #[error("spec could not be parsed: {0}")]
    Parse(String),
    /// A variable the spec names does not exist in the source or in any earlier step.
    #[error("variable {name:?} not found in {place} (have: {})", Available(.available))]
    UnknownVariable {
        /// The name the spec used.
        name: String,
        /// Where it was looked up, for example `store data/synthetic.zarr`.
        place: String,
        /// The names that do exist there.
        available: Vec<String>,
    },
    /// The requested time range is not inside the data.
    #[error(
        "time range {start} .. {end} is outside the data of {uri} ({data_start} .. {data_end})"
    )]
    TimeOutOfRange {
        /// Store the range was checked against.
        uri: String,
        /// Requested start.
        start: String,
        /// Requested end.
        end: String,
        /// First time step of the data.
        data_start: String,
        /// Last time step of the data.
        data_end: String,
    },
    /// Any other inconsistency, named by the field that holds it.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the offending field, for example `step[1].output`.
        field: String,
        /// What is wrong, with the value.
        message: String,
    },
}

impl SpecError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

struct Available<'a>(&'a [String]);

impl fmt::Display for Available<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.0.join(", "))
    }
}
