use std::path::PathBuf;

/// What can go wrong while rendering or reading/writing images.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// wgpu found no graphics adapter.
    #[error(
        "no graphics adapter found (backends tried: {tried}; wgpu said: {detail}). To render \
         without a GPU, install Mesa's software Vulkan (`apt-get install mesa-vulkan-drivers`)"
    )]
    NoAdapter {
        /// The wgpu backends that were asked for adapters.
        tried: String,
        /// wgpu's own explanation.
        detail: String,
    },
    /// The adapter was found but refused to open a device.
    #[error("could not open a device on adapter {adapter}: {message}")]
    RequestDevice {
        /// The adapter.
        adapter: String,
        /// wgpu's error.
        message: String,
    },
    /// The canvas is larger than the adapter's largest 2D texture.
    #[error(
        "canvas {width}×{height} px exceeds the adapter's maximum texture size of {max} px per side"
    )]
    CanvasTooLarge {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// The adapter's `max_texture_dimension_2d`.
        max: u32,
    },
    /// A frame that cannot be drawn.
    #[error("frame {number} {reason}")]
    Frame {
        /// The frame's number in its channel.
        number: u64,
        /// What is wrong.
        reason: String,
    },
    /// A wall node cannot go on.
    #[error("wall node {node}: {reason}")]
    Node {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// The server refused a call for good (a bad token, an unknown channel).
    #[error("server answered {code}: {message}")]
    Server {
        /// The gRPC status code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// A wall file that cannot be used.
    #[error("wall {wall}: {field} {reason}")]
    Wall {
        /// The wall's name (or its file).
        wall: String,
        /// The field at fault.
        field: String,
        /// What is wrong, with the value.
        reason: String,
    },
    /// A viewport that is empty or not inside its canvas.
    #[error(
        "viewport {}×{} px at ({}, {}) does not fit inside the {width}×{height} px canvas",
        viewport.width, viewport.height, viewport.x, viewport.y
    )]
    Viewport {
        /// The viewport asked for.
        viewport: crate::PixelRect,
        /// Canvas width.
        width: u32,
        /// Canvas height.
        height: u32,
    },
    /// The canvas leaves no room for a map.
    #[error(
        "canvas {width}×{height} px is too small: the map would be {map_width}×{map_height} px, \
         at least {min_map_width}×{min_map_height} px is needed"
    )]
    CanvasTooSmall {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Width the map would get.
        map_width: u32,
        /// Height the map would get.
        map_height: u32,
        /// Smallest map width drawn.
        min_map_width: u32,
        /// Smallest map height drawn.
        min_map_height: u32,
    },
    /// The field's values do not fill its grid.
    #[error(
        "field {variable}: {len} values do not match the grid shape {nlat} lat × {nlon} lon = {expected}"
    )]
    FieldShape {
        /// The field's variable.
        variable: String,
        /// Number of values.
        len: usize,
        /// Latitudes.
        nlat: usize,
        /// Longitudes.
        nlon: usize,
        /// `nlat × nlon`.
        expected: usize,
    },
    /// The field's grid cannot be drawn (too small, irregular, or larger than a texture).
    #[error("field {variable}: grid {nlat} lat × {nlon} lon cannot be drawn: {reason}")]
    Grid {
        /// The field's variable.
        variable: String,
        /// Latitudes.
        nlat: usize,
        /// Longitudes.
        nlon: usize,
        /// Why.
        reason: String,
    },
    /// The colour range is unusable.
    #[error("colour range [{lo}, {hi}] is invalid: {reason}")]
    Range {
        /// Lower end.
        lo: f32,
        /// Upper end.
        hi: f32,
        /// Why.
        reason: &'static str,
    },
    /// wgpu reported an error (validation, out of memory, or a failed read-back).
    #[error("GPU error while {during}: {message}")]
    Gpu {
        /// What the renderer was doing.
        during: &'static str,
        /// wgpu's message.
        message: String,
    },
    /// An RGBA image whose buffer does not match its size.
    #[error("image {width}×{height} needs {expected} bytes of RGBA, the buffer has {len}")]
    ImageSize {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// `width × height × 4`.
        expected: usize,
        /// Actual length.
        len: usize,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PNG encoding or decoding failed, or the PNG has a layout this crate does not read.
    #[error("PNG {}: {message}", path.display())]
    Png {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A projection parameter is out of range.
    #[error("projection parameter {parameter} = {value} is invalid: {reason}")]
    Projection {
        /// The parameter's name.
        parameter: &'static str,
        /// Its value.
        value: f64,
        /// Why.
        reason: &'static str,
    },
    /// A robust colour range with unusable percentiles.
    #[error(
        "percentile range {low}..{high} is invalid: both percentiles must lie in 0..=100, the low \
         one below the high one"
    )]
    Percentiles {
        /// Lower percentile.
        low: f32,
        /// Upper percentile.
        high: f32,
    },
    /// A layer cannot be drawn with the parameters or fields it was given.
    #[error("{layer} layer: {reason}")]
    Layer {
        /// Which kind of layer (contours, vectors, objects, graticule, coastlines).
        layer: &'static str,
        /// What is wrong, naming the value.
        reason: String,
    },
    /// The coastline data file is not installed.
    #[error(
        "coastline data {} not found (set {env_var} to a directory holding land-110m.json, \
         land-50m.json and land-10m.json, or install them with `{install}`)", path.display()
    )]
    CoastlinesMissing {
        /// The file looked for.
        path: PathBuf,
        /// The environment variable that overrides the directory.
        env_var: &'static str,
        /// The command that installs the data.
        install: &'static str,
    },
    /// The coastline file is not the TopoJSON expected.
    #[error("coastline data {}: {reason}", path.display())]
    CoastlinesFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}
