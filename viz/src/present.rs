//! How a wall node shows its tiles, in two phases: drawn before the node tells the wall it is
//! ready, shown when the wall's barrier releases the frame. Headless, showing means writing PNG
//! files ([`PngTiles`]); with a display, presenting windows (`crate::window`).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::{Canvas, NodeSpec, PixelRect, Renderer, RgbaImage, Scene, VizError, WallSpec};

/// One tile a node drives: its place on the wall and its part of the wall's canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tile {
    /// `[row, column]`, counted from the top-left screen.
    pub position: [u32; 2],
    /// Its viewport of the wall's canvas.
    pub viewport: PixelRect,
}

impl Tile {
    /// `r{row}c{col}`, as in tile file names and window titles.
    pub fn label(&self) -> String {
        let [row, col] = self.position;
        format!("r{row}c{col}")
    }
}

/// The tiles of `node`, in the wall file's order.
pub(crate) fn node_tiles(wall: &WallSpec, node: &NodeSpec) -> Vec<Tile> {
    node.tiles
        .iter()
        .map(|&position| Tile {
            position,
            viewport: wall.viewport(position),
        })
        .collect()
}

/// Where a wall node's frames go. Both phases block (GPU work, files, windows), so the node
/// calls them on blocking threads.
pub(crate) trait Present: Send {
    /// The adapter drawing, for the log.
    fn adapter_summary(&self) -> String;

    /// Draws every tile of `scene` laid out on `canvas` and holds them until [`present`]:
    /// the render phase, before the node says it is ready.
    ///
    /// [`present`]: Present::present
    fn draw(&mut self, scene: &Scene<'_>, canvas: Canvas) -> Result<(), VizError>;

    /// Shows the tiles last drawn, of time step `step`, and says when they were shown.
    fn present(&mut self, step: u64) -> Result<DateTime<Utc>, VizError>;
}

/// Headless: each presented tile becomes `r{row}c{col}_s{step:05}.png` in a folder.
pub(crate) struct PngTiles {
    renderer: Renderer,
    tiles: Vec<Tile>,
    folder: PathBuf,
    drawn: Vec<RgbaImage>,
}

impl PngTiles {
    pub fn new(renderer: Renderer, tiles: Vec<Tile>, folder: PathBuf) -> Self {
        Self {
            renderer,
            tiles,
            folder,
            drawn: Vec::new(),
        }
    }
}

impl Present for PngTiles {
    fn adapter_summary(&self) -> String {
        self.renderer.adapter_summary()
    }

    fn draw(&mut self, scene: &Scene<'_>, canvas: Canvas) -> Result<(), VizError> {
        self.drawn = self
            .tiles
            .iter()
            .map(|tile| self.renderer.render_viewport(scene, canvas, tile.viewport))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn present(&mut self, step: u64) -> Result<DateTime<Utc>, VizError> {
        // The frame counts as shown when the barrier released it; the files follow.
        let presented_at = Utc::now();
        for (tile, image) in self.tiles.iter().zip(&self.drawn) {
            let path = self.folder.join(format!("{}_s{step:05}.png", tile.label()));
            image.write_png(&path)?;
        }
        Ok(presented_at)
    }
}
