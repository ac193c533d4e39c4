use isotach_core::{DatasetInfo, RegionKey, Tile, TileWindow};

use crate::Result;

/// One tile to read: a variable, a step, a chunk-aligned block of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TileRequest {
    /// Time step index.
    pub step: u64,
    /// Block key (shard key).
    pub region: RegionKey,
    /// Index window of the block.
    pub window: TileWindow,
}

/// Something gridded data can be read from. Implementations are shared by every dataflow worker of
/// a process, so they are `Send + Sync` and cache what they open.
pub trait Source: Send + Sync {
    /// What the dataset holds.
    fn describe(&self) -> &DatasetInfo;

    /// The chunk-aligned blocks of `variable` over the grid (the same for every step).
    fn regions(&self, variable: &str) -> Result<Vec<(RegionKey, TileWindow)>>;

    /// Reads one tile of `variable`. Missing chunks read as NaN; corrupt ones are errors naming the
    /// chunk.
    fn read_tile(&self, variable: &str, request: &TileRequest) -> Result<Tile>;
}
