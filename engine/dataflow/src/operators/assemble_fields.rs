use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use isotach_core::{Field, LatLonGrid};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::{Capability, Operator};

use crate::{EngineError, ErrorSlot, TileBundle};

/// What to assemble: the variables drawn, on which grid, at which instants.
#[derive(Debug, Clone)]
pub struct FieldPlan {
    /// The grid of every field.
    pub grid: Arc<LatLonGrid>,
    /// The instant of every step of the store (indexed by step).
    pub times: Arc<Vec<DateTime<Utc>>>,
    /// (name, units, long name) of each variable to assemble.
    pub variables: Vec<(String, String, String)>,
    /// How many region bundles make up one complete step.
    pub regions_per_step: usize,
}

/// Gathers the tiles of each step into whole-grid fields.
pub trait AssembleFields<'scope> {
    /// Routes bundles to a worker by step, copies each variable's tiles into its grid, and emits the
    /// fields of step `t` only when the frontier has passed `t`: every tile of the step, from every
    /// worker and process, has arrived. A step missing tiles is an error, never a silent hole.
    fn assemble_fields(
        self,
        plan: Arc<FieldPlan>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<Field>>;
}

struct Pending {
    capability: Capability<u64>,
    values: Vec<Vec<f32>>,
    bundles: usize,
}

impl<'scope> AssembleFields<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn assemble_fields(
        self,
        plan: Arc<FieldPlan>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<Field>> {
        let route = Exchange::new(|bundle: &TileBundle| bundle.step);
        self.unary_frontier::<CapacityContainerBuilder<Vec<Field>>, _, _, _>(
            route,
            "AssembleFields",
            move |_, _| {
                let mut pending: BTreeMap<u64, Pending> = BTreeMap::new();
                let cells = plan.grid.len();
                let nlon = plan.grid.lon.len();
                move |(input, frontier), output| {
                    input.for_each_stamp(|time, data| {
                        let Some(capability) = time.retain_least(output.output_index()) else {
                            return;
                        };
                        for bundle in data.flat_map(|d| d.drain(..)) {
                            let entry = pending.entry(bundle.step).or_insert_with(|| Pending {
                                capability: capability.clone(),
                                values: plan
                                    .variables
                                    .iter()
                                    .map(|_| vec![f32::NAN; cells])
                                    .collect(),
                                bundles: 0,
                            });
                            entry.bundles += 1;
                            for ((name, _, _), values) in
                                plan.variables.iter().zip(entry.values.iter_mut())
                            {
                                let Some(tile) = bundle.tile(name) else {
                                    continue;
                                };
                                let w = tile.window;
                                for (r, row) in
                                    tile.values.as_slice().chunks_exact(w.cols).enumerate()
                                {
                                    let start = (w.row0 + r) * nlon + w.col0;
                                    values[start..start + w.cols].copy_from_slice(row);
                                }
                            }
                        }
                    });
                    while let Some((&step, _)) = pending.first_key_value() {
                        if frontier.less_equal(&step) {
                            break;
                        }
                        let Some((_, done)) = pending.pop_first() else {
                            break;
                        };
                        if done.bundles != plan.regions_per_step {
                            errors.set(EngineError::Plan(format!(
                                "step {step} completed with {} of {} regions",
                                done.bundles, plan.regions_per_step
                            )));
                            continue;
                        }
                        let time = plan.times.get(step as usize).copied().unwrap_or_default();
                        let mut session = output.session(&done.capability);
                        for ((name, units, long_name), values) in
                            plan.variables.iter().zip(done.values)
                        {
                            session.give(Field {
                                variable: name.clone(),
                                units: units.clone(),
                                long_name: long_name.clone(),
                                step,
                                time,
                                grid: plan.grid.clone(),
                                values,
                            });
                        }
                    }
                }
            },
        )
    }
}
