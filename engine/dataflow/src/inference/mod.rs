//! Model inference for `infer` steps: fields cut into overlapping patches ([`PatchPlan`]), sent
//! in batches to workers that speak the Open Inference Protocol ([`InferenceClient`]), and
//! stitched back without seams.

mod client;
mod patches;

pub use client::{InferOptions, InferStats, InferenceClient, MAX_REQUEST_BYTES, ModelSignature};
pub use patches::PatchPlan;
