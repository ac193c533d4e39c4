//! A frame: one time step of a frames sink, ready to draw anywhere (a PNG sink, a wall tile).

use chrono::{DateTime, Utc};

use crate::{Field, LayerSpec};

/// The layers of one frames sink at one time step, with the field each layer draws. Wall nodes
/// and viewers receive frames (not pixels) and draw the part of the canvas they show.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The job that produced it (empty for frames not made by a job).
    pub job_id: String,
    /// The channel it went out on.
    pub channel: String,
    /// Position in its channel: 0, 1, 2, … in the order frames were published.
    pub number: u64,
    /// Width of the whole canvas (a wall's virtual canvas), in pixels.
    pub width_px: u32,
    /// Height of the whole canvas, in pixels.
    pub height_px: u32,
    /// The layers, first the colour field; each layer's range is fixed (resolved from the whole
    /// field when the spec left it open), so every part of the canvas uses the same colours.
    pub layers: Vec<LayerSpec>,
    /// One field per layer, in order; all of one step.
    pub fields: Vec<Field>,
    /// When the engine completed the step (every layer's field had arrived).
    pub completed_at: DateTime<Utc>,
}

impl Frame {
    /// The time step's index in the store (that of the colour field).
    pub fn step(&self) -> u64 {
        self.fields.first().map_or(0, |f| f.step)
    }

    /// The time step's instant.
    pub fn time(&self) -> DateTime<Utc> {
        self.fields.first().map_or(DateTime::UNIX_EPOCH, |f| f.time)
    }
}
