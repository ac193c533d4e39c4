use isotach_core::{RegionKey, Tile};
use serde::{Deserialize, Serialize};

/// The tiles of one region at one step, one per variable. Every variable of a region lives on the
/// same worker (tiles are sharded by region), so per-region steps need no further exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TileBundle {
    /// Time step index.
    pub step: u64,
    /// Region key.
    pub region: RegionKey,
    /// One tile per variable, all on the same window.
    pub tiles: Vec<Tile>,
}

impl TileBundle {
    /// The tile of `variable`, if present.
    pub fn tile(&self, variable: &str) -> Option<&Tile> {
        self.tiles.iter().find(|t| t.variable == variable)
    }
}
