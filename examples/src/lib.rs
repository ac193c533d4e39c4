//! Runnable examples and case studies of Isotach.
//!
//! | example | run | shows |
//! |---|---|---|
//! | `landfalls` | `cargo run -p isotach-examples --example landfalls` | the library API: generate, stream, measure each river at landfall |
//!
//! Pipeline specs for the `isotach` command live in `examples/specs/`.
