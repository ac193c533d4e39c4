use std::sync::Arc;

use std::collections::HashMap;

use isotach_connectors::{ReadOptions, Source, TileRequest, read_tiles};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::{EngineError, ErrorSlot, TileBundle};

/// Reads tiles from a [`Source`], on the worker that owns each region.
pub trait ReadTiles<'scope> {
    /// Routes each request to the worker that owns its region, reads `variables` for it
    /// (`options.concurrency` tiles at a time), and emits one bundle per request at the request's
    /// step. A failed read is recorded in `errors` (naming store, array and chunk) and stops the
    /// job.
    fn read_tiles(
        self,
        source: Arc<dyn Source>,
        variables: Arc<Vec<String>>,
        options: ReadOptions,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> ReadTiles<'scope> for Stream<'scope, u64, Vec<TileRequest>> {
    fn read_tiles(
        self,
        source: Arc<dyn Source>,
        variables: Arc<Vec<String>>,
        options: ReadOptions,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        let route = Exchange::new(|request: &TileRequest| request.region.route());
        self.unary::<CapacityContainerBuilder<Vec<TileBundle>>, _, _, _>(
            route,
            "ReadTiles",
            move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|time, data| {
                        let requests: Vec<TileRequest> = data.flat_map(|d| d.drain(..)).collect();
                        if errors.is_set() || requests.is_empty() {
                            return;
                        }
                        let reads = requests
                            .iter()
                            .flat_map(|r| variables.iter().map(|v| (v.clone(), *r)))
                            .collect();
                        let mut read: HashMap<(u64, isotach_core::RegionKey), Vec<_>> =
                            HashMap::new();
                        for tile in read_tiles(source.clone(), reads, options) {
                            match tile {
                                Ok(tile) => {
                                    read.entry((tile.step, tile.region)).or_default().push(tile)
                                }
                                Err(e) => {
                                    errors.set(EngineError::Source(e));
                                    return;
                                }
                            }
                        }
                        let mut session = output.session(&time);
                        for request in requests {
                            let Some(mut tiles) = read.remove(&(request.step, request.region))
                            else {
                                continue;
                            };
                            // Bundles list variables in the spec's order, whatever order the
                            // reads finished in.
                            tiles.sort_by_key(|t| variables.iter().position(|v| *v == t.variable));
                            session.give(TileBundle {
                                step: request.step,
                                region: request.region,
                                tiles,
                            });
                        }
                    });
                }
            },
        )
    }
}
