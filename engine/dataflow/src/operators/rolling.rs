use std::collections::{BTreeMap, HashMap, VecDeque};

use isotach_core::{RegionKey, Tile, TileValues};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, Operator};

use crate::{EngineError, ErrorSlot, TileBundle};

/// The trailing mean over the last `window` steps of each cell, like xarray's
/// `da.rolling(time=window).mean()` with its default `min_periods = window`.
///
/// ```
/// use isotach_core::{RegionKey, Tile, TileValues, TileWindow};
/// use isotach_engine::operators::{Rolling, rolling_mean_values};
/// use isotach_engine::{ErrorSlot, TileBundle};
/// use std::sync::{Arc, Mutex};
/// use timely::container::CapacityContainerBuilder;
/// use timely::dataflow::InputHandle;
/// use timely::dataflow::operators::Inspect;
///
/// // The core: the mean of one full window, NaN wherever a step is missing.
/// let a = TileValues::from_vec(vec![1.0, 2.0]);
/// let b = TileValues::from_vec(vec![3.0, f32::NAN]);
/// let mean = rolling_mean_values(&[&a, &b]).unwrap();
/// assert_eq!(mean.as_slice()[0], 2.0);
/// assert!(mean.as_slice()[1].is_nan());
///
/// // The operator: steps of one region, in order; the first `window - 1` steps are NaN.
/// let bundle = |step: u64, v: f32| {
///     let window = TileWindow { row0: 0, rows: 1, col0: 0, cols: 1 };
///     TileBundle {
///         step,
///         region: RegionKey { row: 0, col: 0 },
///         tiles: vec![Tile {
///             variable: "t".into(),
///             units: "K".into(),
///             step,
///             region: RegionKey { row: 0, col: 0 },
///             window,
///             lat_bounds: [0.0, 0.0],
///             lon_bounds: [0.0, 0.0],
///             values: TileValues::from_vec(vec![v]),
///         }],
///     }
/// };
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let out = seen.clone();
/// timely::execute_directly(move |worker| {
///     let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<TileBundle>>>::new();
///     worker.dataflow::<u64, _, _>(|scope| {
///         input
///             .to_stream(scope)
///             .rolling("t".into(), "t_mean".into(), 2, ErrorSlot::default())
///             .inspect(move |b| {
///                 let v = b.tile("t_mean").unwrap().values.as_slice()[0];
///                 out.lock().unwrap().push((b.step, v));
///             });
///     });
///     // Each step at its own timestamp (the step index).
///     for (step, v) in [(0, 1.0), (1, 2.0), (2, 4.0)] {
///         input.advance_to(step);
///         input.send(bundle(step, v));
///     }
/// });
/// let mut seen = seen.lock().unwrap().clone();
/// seen.sort_by_key(|(step, _)| *step);
/// assert!(seen[0].1.is_nan());
/// assert_eq!(seen[1], (1, 1.5));
/// assert_eq!(seen[2], (2, 3.0));
/// ```
pub trait Rolling<'scope> {
    /// Adds a tile `output` holding, per cell, the mean of `input` over the steps `t-window+1..=t`
    /// of the bundle's region, emitted at the bundle's own time `t`.
    ///
    /// Steps count in the order the region receives them (the positions of the selected time
    /// series, as in xarray on the selected data). The output is NaN for the first `window - 1`
    /// steps and wherever the window holds a NaN. Each region keeps only its last `window - 1`
    /// input tiles, plus the bundles of steps still in flight. `window == 0` records an error and
    /// passes the bundles through unchanged.
    fn rolling(
        self,
        input: String,
        output: String,
        window: usize,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> Rolling<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn rolling(
        self,
        input: String,
        output: String,
        window: usize,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        if window == 0 {
            errors.set(EngineError::Plan(format!(
                "rolling {input:?} -> {output:?}: window must be at least 1 step, got 0"
            )));
            return self.map(|bundle| bundle);
        }
        let name = format!("Rolling({input} -> {output}, {window})");
        per_region_in_step_order(
            self,
            &name,
            errors,
            move |past: &mut VecDeque<TileValues>, bundle: &TileBundle| {
                let tile = input_tile(bundle, &input, "rolling")?;
                if let Some(previous) = past.back()
                    && previous.len() != tile.values.len()
                {
                    return Err(format!(
                        "rolling {input:?}: tile has {} values, earlier steps of the region had {}",
                        tile.values.len(),
                        previous.len()
                    ));
                }
                let values = if past.len() + 1 < window {
                    TileValues::from_vec(vec![f32::NAN; tile.values.len()])
                } else {
                    let steps: Vec<&TileValues> =
                        past.iter().chain(std::iter::once(&tile.values)).collect();
                    rolling_mean_values(&steps)?
                };
                // Arrow buffers are reference counted: keeping the past costs no copy.
                past.push_back(tile.values.clone());
                while past.len() >= window {
                    past.pop_front();
                }
                Ok(derived_tile(tile, &output, tile.units.clone(), values))
            },
        )
    }
}

/// The per-cell mean of `steps` (oldest first), summed in f64 in step order: NaN wherever any
/// step is NaN, as xarray's rolling mean with `min_periods` equal to the window.
pub fn rolling_mean_values(steps: &[&TileValues]) -> Result<TileValues, String> {
    let first = steps.first().ok_or("rolling mean of no steps")?;
    if let Some(other) = steps.iter().find(|s| s.len() != first.len()) {
        return Err(format!(
            "rolling window steps have {} and {} values",
            first.len(),
            other.len()
        ));
    }
    let mut sums = vec![0.0f64; first.len()];
    for step in steps {
        for (sum, v) in sums.iter_mut().zip(step.as_slice()) {
            *sum += f64::from(*v);
        }
    }
    let n = steps.len() as f64;
    Ok(TileValues::from_vec(
        sums.into_iter().map(|s| (s / n) as f32).collect(),
    ))
}

/// The tile `name` of `bundle`, or an error naming the operator and the variable.
pub(crate) fn input_tile<'a>(
    bundle: &'a TileBundle,
    name: &str,
    operator: &str,
) -> Result<&'a Tile, String> {
    bundle
        .tile(name)
        .ok_or_else(|| format!("{operator}: input {name:?} missing from the region's tiles"))
}

/// A tile like `like` (same step, region and window) named `variable`, holding `values`.
pub(crate) fn derived_tile(like: &Tile, variable: &str, units: String, values: TileValues) -> Tile {
    Tile {
        variable: variable.to_owned(),
        units,
        values,
        ..like.clone()
    }
}

/// The error of an operator on one bundle.
pub(crate) fn bundle_error(bundle: &TileBundle, message: String) -> EngineError {
    EngineError::Operator {
        step: bundle.step,
        region: format!("{},{}", bundle.region.row, bundle.region.col),
        message,
    }
}

/// Bundles of one timestamp waiting for the frontier to pass it.
struct Stashed {
    capability: Capability<u64>,
    bundles: Vec<TileBundle>,
}

/// Runs `logic` on every bundle with the state of its region, each region's steps in time order,
/// and adds the tile it returns to the bundle (an error is recorded in `errors` and the bundle
/// passes on without it).
///
/// Bundles are routed by region (the same route as `read_tiles`, so nothing moves when they are
/// already sharded) and held, with a capability for their time, until the input frontier has
/// passed that time: then no earlier step of any region can still arrive, so the stashed times are
/// processed in ascending order and emitted at their own time. Memory: the bundles of the steps in
/// flight plus one `S` per region. A region seen twice at one time, or at a time before one it has
/// already processed, is an error.
pub(crate) fn per_region_in_step_order<'scope, S, F>(
    stream: Stream<'scope, u64, Vec<TileBundle>>,
    name: &str,
    errors: ErrorSlot,
    mut logic: F,
) -> Stream<'scope, u64, Vec<TileBundle>>
where
    S: Default + 'static,
    F: FnMut(&mut S, &TileBundle) -> Result<Tile, String> + 'static,
{
    let route = Exchange::new(|bundle: &TileBundle| bundle.region.route());
    stream.unary_frontier::<CapacityContainerBuilder<Vec<TileBundle>>, _, _, _>(
        route,
        name,
        move |_, _| {
            let mut stash: BTreeMap<u64, Stashed> = BTreeMap::new();
            // Per region: the last time processed, and the operator's state.
            let mut regions: HashMap<RegionKey, (Option<u64>, S)> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|time, data| {
                    let Some(capability) = time.retain_least(output.output_index()) else {
                        return;
                    };
                    let entry = stash.entry(*capability.time()).or_insert_with(|| Stashed {
                        capability: capability.clone(),
                        bundles: Vec::new(),
                    });
                    entry.bundles.extend(data.flat_map(|d| d.drain(..)));
                });
                while let Some((&time, _)) = stash.first_key_value() {
                    if frontier.less_equal(&time) {
                        break;
                    }
                    let Some((_, stashed)) = stash.pop_first() else {
                        break;
                    };
                    let mut session = output.session(&stashed.capability);
                    for mut bundle in stashed.bundles {
                        let (last, state) = regions.entry(bundle.region).or_default();
                        let result = match *last {
                            Some(last) if last >= time => Err(format!(
                                "region seen again at time {time} after time {last} was processed \
                                 (each region must arrive once per step)"
                            )),
                            _ => {
                                *last = Some(time);
                                logic(state, &bundle)
                            }
                        };
                        match result {
                            Ok(tile) => bundle.tiles.push(tile),
                            Err(message) => errors.set(bundle_error(&bundle, message)),
                        }
                        session.give(bundle);
                    }
                }
            }
        },
    )
}
