use std::sync::Arc;

use isotach_core::{Field, LatLonGrid, RegionKey, Tile, TileWindow};
use timely::dataflow::Stream;
use timely::dataflow::operators::Exchange;
use timely::dataflow::operators::vec::Map;

use crate::TileBundle;

/// Cuts whole fields back into region tiles, so that cell-by-cell steps after a whole-field step
/// (coarsen, regrid, objects) run sharded by region again.
///
/// ```
/// use isotach_core::LatLonGrid;
/// use isotach_engine::operators::block_regions;
/// let grid = LatLonGrid::regular(10.0); // 19 × 36
/// let regions = block_regions(&grid, [8, 16]);
/// assert_eq!(regions.len(), 3 * 3);
/// assert_eq!(regions.iter().map(|(_, w)| w.len()).sum::<usize>(), grid.len());
/// ```
pub trait SplitFields<'scope> {
    /// Turns every field named in `variables` into one single-tile bundle per region of `regions`,
    /// each sent to the worker that owns the region, at the field's step.
    fn split_fields(
        self,
        variables: Arc<Vec<String>>,
        regions: Arc<Vec<(RegionKey, TileWindow)>>,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> SplitFields<'scope> for Stream<'scope, u64, Vec<Field>> {
    fn split_fields(
        self,
        variables: Arc<Vec<String>>,
        regions: Arc<Vec<(RegionKey, TileWindow)>>,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        self.flat_map(move |field| {
            let wanted = variables.contains(&field.variable);
            let regions = regions.clone();
            wanted
                .then(|| {
                    regions
                        .iter()
                        .map(|&(region, window)| TileBundle {
                            step: field.step,
                            region,
                            tiles: vec![tile_of(&field, region, window)],
                        })
                        .collect::<Vec<_>>()
                })
                .into_iter()
                .flatten()
        })
        .exchange(|bundle: &TileBundle| bundle.region.route())
    }
}

fn tile_of(field: &Field, region: RegionKey, window: TileWindow) -> Tile {
    let nlon = field.grid.lon.len();
    let mut values = Vec::with_capacity(window.len());
    for row in window.row0..window.row0 + window.rows {
        let start = row * nlon + window.col0;
        values.extend_from_slice(&field.values[start..start + window.cols]);
    }
    Tile::on_grid(
        &field.variable,
        field.units.clone(),
        (field.step, region, window),
        &field.grid,
        values,
    )
}

/// The grid cut into blocks of at most `block = [rows, cols]` cells, row-major, keyed by block
/// position.
pub fn block_regions(grid: &LatLonGrid, block: [usize; 2]) -> Vec<(RegionKey, TileWindow)> {
    let (rows, cols) = grid.shape();
    let [block_rows, block_cols] = [block[0].max(1), block[1].max(1)];
    let mut regions = Vec::new();
    for (r, row0) in (0..rows).step_by(block_rows).enumerate() {
        for (c, col0) in (0..cols).step_by(block_cols).enumerate() {
            regions.push((
                RegionKey {
                    row: r as u32,
                    col: c as u32,
                },
                TileWindow {
                    row0,
                    rows: block_rows.min(rows - row0),
                    col0,
                    cols: block_cols.min(cols - col0),
                },
            ));
        }
    }
    regions
}
