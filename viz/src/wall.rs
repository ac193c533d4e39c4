//! Display walls: the wall file, and where each tile's screen lies on the wall's virtual canvas.
//!
//! A wall is `rows × columns` screens of `tile_width_px × tile_height_px` separated by bezels. The
//! wall shows one virtual canvas that includes the bezels' width, so a line crossing from one
//! screen to the next stays straight: the pixels "behind" a bezel are drawn nowhere. Each node (a
//! process on a display machine) drives one or more tiles.
//!
//! ```
//! let wall = isotach_viz::WallSpec::from_toml_str(r#"
//!     name = "lab"
//!     rows = 1
//!     columns = 2
//!     tile_width_px = 1920
//!     tile_height_px = 1080
//!     bezel_x_px = 40
//!     [[node]]
//!     name = "left"
//!     tiles = [[0, 0]]
//!     [[node]]
//!     name = "right"
//!     tiles = [[0, 1]]
//! "#).unwrap();
//! assert_eq!(wall.canvas(), isotach_viz::Canvas::new(3880, 1080));
//! assert_eq!(wall.viewport([0, 1]).x, 1960);
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::{Canvas, PixelRect, RgbaImage, VizError};

/// The widest or tallest virtual canvas accepted, in pixels.
pub const MAX_WALL_SIDE_PX: u32 = 65_536;

/// A wall file: the screens, their bezels, and which node drives which tile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallSpec {
    /// The wall's name; nodes of one wall share it.
    pub name: String,
    /// Rows of screens.
    pub rows: u32,
    /// Columns of screens.
    pub columns: u32,
    /// Width of one screen, pixels.
    pub tile_width_px: u32,
    /// Height of one screen, pixels.
    pub tile_height_px: u32,
    /// Pixels hidden between two neighbouring columns (both screens' bezels together, in the
    /// screens' pixel size); default 0.
    #[serde(default)]
    pub bezel_x_px: u32,
    /// Pixels hidden between two neighbouring rows; default 0.
    #[serde(default)]
    pub bezel_y_px: u32,
    /// How long the other nodes wait for a node that is not ready to present a frame, before
    /// presenting without it (1 to 60000; default 1000).
    #[serde(default = "default_present_timeout_ms")]
    pub present_timeout_ms: u32,
    /// The nodes, each with its tiles.
    #[serde(rename = "node")]
    pub nodes: Vec<NodeSpec>,
}

fn default_present_timeout_ms() -> u32 {
    1000
}

/// One node (process) of a wall and the tiles it drives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// The node's name, unique in its wall.
    pub name: String,
    /// Its tiles as `[row, column]`, counted from the top-left screen.
    pub tiles: Vec<[u32; 2]>,
}

fn invalid(wall: &str, field: impl Into<String>, reason: impl Into<String>) -> VizError {
    VizError::Wall {
        wall: wall.to_owned(),
        field: field.into(),
        reason: reason.into(),
    }
}

impl WallSpec {
    /// Reads and checks a wall file.
    pub fn load(path: &Path) -> Result<Self, VizError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            invalid(
                &path.display().to_string(),
                "file",
                format!("cannot be read: {e}"),
            )
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            VizError::Wall {
                wall,
                field,
                reason,
            } => VizError::Wall {
                wall: format!("{wall} ({})", path.display()),
                field,
                reason,
            },
            other => other,
        })
    }

    /// Parses and checks a wall file's text.
    pub fn from_toml_str(text: &str) -> Result<Self, VizError> {
        let wall: WallSpec = toml::from_str(text)
            .map_err(|e| invalid("wall file", "toml", e.message().to_owned()))?;
        wall.validate()?;
        Ok(wall)
    }

    fn validate(&self) -> Result<(), VizError> {
        let w = self.name.as_str();
        if !isotach_core::valid_channel_name(w) {
            return Err(invalid(
                w,
                "name",
                format!("{w:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
            ));
        }
        for (field, v) in [
            ("rows", self.rows),
            ("columns", self.columns),
            ("tile_width_px", self.tile_width_px),
            ("tile_height_px", self.tile_height_px),
        ] {
            if v == 0 {
                return Err(invalid(w, field, "is 0; it must be at least 1"));
            }
        }
        if !(1..=60_000).contains(&self.present_timeout_ms) {
            return Err(invalid(
                w,
                "present_timeout_ms",
                format!("{} is outside 1..=60000", self.present_timeout_ms),
            ));
        }
        let side = |n: u32, tile: u32, bezel: u32| {
            u64::from(n) * u64::from(tile) + u64::from(n - 1) * u64::from(bezel)
        };
        let (cw, ch) = (
            side(self.columns, self.tile_width_px, self.bezel_x_px),
            side(self.rows, self.tile_height_px, self.bezel_y_px),
        );
        if cw > u64::from(MAX_WALL_SIDE_PX) || ch > u64::from(MAX_WALL_SIDE_PX) {
            return Err(invalid(
                w,
                "tile_width_px",
                format!(
                    "the virtual canvas would be {cw}×{ch} px, over {MAX_WALL_SIDE_PX} px a side"
                ),
            ));
        }
        if self.nodes.is_empty() {
            return Err(invalid(
                w,
                "node",
                "no [[node]]: at least one node drives the tiles",
            ));
        }
        let mut driver: Vec<Option<&str>> = vec![None; (self.rows * self.columns) as usize];
        for (i, node) in self.nodes.iter().enumerate() {
            if !isotach_core::valid_channel_name(&node.name) {
                return Err(invalid(
                    w,
                    format!("node[{i}].name"),
                    format!(
                        "{:?} must be 1 to 64 letters, digits, '-', '_' or '.'",
                        node.name
                    ),
                ));
            }
            if self.nodes[..i].iter().any(|n| n.name == node.name) {
                return Err(invalid(
                    w,
                    format!("node[{i}].name"),
                    format!("{:?} names two nodes", node.name),
                ));
            }
            if node.tiles.is_empty() {
                return Err(invalid(w, format!("node[{i}].tiles"), "is empty"));
            }
            for &[row, col] in &node.tiles {
                if row >= self.rows || col >= self.columns {
                    return Err(invalid(
                        w,
                        format!("node[{i}].tiles"),
                        format!(
                            "[{row}, {col}] is outside the {} × {} wall (rows and columns count from 0)",
                            self.rows, self.columns
                        ),
                    ));
                }
                let slot = &mut driver[(row * self.columns + col) as usize];
                if let Some(other) = slot {
                    return Err(invalid(
                        w,
                        format!("node[{i}].tiles"),
                        format!("[{row}, {col}] is already driven by node {other:?}"),
                    ));
                }
                *slot = Some(&node.name);
            }
        }
        if let Some(free) = driver.iter().position(Option::is_none) {
            let (row, col) = (free as u32 / self.columns, free as u32 % self.columns);
            return Err(invalid(
                w,
                "node",
                format!("tile [{row}, {col}] is driven by no node"),
            ));
        }
        Ok(())
    }

    /// The virtual canvas: every screen and every bezel between them.
    pub fn canvas(&self) -> Canvas {
        Canvas::new(
            self.columns * self.tile_width_px + (self.columns - 1) * self.bezel_x_px,
            self.rows * self.tile_height_px + (self.rows - 1) * self.bezel_y_px,
        )
    }

    /// The part of the virtual canvas that tile `[row, column]` shows.
    pub fn viewport(&self, [row, col]: [u32; 2]) -> PixelRect {
        PixelRect {
            x: col * (self.tile_width_px + self.bezel_x_px),
            y: row * (self.tile_height_px + self.bezel_y_px),
            width: self.tile_width_px,
            height: self.tile_height_px,
        }
    }

    /// The node called `name`; the error lists the wall's nodes.
    pub fn node(&self, name: &str) -> Result<&NodeSpec, VizError> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            invalid(
                &self.name,
                "node",
                format!("no node {name:?} (the wall has: {})", names.join(", ")),
            )
        })
    }

    /// The smallest rectangle of the canvas holding every tile of `node`.
    pub fn node_viewport(&self, node: &NodeSpec) -> PixelRect {
        let rects: Vec<PixelRect> = node.tiles.iter().map(|&t| self.viewport(t)).collect();
        let x = rects.iter().map(|r| r.x).min().unwrap_or(0);
        let y = rects.iter().map(|r| r.y).min().unwrap_or(0);
        let right = rects.iter().map(PixelRect::right).max().unwrap_or(0);
        let bottom = rects.iter().map(PixelRect::bottom).max().unwrap_or(0);
        PixelRect {
            x,
            y,
            width: right - x,
            height: bottom - y,
        }
    }

    /// The screens side by side, bezels left out: `tiles[row * columns + col]` is tile
    /// `[row, col]`, each `tile_width_px × tile_height_px`.
    pub fn stitch(&self, tiles: &[RgbaImage]) -> Result<RgbaImage, VizError> {
        let (tw, th) = (self.tile_width_px as usize, self.tile_height_px as usize);
        let (w, h) = (tw * self.columns as usize, th * self.rows as usize);
        if tiles.len() != (self.rows * self.columns) as usize
            || tiles
                .iter()
                .any(|t| (t.width as usize, t.height as usize) != (tw, th))
        {
            return Err(invalid(
                &self.name,
                "tiles",
                format!(
                    "stitching needs {} images of {tw}×{th} px",
                    self.rows * self.columns
                ),
            ));
        }
        let mut pixels = vec![0u8; w * h * 4];
        for (i, tile) in tiles.iter().enumerate() {
            let (row, col) = (i / self.columns as usize, i % self.columns as usize);
            for y in 0..th {
                let src = &tile.pixels[y * tw * 4..(y + 1) * tw * 4];
                let start = ((row * th + y) * w + col * tw) * 4;
                pixels[start..start + tw * 4].copy_from_slice(src);
            }
        }
        RgbaImage::new(w as u32, h as u32, pixels)
    }

    /// A render of the whole virtual canvas with the bezel strips cut out: what the screens
    /// together show, the same size as [`stitch`](Self::stitch)'s result.
    pub fn without_bezels(&self, full: &RgbaImage) -> Result<RgbaImage, VizError> {
        let canvas = self.canvas();
        if (full.width, full.height) != (canvas.width_px, canvas.height_px) {
            return Err(invalid(
                &self.name,
                "image",
                format!(
                    "{}×{} px is not the wall's canvas of {}×{} px",
                    full.width, full.height, canvas.width_px, canvas.height_px
                ),
            ));
        }
        let tiles = (0..self.rows)
            .flat_map(|row| (0..self.columns).map(move |col| [row, col]))
            .map(|tile| full.crop(self.viewport(tile)))
            .collect::<Result<Vec<_>, _>>()?;
        self.stitch(&tiles)
    }
}
