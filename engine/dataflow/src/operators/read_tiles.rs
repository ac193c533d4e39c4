use std::sync::Arc;

use isotach_connectors::{Source, TileRequest};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::{EngineError, ErrorSlot, TileBundle};

/// Reads tiles from a [`Source`], on the worker that owns each region.
pub trait ReadTiles<'scope> {
    /// Routes each request to the worker that owns its region, reads `variables` for it, and emits
    /// one bundle per request at the request's step. A failed read is recorded in `errors` (naming
    /// store, array and chunk) and stops the job.
    fn read_tiles(
        self,
        source: Arc<dyn Source>,
        variables: Arc<Vec<String>>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> ReadTiles<'scope> for Stream<'scope, u64, Vec<TileRequest>> {
    fn read_tiles(
        self,
        source: Arc<dyn Source>,
        variables: Arc<Vec<String>>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        let route = Exchange::new(|request: &TileRequest| request.region.route());
        self.unary::<CapacityContainerBuilder<Vec<TileBundle>>, _, _, _>(
            route,
            "ReadTiles",
            move |_, _| {
                move |input, output| {
                    input.for_each_stamp(|time, data| {
                        let mut session = output.session(&time);
                        for request in data.flat_map(|d| d.drain(..)) {
                            if errors.is_set() {
                                continue;
                            }
                            let tiles: Result<Vec<_>, _> = variables
                                .iter()
                                .map(|v| source.read_tile(v, &request))
                                .collect();
                            match tiles {
                                Ok(tiles) => session.give(TileBundle {
                                    step: request.step,
                                    region: request.region,
                                    tiles,
                                }),
                                Err(e) => errors.set(EngineError::Source(e)),
                            }
                        }
                    });
                }
            },
        )
    }
}
