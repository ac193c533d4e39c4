//! The Isotach renderer: draws an atmospheric [`Field`](isotach_core::Field) into an RGBA image
//! with wgpu, headless (a GPU or Mesa's software Vulkan, lavapipe), with layers over it. Display-wall
//! nodes ([`run_node`], [`run_window_node`]) draw a channel's frames for their tiles and present
//! them as PNG files or in winit windows.
//!
//! A frame is a white canvas with dark text: a title line (`{long_name} ({variable}, {units})`), a
//! second line with the valid time (`YYYY-MM-DD HH:MM UTC`) and the step, the field as a map in a
//! thin dark frame, and a horizontal colorbar under the map with tick marks, numeric labels and
//! the units. [`Renderer::render`] draws the default map: equirectangular (plate carrée) from
//! longitude 0 to 360 (central longitude 180, so the Pacific is in the middle) and latitude 90 to
//! -90. [`Renderer::render_scene`] draws a [`Scene`]: the field in any [`Projection`]
//! (equirectangular with a chosen central longitude, orthographic, polar stereographic) with
//! [`Layer`]s composed over it in order (contours, wind arrows, objects, graticule, coastlines
//! from Natural Earth). Where each part goes is computed by [`layout`] and [`MapView`], so callers
//! and tests can find the pixel of any longitude/latitude.
//!
//! Every pixel is drawn by one fragment shader (`src/shader.wgsl`): it inverts the projection
//! (pixel → lon/lat), samples the field (an `R32Float` texture, interpolated bilinearly in the
//! shader: periodic in longitude, clamped at the poles, nearest cell next to missing values) and
//! looks the colour up in a 256×1 table; the layers are rasterised on the CPU into an RGBA overlay,
//! and text, the map frame and the colorbar ticks (the `font8x8` glyphs) into an `R8Unorm` ink
//! mask, both composited by the same shader. The target is `Rgba8Unorm` (not sRGB), so colours
//! match the tables in [`colormap_rgb`] exactly.
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

mod coastline;
mod colormap;
#[rustfmt::skip]
mod colormap_tables;
mod compose;
mod contour;
mod error;
mod graticule;
mod image;
mod land;
mod layout;
mod node;
mod objects;
mod overlay;
mod present;
mod projection;
mod range;
mod renderer;
mod sample;
mod scene;
mod text;
mod vectors;
mod wall;
mod window;

pub use coastline::{
    COASTLINE_DIR_ENV, COASTLINE_INSTALL_COMMAND, CoastlineResolution, Coastlines,
    default_coastline_dir,
};
pub use colormap::colormap_rgb;
pub use compose::{frame_scene, resolve_ranges};
pub use contour::{ContourLayer, contour_segments};
pub use error::VizError;
pub use graticule::GraticuleLayer;
pub use image::RgbaImage;
pub use layout::{Layout, PixelRect, layout, try_layout};
pub use node::{
    MAX_FRAME_MESSAGE_BYTES, NodeConfig, NodeSummary, PRESENT_LOG, Presented, run_node,
};
pub use objects::{ObjectLayer, object_rgb};
pub use projection::{MapView, Pole, Projection};
pub use range::{AutoRange, percentile};
pub use renderer::Renderer;
pub use scene::{CoastlineLayer, Layer, Scene};
pub use text::{Tick, colorbar_ticks, format_time_line, format_title};
pub use vectors::{VectorLayer, arrow_anchors};
pub use wall::{MAX_WALL_SIDE_PX, NodeSpec, WallSpec};
pub use window::{WindowOptions, has_display, run_window_node};

use isotach_core::Colormap;

/// How a scalar field is coloured.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarStyle {
    /// The colour table.
    pub colormap: Colormap,
    /// Values mapped to the first and last colours; values outside clamp to the ends. `None`:
    /// chosen from the field by `auto_range`.
    pub range: Option<[f32; 2]>,
    /// How the range is chosen when `range` is `None`: the finite min/max (default) or robust
    /// percentiles, e.g. `AutoRange::Percentile { low: 2.0, high: 98.0 }`.
    pub auto_range: AutoRange,
    /// Colour of missing (NaN or infinite) cells, RGBA.
    pub nan_rgba: [u8; 4],
}

impl ScalarStyle {
    /// A style with `colormap`, the field's own range and light grey for missing cells.
    pub fn new(colormap: Colormap) -> Self {
        Self {
            colormap,
            range: None,
            auto_range: AutoRange::MinMax,
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
