//! Isotach's wire types, and the conversions between them and the core types.
//!
//! Two protobuf packages are compiled here (by `protox` and `tonic-prost-build`, without a system
//! `protoc`):
//!
//! - [`isotach::v1`] (also reachable as [`v1`]): Isotach's own protocol. A [`v1::PipelineSpec`]
//!   mirrors [`isotach_core::PipelineSpec`]; `JobService` submits, lists, watches and cancels
//!   jobs; `FrameService` streams frames (layers and fields of completed steps) to wall nodes and viewers,
//!   `WallSync` is a wall's two-phase present, and `ReplayControl` plays case studies.
//! - [`inference`]: the Open Inference Protocol, wire-compatible with KServe v2's
//!   `inference.GRPCInferenceService`, so any compliant model server (Triton, MLServer, Isotach's
//!   own worker) can run a pipeline's inference steps.
//!
//! Wire types stop at this crate's edge: other crates convert to core types as soon as a message
//! arrives ([`ConversionError`] says what the wire got wrong; the core validator checks the rest)
//! and build messages only when one leaves. For inference, [`Tensor`] and the helpers in
//! [`tensor`] read and write the raw little-endian tensor bytes of `ModelInfer` calls.
//!
//! ```
//! use isotach_proto::v1;
//! use prost::Message;
//!
//! let spec = isotach_core::PipelineSpec::from_toml_str(r#"
//!     name = "ivt-frames"
//!     [source]
//!     uri = "data/synthetic.zarr"
//!     variables = ["ivt_u", "ivt_v"]
//!     [[step]]
//!     op = "magnitude"
//!     inputs = ["ivt_u", "ivt_v"]
//!     output = "ivt"
//!     [[sink]]
//!     kind = "frames"
//!     path = "out/frames"
//!     layers = [{ variable = "ivt", colormap = "magma" }]
//! "#).unwrap();
//!
//! let bytes = v1::PipelineSpec::from(&spec).encode_to_vec();
//! let wire = v1::PipelineSpec::decode(bytes.as_slice()).unwrap();
//! assert_eq!(isotach_core::PipelineSpec::try_from(wire).unwrap(), spec);
//! ```

pub mod connect;
mod frame;
mod spec;
pub mod tensor;
mod timestamp;

pub use frame::field_from_wire;
pub use spec::ConversionError;
pub use tensor::{DataType, Tensor, TensorError};
pub use timestamp::{from_timestamp, to_timestamp};

/// The encoded `google.protobuf.FileDescriptorSet` of every `.proto` file in this crate (and the
/// well-known types they import), with comments: what a gRPC reflection service serves.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/isotach_descriptor.bin"));

/// The `prost` runtime the generated messages use (for [`prost::Message`]).
pub use prost;
/// The well-known types (`google.protobuf.Timestamp`) the generated messages use.
pub use prost_types;

/// Isotach's own protobuf packages.
pub mod isotach {
    /// Package `isotach.v1`: pipeline specs, jobs and their events, frames, and the `JobService`
    /// and `FrameService` declarations (clients in `*_client`, server traits in `*_server`).
    #[allow(
        missing_docs,
        clippy::all,
        clippy::pedantic,
        clippy::nursery,
        clippy::unwrap_used,
        rustdoc::all
    )]
    pub mod v1 {
        tonic::include_proto!("isotach.v1");
    }
}

pub use isotach::v1;

/// Package `inference`: the Open Inference Protocol (KServe v2 predict protocol), with the
/// `GRPCInferenceService` client and server.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::unwrap_used,
    rustdoc::all
)]
pub mod inference {
    tonic::include_proto!("inference");
}
