//! A box of a source chosen by coordinate values, seen as a source of its own: the engine plans
//! and assembles on the selected grid, and every read maps back to the store's indices (two
//! column runs when the box crosses the seam of the stored longitudes).

use std::collections::BTreeSet;
use std::sync::Arc;

use isotach_core::{DatasetInfo, GridSelection, RegionKey, Tile, TileWindow};

use crate::{ConnectorError, Result, Source, TileRequest};

/// The part of `inner` inside a latitude/longitude box.
pub struct SelectedSource {
    inner: Arc<dyn Source>,
    selection: GridSelection,
    info: DatasetInfo,
}

impl std::fmt::Debug for SelectedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectedSource")
            .field("uri", &self.info.uri)
            .field("rows", &self.selection.rows)
            .field("columns", &self.selection.columns)
            .finish_non_exhaustive()
    }
}

impl SelectedSource {
    /// Selects `lat = [south, north]`, `lon = [west, east]` of `inner` (see
    /// [`isotach_core::LatLonGrid::select`]).
    pub fn new(inner: Arc<dyn Source>, lat: [f64; 2], lon: [f64; 2]) -> Result<Self> {
        let described = inner.describe();
        let selection = described
            .grid
            .select(lat, lon)
            .map_err(|e| ConnectorError::Metadata {
                uri: described.uri.clone(),
                array: "lat/lon".into(),
                message: e.to_string(),
            })?;
        let mut info = described.clone();
        info.grid = selection.grid.clone();
        for variable in &mut info.variables {
            if let [.., rows, cols] = variable.shape.as_mut_slice()
                && variable
                    .dims
                    .ends_with(&["lat".to_owned(), "lon".to_owned()])
            {
                *rows = selection.grid.lat.len() as u64;
                *cols = selection.grid.lon.len() as u64;
            }
        }
        Ok(Self {
            inner,
            selection,
            info,
        })
    }

    /// Where each column run starts in the selected grid.
    fn run_offsets(&self) -> Vec<usize> {
        let mut offset = 0;
        self.selection
            .columns
            .iter()
            .map(|run| {
                let here = offset;
                offset += run.len();
                here
            })
            .collect()
    }
}

impl Source for SelectedSource {
    fn describe(&self) -> &DatasetInfo {
        &self.info
    }

    fn regions(&self, variable: &str) -> Result<Vec<(RegionKey, TileWindow)>> {
        let rows = &self.selection.rows;
        let offsets = self.run_offsets();
        let mut windows = Vec::new();
        for (_, w) in self.inner.regions(variable)? {
            let r0 = w.row0.max(rows.start);
            let r1 = (w.row0 + w.rows).min(rows.end);
            if r0 >= r1 {
                continue;
            }
            for (run, offset) in self.selection.columns.iter().zip(&offsets) {
                let c0 = w.col0.max(run.start);
                let c1 = (w.col0 + w.cols).min(run.end);
                if c0 < c1 {
                    windows.push(TileWindow {
                        row0: r0 - rows.start,
                        rows: r1 - r0,
                        col0: offset + (c0 - run.start),
                        cols: c1 - c0,
                    });
                }
            }
        }
        // Keys are block indices on the selected grid, so they stay unique when one stored
        // chunk is cut in two by the seam.
        let row_starts: Vec<usize> = windows
            .iter()
            .map(|w| w.row0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let col_starts: Vec<usize> = windows
            .iter()
            .map(|w| w.col0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut regions: Vec<(RegionKey, TileWindow)> = windows
            .into_iter()
            .map(|w| {
                let key = RegionKey {
                    row: row_starts.partition_point(|s| *s < w.row0) as u32,
                    col: col_starts.partition_point(|s| *s < w.col0) as u32,
                };
                (key, w)
            })
            .collect();
        regions.sort_by_key(|(key, _)| *key);
        Ok(regions)
    }

    fn offer_cache_bytes(&self, bytes: u64) -> u64 {
        self.inner.offer_cache_bytes(bytes)
    }

    fn read_tile(&self, variable: &str, request: &TileRequest) -> Result<Tile> {
        let w = request.window;
        let grid = &self.info.grid;
        let (nrows, ncols) = grid.shape();
        if w.is_empty() || w.row0 + w.rows > nrows || w.col0 + w.cols > ncols {
            return Err(ConnectorError::Metadata {
                uri: self.info.uri.clone(),
                array: variable.to_owned(),
                message: format!("window {w:?} is outside the selected {nrows}×{ncols} grid"),
            });
        }
        let offsets = self.run_offsets();
        let levels = self
            .info
            .vertical_axis_of(variable)
            .map_or(1, |axis| axis.values.len());
        let wrong_length = |piece: TileWindow, got: usize| ConnectorError::Metadata {
            uri: self.info.uri.clone(),
            array: variable.to_owned(),
            message: format!(
                "a tile of {piece:?} over {levels} level(s) came back with {got} values"
            ),
        };
        // A window within one column run is one window of the store: its tile as read, values
        // untouched (a slice of a cached chunk stays one), on the selected grid.
        if let Some((run, offset)) = self
            .selection
            .columns
            .iter()
            .zip(&offsets)
            .find(|(run, offset)| **offset <= w.col0 && w.col0 + w.cols <= **offset + run.len())
        {
            let piece = TileWindow {
                row0: w.row0 + self.selection.rows.start,
                rows: w.rows,
                col0: run.start + (w.col0 - offset),
                cols: w.cols,
            };
            let inner = self.inner.read_tile(
                variable,
                &TileRequest {
                    step: request.step,
                    region: request.region,
                    window: piece,
                },
            )?;
            if inner.values.len() != levels * w.len() {
                return Err(wrong_length(piece, inner.values.len()));
            }
            let mut tile = Tile::on_grid(
                variable,
                inner.units,
                (request.step, request.region, w),
                grid,
                Vec::new(),
            );
            tile.values = inner.values;
            return Ok(tile);
        }
        let mut values = vec![f32::NAN; levels * w.len()];
        let mut units = String::new();
        for (run, offset) in self.selection.columns.iter().zip(&offsets) {
            let c0 = w.col0.max(*offset);
            let c1 = (w.col0 + w.cols).min(offset + run.len());
            if c0 >= c1 {
                continue;
            }
            let piece = TileWindow {
                row0: w.row0 + self.selection.rows.start,
                rows: w.rows,
                col0: run.start + (c0 - offset),
                cols: c1 - c0,
            };
            let tile = self.inner.read_tile(
                variable,
                &TileRequest {
                    step: request.step,
                    region: request.region,
                    window: piece,
                },
            )?;
            units = tile.units;
            let src = tile.values.as_slice();
            if src.len() != levels * piece.len() {
                return Err(wrong_length(piece, src.len()));
            }
            // Levels are outermost: each level is a rows × cols plane.
            for level in 0..levels {
                let (dst_plane, src_plane) = (level * w.len(), level * piece.len());
                for r in 0..w.rows {
                    let dst = dst_plane + r * w.cols + (c0 - w.col0);
                    let src_row = src_plane + r * piece.cols;
                    values[dst..dst + piece.cols]
                        .copy_from_slice(&src[src_row..src_row + piece.cols]);
                }
            }
        }
        Ok(Tile::on_grid(
            variable,
            units,
            (request.step, request.region, w),
            grid,
            values,
        ))
    }
}
