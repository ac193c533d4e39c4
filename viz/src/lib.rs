//! The Isotach renderer: draws one atmospheric [`Field`](isotach_core::Field) into an RGBA image
//! with wgpu, headless (a GPU or Mesa's software Vulkan, lavapipe).
//!
//! A frame is a white canvas with dark text: a title line (`{long_name} ({variable}, {units})`), a
//! second line with the valid time (`YYYY-MM-DD HH:MM UTC`) and the step, the field as an
//! equirectangular (plate carrée) map of longitude 0..360 (central longitude 180, so the Pacific
//! is in the middle) and latitude 90..-90 in a thin dark frame, and a horizontal colorbar under
//! the map with tick marks, numeric labels and the units. Where each part goes is computed by
//! [`layout`], so callers and tests can find the pixel of any longitude/latitude.
//!
//! Every pixel is drawn by one fragment shader (`src/shader.wgsl`): the field is uploaded as an
//! `R32Float` texture and interpolated bilinearly in the shader (periodic in longitude, clamped at
//! the poles, nearest cell next to missing values); the colormap is a 256×1 lookup texture; text,
//! the map frame and the colorbar ticks are rasterised on the CPU with the `font8x8` glyphs into an
//! `R8Unorm` mask that the same shader composites. The target is `Rgba8Unorm` (not sRGB), so
//! colours match the tables in [`colormap_rgb`] exactly.
//!
//! ```no_run
//! use isotach_viz::{Canvas, Renderer, ScalarStyle};
//! # fn demo(field: &isotach_core::Field) -> Result<(), isotach_viz::VizError> {
//! let mut renderer = Renderer::new_headless()?;
//! let image = renderer.render(field, &ScalarStyle::default(), Canvas::new(1280, 720))?;
//! image.write_png(std::path::Path::new("frame.png"))?;
//! # Ok(())
//! # }
//! ```

mod colormap;
#[rustfmt::skip]
mod colormap_tables;
mod error;
mod image;
mod layout;
mod renderer;
mod text;

pub use colormap::colormap_rgb;
pub use error::VizError;
pub use image::RgbaImage;
pub use layout::{Layout, PixelRect, layout, try_layout};
pub use renderer::Renderer;
pub use text::{Tick, colorbar_ticks, format_time_line, format_title};

use isotach_core::Colormap;

/// How a scalar field is coloured.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarStyle {
    /// The colour table.
    pub colormap: Colormap,
    /// Values mapped to the first and last colours; values outside clamp to the ends. `None`: the
    /// field's finite range (widened by ±0.5 when the field is constant).
    pub range: Option<[f32; 2]>,
    /// Colour of missing (NaN or infinite) cells, RGBA.
    pub nan_rgba: [u8; 4],
}

impl ScalarStyle {
    /// A style with `colormap`, the field's own range and light grey for missing cells.
    pub fn new(colormap: Colormap) -> Self {
        Self {
            colormap,
            range: None,
            nan_rgba: [200, 200, 200, 255],
        }
    }
}

impl Default for ScalarStyle {
    fn default() -> Self {
        Self::new(Colormap::Viridis)
    }
}

/// The size of the image to render, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Canvas {
    /// Width in pixels.
    pub width_px: u32,
    /// Height in pixels.
    pub height_px: u32,
}

impl Canvas {
    /// A canvas of `width_px × height_px`.
    pub fn new(width_px: u32, height_px: u32) -> Self {
        Self {
            width_px,
            height_px,
        }
    }
}
