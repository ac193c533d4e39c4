//! Connected objects in space and time (CONNECT-style segmentation of atmospheric rivers and IVT
//! objects), with labels maintained incrementally in differential dataflow, and the object
//! catalog.
//!
//! # Semantics
//!
//! **Input.** A stream of whole-grid fields where every field of step `t` travels at timestamp
//! `t` and all fields of one step are on one worker. The operator reads the field named
//! [`ObjectsConfig::input`] and, for the atmospheric-river criterion, the IVT components named by
//! [`ObjectsConfig::wind`] at the same step. A step is segmented once the input frontier has passed
//! it.
//!
//! **Space.** Cells with `value >= threshold` are inside (NaN never is). Inside cells are joined
//! with their 8 neighbours, across the seam of the longitudes when the grid is global in longitude
//! ([`isotach_core::LatLonGrid::is_global_in_lon`]), never across a pole. Each connected
//! component's area is the sum of its cell areas on a sphere of radius 6371 km (`R² Δλ (sin φn −
//! sin φs)`, edges halfway to the neighbouring rows, clipped at the poles). Components smaller than
//! [`ObjectsConfig::min_area_km2`] are dropped before anything else: they neither form objects nor
//! bridge two objects in time. The kept components of a step are numbered 0, 1, … in raster order
//! of their first cell (row-major as stored).
//!
//! **Time.** A node is a kept (step, component). Components at consecutive steps `t` and `t + 1`
//! are linked when they share at least one cell. Objects are the connected components of this
//! graph: a split keeps one object, and two objects that touch later merge into one.
//!
//! **Ids.** Nodes are numbered densely in (step, component) order over the steps processed: the
//! node of component `c` at step `t` is `1 + (kept components at all earlier steps) + c`. An
//! object's id is the number of its earliest node (the least (step, component)), so ids are
//! stable through time and the same for any number of workers or processes. Numbers and ids are
//! at most [`MAX_OBJECT_ID`] = 2²⁴, so that the label field (f32) holds them exactly; a run that
//! would exceed it records an error.
//!
//! **Incremental labels.** The per-step components and the overlap edges enter differential
//! collections at their step, and labels are the minimum node reachable (label propagation in an
//! iterative scope, [`propagate`]), so each new step updates the labels incrementally. The label
//! field of step `t` is emitted at timestamp `t` as soon as the labels' frontier has passed `t`,
//! with the labels as of step `t`: the graph restricted to steps `≤ t`. When two objects merge at
//! step `m`, frames from `m` on carry the earlier object's id, while frames before `m` keep the
//! later object's own id (they were final when emitted). The catalog is a differential collection
//! and does follow merges: the records of the merged object are retracted and re-inserted with
//! the surviving id at `m`. [`node_to_object`] maps any label written before a merge to the final
//! id (a label is always some record's `node`).
//!
//! **Overlap edges.** Step `t`'s components, as runs of cells along rows, are sent to the worker
//! owning the pair `(t − 1, t)` and to the one owning `(t, t + 1)`; a pair's edges are computed
//! when both halves are there. Memory thus holds only the steps in flight, where a differential
//! join keyed by cell would keep every inside cell of every step in its arrangements.
//!
//! **Catalog.** One [`ObjectRecord`] per node, with the object's id as of the latest step
//! processed, routed to worker 0 so that process 0 holds the whole catalog; keep the records with a
//! positive net multiplicity. Durations are known only at the end: [`finish_catalog`] drops
//! objects spanning fewer than [`ObjectsConfig::min_duration_steps`] distinct steps, and
//! [`catalog_table`] makes the Arrow table. Duration does not filter the label field.
//!
//! **Atmospheric rivers** (in the spirit of Guan & Waliser 2015), per object and step, when
//! [`ObjectsConfig::criterion`] is set: length (the great-circle distance between the two cells
//! farthest apart along the principal axis of the area-weighted cell positions in the plane
//! tangent at the centroid, and at least `sqrt(area)`) at least `min_length_km`; aspect
//! `length / width` with `width = area / length` at least `min_aspect`; when `require_poleward`,
//! the area-weighted mean meridional IVT points poleward (`v > 0` when the centroid is in the
//! northern hemisphere or on the equator, `v < 0` in the southern); and at least `min_coherence` of
//! the cells (by count, cells missing a component ignored) flow within 45° of the direction of the
//! area-weighted mean IVT vector. [`ObjectRecord::is_ar`] is the verdict at that step; an object
//! is an atmospheric river when at least one of its steps passes ([`ar_object_ids`]), and fails
//! when none does.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use differential_dataflow::algorithms::graphs::propagate::propagate;
use differential_dataflow::{AsCollection, VecCollection};
use isotach_core::{Field, LatLonGrid};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, Exchange as _, Operator};

use crate::{EngineError, ErrorSlot};

mod catalog;
mod spatial;

pub use catalog::{ObjectRecord, ar_object_ids, catalog_table, finish_catalog, node_to_object};

/// The largest object id (and node number): 2²⁴, the largest integer up to which every integer is
/// exactly representable in an `f32` label field.
pub const MAX_OBJECT_ID: u64 = 1 << 24;

/// The geometric atmospheric-river test, in the spirit of Guan & Waliser (2015): the spec's
/// settings, used as they are; see the module documentation for the exact definitions.
pub use isotach_core::ArCriterionSpec as ArCriterion;

/// What the objects operator segments and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectsConfig {
    /// The variable segmented, for example IVT.
    pub input: String,
    /// The name of the label field.
    pub output: String,
    /// Cells with `input >= threshold` are inside objects.
    pub threshold: f32,
    /// Components smaller than this at a step are dropped at that step, km².
    pub min_area_km2: f64,
    /// Objects spanning fewer distinct steps are dropped from the final catalog
    /// ([`finish_catalog`]).
    pub min_duration_steps: u32,
    /// The atmospheric-river test, if any.
    pub criterion: Option<ArCriterion>,
    /// Names of the eastward and northward IVT components, needed by a criterion that tests
    /// transport.
    pub wind: Option<(String, String)>,
}

impl ObjectsConfig {
    /// Checks the configuration, naming the offending setting and its value.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |what: String| {
            Err(EngineError::Plan(format!(
                "objects {:?}: {what}",
                self.output
            )))
        };
        if self.input.is_empty() || self.output.is_empty() {
            return bad(format!(
                "input {:?} and output {:?} must both be named",
                self.input, self.output
            ));
        }
        if self.output == self.input {
            return bad(format!("output must differ from input {:?}", self.input));
        }
        if !self.threshold.is_finite() {
            return bad(format!(
                "threshold {} is not a finite number",
                self.threshold
            ));
        }
        if !(self.min_area_km2.is_finite() && self.min_area_km2 >= 0.0) {
            return bad(format!(
                "min_area_km2 {} must be a finite number >= 0",
                self.min_area_km2
            ));
        }
        if let Some(c) = &self.criterion {
            for (name, value) in [
                ("min_length_km", c.min_length_km),
                ("min_aspect", c.min_aspect),
                ("min_coherence", c.min_coherence),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return bad(format!(
                        "criterion.{name} {value} must be a finite number >= 0"
                    ));
                }
            }
            if c.min_coherence > 1.0 {
                return bad(format!(
                    "criterion.min_coherence {} is a fraction and must be at most 1",
                    c.min_coherence
                ));
            }
            if c.needs_wind() && self.wind.is_none() {
                return bad(
                    "the atmospheric-river criterion tests transport and needs wind = [eastward, \
                     northward] IVT components"
                        .to_owned(),
                );
            }
        }
        Ok(())
    }
}

/// Segments a field into objects connected in space and time.
///
/// ```
/// use std::sync::Arc;
/// use chrono::{DateTime, Utc};
/// use isotach_core::{Field, LatLonGrid};
/// use isotach_engine::ErrorSlot;
/// use isotach_engine::operators::{ObjectRecord, Objects, ObjectsConfig, finish_catalog};
/// use timely::dataflow::InputHandleVec;
/// use timely::dataflow::operators::capture::{Capture, Event};
///
/// let grid = Arc::new(LatLonGrid { lat: vec![10.0, 0.0], lon: vec![0.0, 1.0, 2.0, 3.0] });
/// let field = move |step: u64, values: Vec<f32>| Field {
///     variable: "ivt".into(), units: "kg m-1 s-1".into(), long_name: "IVT".into(),
///     step, time: DateTime::<Utc>::UNIX_EPOCH, grid: grid.clone(), values,
/// };
/// let config = Arc::new(ObjectsConfig {
///     input: "ivt".into(), output: "ar".into(), threshold: 250.0, min_area_km2: 0.0,
///     min_duration_steps: 1, criterion: None, wind: None,
/// });
/// let (labels, catalog) = timely::example(move |scope| {
///     let mut input = InputHandleVec::<u64, Field>::new();
///     let (labels, catalog) = input.to_stream(scope).objects(config, ErrorSlot::default());
///     input.send(field(0, vec![300.0, 0.0, 0.0, 0.0, /**/ 0.0, 0.0, 0.0, 0.0]));
///     input.advance_to(1);
///     input.send(field(1, vec![300.0, 300.0, 0.0, 0.0, /**/ 0.0, 0.0, 0.0, 400.0]));
///     (labels.capture(), catalog.inner.capture())
/// });
/// let mut labels: Vec<Field> = labels.into_iter()
///     .flat_map(|e| if let Event::Messages(_, d) = e { d } else { Vec::new() }).collect();
/// labels.sort_by_key(|f| f.step);
/// assert_eq!(labels[1].values[..2], [1.0, 1.0]); // the object born at step 0 keeps id 1
/// assert_eq!(labels[1].values[7], 3.0); // node 3: the second component of step 1
/// let records: Vec<ObjectRecord> = catalog.into_iter()
///     .flat_map(|e| if let Event::Messages(_, d) = e { d } else { Vec::new() })
///     .filter(|(_, _, diff)| *diff > 0).map(|(r, _, _)| r).collect();
/// let ids: Vec<(u64, u64)> = finish_catalog(records, 2).iter().map(|r| (r.id, r.step)).collect();
/// assert_eq!(ids, vec![(1, 0), (1, 1)]);
/// ```
pub trait Objects<'scope> {
    /// Returns the label field of each step (at the step's timestamp, on the worker that holds the
    /// step's fields) and the catalog records as a differential collection on worker 0. Errors
    /// (a missing input field, mismatched grids, ids beyond [`MAX_OBJECT_ID`]) go to `errors`.
    fn objects(
        self,
        config: Arc<ObjectsConfig>,
        errors: ErrorSlot,
    ) -> (
        Stream<'scope, u64, Vec<Field>>,
        VecCollection<'scope, u64, ObjectRecord, isize>,
    );
}

/// A node of the temporal graph: (step, component in raster order).
type Node = (u64, u32);

/// Runs of a step's labels: `(pair key, step, cells in the grid, runs)`, where the pair key is
/// the later step of the pair of consecutive steps the runs are sent to.
type Half = (u64, u64, u64, Vec<(u32, u32, u32)>);

/// A label update routed to the worker holding its step: `(step, component, id, worker, diff)`.
type LabelUpdate = (u64, u32, u64, u64, isize);

/// One segmented step, kept on the worker that holds the step's fields.
#[derive(Debug)]
struct Segmented {
    step: u64,
    worker: u64,
    /// `None` when the step could not be segmented (the error is recorded).
    frame: Option<Frame>,
    ncells: u64,
    runs: Vec<(u32, u32, u32)>,
    /// One record per kept component, without id and node numbers.
    records: Vec<ObjectRecord>,
}

#[derive(Debug)]
struct Frame {
    time: DateTime<Utc>,
    grid: Arc<LatLonGrid>,
    raster: Vec<u32>,
}

fn blank_record(step: u64, time: DateTime<Utc>) -> ObjectRecord {
    ObjectRecord {
        id: 0,
        node: 0,
        step,
        time,
        centroid_lat: 0.0,
        centroid_lon: 0.0,
        area_km2: 0.0,
        max_value: 0.0,
        mean_value: 0.0,
        lat_min: 0.0,
        lat_max: 0.0,
        lon_min: 0.0,
        lon_max: 0.0,
        length_km: 0.0,
        width_km: 0.0,
        orientation_deg: 0.0,
        is_ar: None,
    }
}

fn step_error(step: u64, message: String) -> EngineError {
    EngineError::Operator {
        step,
        region: "all".to_owned(),
        message,
    }
}

/// Segments the fields of one step.
fn segment_step(
    config: &ObjectsConfig,
    step: u64,
    worker: u64,
    fields: Vec<Field>,
) -> Result<Segmented, EngineError> {
    let take =
        |name: &str| -> Result<&Field, EngineError> {
            let mut found = fields.iter().filter(|f| f.variable == name);
            let field = found.next().ok_or_else(|| {
            step_error(
                step,
                format!(
                    "objects {:?}: field {name:?} is missing (the fields of a step must be on one \
                     worker; present: {:?})",
                    config.output,
                    fields.iter().map(|f| f.variable.as_str()).collect::<Vec<_>>()
                ),
            )
        })?;
            if found.next().is_some() {
                return Err(step_error(
                    step,
                    format!("objects {:?}: field {name:?} arrived twice", config.output),
                ));
            }
            if field.step != step {
                return Err(step_error(
                    step,
                    format!(
                        "objects {:?}: field {name:?} of step {} travels at timestamp {step}",
                        config.output, field.step
                    ),
                ));
            }
            if field.values.len() != field.grid.len() {
                return Err(step_error(
                    step,
                    format!(
                        "objects {:?}: field {name:?} has {} values for a {:?} grid",
                        config.output,
                        field.values.len(),
                        field.grid.shape()
                    ),
                ));
            }
            Ok(field)
        };
    let field = take(&config.input)?;
    let grid = field.grid.clone();
    if grid.len() >= u32::MAX as usize {
        return Err(step_error(
            step,
            format!(
                "objects {:?}: a {:?} grid has too many cells to label (at most {})",
                config.output,
                grid.shape(),
                u32::MAX - 1
            ),
        ));
    }
    let needs_wind = config.criterion.is_some_and(|c| c.needs_wind());
    let wind = match (&config.wind, needs_wind) {
        (Some((u, v)), true) => {
            let (u, v) = (take(u)?, take(v)?);
            for c in [u, v] {
                if *c.grid != *grid {
                    return Err(step_error(
                        step,
                        format!(
                            "objects {:?}: {:?} is on a {:?} grid, {:?} on a {:?} grid",
                            config.output,
                            c.variable,
                            c.grid.shape(),
                            field.variable,
                            grid.shape()
                        ),
                    ));
                }
            }
            Some((u.values.as_slice(), v.values.as_slice()))
        }
        _ => None,
    };
    let areas = spatial::row_areas_km2(&grid);
    let seg = spatial::segment(
        &grid,
        &field.values,
        config.threshold,
        config.min_area_km2,
        &areas,
    );
    let frame = spatial::LonFrame::of(&grid);
    let records = seg
        .cells
        .iter()
        .map(|cells| {
            let mut record = blank_record(step, field.time);
            spatial::describe(
                &grid,
                frame,
                &areas,
                &field.values,
                wind,
                cells,
                config.criterion.as_ref(),
                &mut record,
            );
            record
        })
        .collect();
    Ok(Segmented {
        step,
        worker,
        ncells: grid.len() as u64,
        runs: spatial::runs(&seg.raster, grid.lon.len()),
        frame: Some(Frame {
            time: field.time,
            grid,
            raster: seg.raster,
        }),
        records,
    })
}

/// Node numbers (and so ids) up to `total` must fit an f32 label exactly.
fn check_node_numbers(output: &str, step: u64, total: u64) -> Result<(), EngineError> {
    if total > MAX_OBJECT_ID {
        return Err(step_error(
            step,
            format!(
                "objects {output:?}: {total} object-steps by step {step} exceed {MAX_OBJECT_ID}, \
                 the largest id an f32 label holds exactly; raise the threshold or min_area_km2, \
                 or process fewer steps"
            ),
        ));
    }
    Ok(())
}

impl<'scope> Objects<'scope> for Stream<'scope, u64, Vec<Field>> {
    fn objects(
        self,
        config: Arc<ObjectsConfig>,
        errors: ErrorSlot,
    ) -> (
        Stream<'scope, u64, Vec<Field>>,
        VecCollection<'scope, u64, ObjectRecord, isize>,
    ) {
        let valid = match config.validate() {
            Ok(()) => true,
            Err(e) => {
                errors.set(e);
                false
            }
        };
        let worker = self.scope().index() as u64;

        let segs = {
            let config = config.clone();
            let errors = errors.clone();
            let mut wanted = vec![config.input.clone()];
            if let Some((u, v)) = &config.wind {
                wanted.extend([u.clone(), v.clone()]);
            }
            self.unary_frontier::<CapacityContainerBuilder<Vec<Rc<Segmented>>>, _, _, _>(
                Pipeline,
                "ObjectsSegment",
                move |_, _| {
                    let mut pending: BTreeMap<u64, (Capability<u64>, Vec<Field>)> = BTreeMap::new();
                    move |(input, frontier), output| {
                        input.for_each_stamp(|time, data| {
                            let Some(capability) = time.retain_least(output.output_index()) else {
                                return;
                            };
                            let step = *capability.time();
                            let entry = pending
                                .entry(step)
                                .or_insert_with(|| (capability.clone(), Vec::new()));
                            entry.1.extend(
                                data.flat_map(|d| d.drain(..))
                                    .filter(|f| wanted.contains(&f.variable)),
                            );
                        });
                        while let Some((&step, _)) = pending.first_key_value() {
                            if frontier.less_equal(&step) {
                                break;
                            }
                            let Some((_, (capability, fields))) = pending.pop_first() else {
                                break;
                            };
                            let segmented = if valid {
                                segment_step(&config, step, worker, fields)
                            } else {
                                Err(step_error(step, "invalid configuration".to_owned()))
                            };
                            // A failed step still flows on, empty, so that later steps complete.
                            let segmented = segmented.unwrap_or_else(|e| {
                                if valid {
                                    errors.set(e);
                                }
                                Segmented {
                                    step,
                                    worker,
                                    frame: None,
                                    ncells: 0,
                                    runs: Vec::new(),
                                    records: Vec::new(),
                                }
                            });
                            output.session(&capability).give(Rc::new(segmented));
                        }
                    }
                },
            )
        };

        // Node numbers: a running count of components over the steps, in step order, on worker 0.
        let offsets = {
            let errors = errors.clone();
            let output_name = config.output.clone();
            segs.clone()
                .map(|s| (s.step, s.records.len() as u64))
                .unary_frontier::<CapacityContainerBuilder<Vec<((u64, u64), u64, isize)>>, _, _, _>(
                    Exchange::new(|_: &(u64, u64)| 0),
                    "ObjectsOffsets",
                    move |_, _| {
                        let mut pending: BTreeMap<u64, (Capability<u64>, u64, usize)> =
                            BTreeMap::new();
                        let mut total: u64 = 0;
                        move |(input, frontier), output| {
                            input.for_each_stamp(|time, data| {
                                let Some(capability) = time.retain_least(output.output_index())
                                else {
                                    return;
                                };
                                for (step, count) in data.flat_map(|d| d.drain(..)) {
                                    let entry = pending
                                        .entry(step)
                                        .or_insert_with(|| (capability.delayed(&step), 0, 0));
                                    entry.1 += count;
                                    entry.2 += 1;
                                }
                            });
                            while let Some((&step, _)) = pending.first_key_value() {
                                if frontier.less_equal(&step) {
                                    break;
                                }
                                let Some((_, (capability, count, copies))) = pending.pop_first()
                                else {
                                    break;
                                };
                                if copies > 1 {
                                    errors.set(step_error(
                                        step,
                                        format!(
                                            "objects {output_name:?}: the fields of step {step} \
                                             were segmented on {copies} workers; a step's fields \
                                             must be on one worker"
                                        ),
                                    ));
                                }
                                output.session(&capability).give(((step, total), step, 1));
                                total += count;
                                if let Err(e) = check_node_numbers(&output_name, step, total) {
                                    errors.set(e);
                                }
                            }
                        }
                    },
                )
                .as_collection()
        };

        // Overlap edges between consecutive steps, both directions, at the later step.
        let edges = {
            let errors = errors.clone();
            let output_name = config.output.clone();
            segs.clone()
                .flat_map(|s| {
                    let half = |key| (key, s.step, s.ncells, s.runs.clone());
                    let mut halves = vec![half(s.step)];
                    if let Some(next) = s.step.checked_add(1) {
                        halves.push(half(next));
                    }
                    halves
                })
                .unary_frontier::<CapacityContainerBuilder<Vec<((Node, Node), u64, isize)>>, _, _, _>(
                    Exchange::new(|h: &Half| h.0),
                    "ObjectsOverlap",
                    move |_, _| {
                        type Pair = (Capability<u64>, Option<Half>, Option<Half>);
                        let mut pending: BTreeMap<u64, Pair> = BTreeMap::new();
                        move |(input, frontier), output| {
                            input.for_each_stamp(|time, data| {
                                for half in data.flat_map(|d| d.drain(..)) {
                                    let key = half.0;
                                    let entry = pending.entry(key).or_insert_with(|| {
                                        (time.delayed(&key, output.output_index()), None, None)
                                    });
                                    if half.1 == key {
                                        entry.2 = Some(half);
                                    } else {
                                        entry.1 = Some(half);
                                    }
                                }
                            });
                            let complete: Vec<u64> = pending
                                .iter()
                                .filter(|(_, (_, a, b))| a.is_some() && b.is_some())
                                .map(|(k, _)| *k)
                                .collect();
                            for key in complete {
                                let Some((capability, Some(prev), Some(next))) =
                                    pending.remove(&key)
                                else {
                                    continue;
                                };
                                // A failed step (no cells) links nothing.
                                if prev.2 != next.2 && prev.2 != 0 && next.2 != 0 {
                                    errors.set(step_error(
                                        key,
                                        format!(
                                            "objects {output_name:?}: step {key} has {} cells, \
                                             step {} has {}; the grid must not change",
                                            next.2, prev.1, prev.2
                                        ),
                                    ));
                                    continue;
                                }
                                let mut session = output.session(&capability);
                                for (a, b) in spatial::overlaps(&prev.3, &next.3) {
                                    let (a, b) = ((prev.1, a - 1), (key, b - 1));
                                    session.give(((a, b), key, 1));
                                    session.give(((b, a), key, 1));
                                }
                            }
                            pending.retain(|key, _| frontier.less_equal(key));
                        }
                    },
                )
                .as_collection()
        };

        // Node records, numbered once their step's offset is known.
        let numbered = segs
            .clone()
            .flat_map(|s| {
                s.records
                    .iter()
                    .enumerate()
                    .map(|(c, r)| ((s.step, (c as u32, s.worker, r.clone())), s.step, 1isize))
                    .collect::<Vec<_>>()
            })
            .as_collection()
            .join_map(offsets.clone(), |&step, (c, w, record), &offset| {
                let mut record = record.clone();
                record.node = offset + *c as u64 + 1;
                ((step, *c), (*w, record))
            });

        let labels = propagate(edges, numbered.clone().map(|(n, _)| (n, n)));
        let ids = labels
            .map(|(n, root): (Node, Node)| (root.0, (n, root.1)))
            .join_map(offsets, |_, &(n, c), &offset| (n, offset + c as u64 + 1));
        let placed = ids.join_map(numbered, |n: &Node, &id, (w, record)| {
            let mut record = record.clone();
            record.id = id;
            (*n, *w, record)
        });

        let catalog = placed
            .clone()
            .map(|(_, _, record)| record)
            .inner
            .exchange(|_| 0)
            .as_collection();

        // Only a node's update at its own step describes the frame of that step; later updates
        // are merges, which frames already emitted do not follow.
        let updates = placed.inner.flat_map(|((n, w, record), time, diff)| {
            (time == n.0).then_some((n.0, n.1, record.id, w, diff))
        });

        let fields = {
            let config = config.clone();
            segs.binary_frontier::<_, CapacityContainerBuilder<Vec<Field>>, _, _, _, _>(
                updates,
                Pipeline,
                Exchange::new(|u: &LabelUpdate| u.3),
                "ObjectsLabels",
                move |_, _| {
                    let mut frames: BTreeMap<u64, (Capability<u64>, Rc<Segmented>)> =
                        BTreeMap::new();
                    let mut ids: BTreeMap<u64, BTreeMap<(u32, u64), isize>> = BTreeMap::new();
                    let long_name = format!(
                        "Objects of {} >= {} (ids; NaN outside)",
                        config.input, config.threshold
                    );
                    move |(segs, segs_frontier), (updates, updates_frontier), output| {
                        segs.for_each_stamp(|time, data| {
                            let Some(capability) = time.retain_least(output.output_index()) else {
                                return;
                            };
                            for s in data.flat_map(|d| d.drain(..)) {
                                frames.insert(s.step, (capability.clone(), s));
                            }
                        });
                        updates.for_each_stamp(|_, data| {
                            for (step, c, id, _, diff) in data.flat_map(|d| d.drain(..)) {
                                *ids.entry(step).or_default().entry((c, id)).or_insert(0) += diff;
                            }
                        });
                        while let Some((&step, _)) = frames.first_key_value() {
                            if updates_frontier.less_equal(&step) {
                                break;
                            }
                            let Some((_, (capability, s))) = frames.pop_first() else {
                                break;
                            };
                            let counts = ids.remove(&step).unwrap_or_default();
                            let Some(frame) = &s.frame else {
                                continue;
                            };
                            let mut of_component = vec![None; s.records.len()];
                            for ((c, id), _) in counts.into_iter().filter(|(_, d)| *d > 0) {
                                if let Some(slot) = of_component.get_mut(c as usize) {
                                    if slot.is_some() {
                                        errors.set(step_error(
                                            step,
                                            format!(
                                                "objects {:?}: component {c} has two ids",
                                                config.output
                                            ),
                                        ));
                                    }
                                    *slot = Some(id as f32);
                                }
                            }
                            if let Some(c) = of_component.iter().position(Option::is_none) {
                                errors.set(step_error(
                                    step,
                                    format!(
                                        "objects {:?}: component {c} received no id",
                                        config.output
                                    ),
                                ));
                            }
                            let values = frame
                                .raster
                                .iter()
                                .map(|&k| {
                                    k.checked_sub(1)
                                        .and_then(|c| of_component.get(c as usize).copied())
                                        .flatten()
                                        .unwrap_or(f32::NAN)
                                })
                                .collect();
                            output.session(&capability).give(Field {
                                variable: config.output.clone(),
                                units: "1".to_owned(),
                                long_name: long_name.clone(),
                                step,
                                time: frame.time,
                                grid: frame.grid.clone(),
                                values,
                            });
                        }
                        // Updates for a step whose frame never comes here (none should) go once
                        // both inputs are past it.
                        ids.retain(|step, _| {
                            frames.contains_key(step)
                                || segs_frontier.less_equal(step)
                                || updates_frontier.less_equal(step)
                        });
                    }
                },
            )
        };
        (fields, catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_numbers_beyond_f32_precision_are_refused_with_the_limit() {
        assert!(check_node_numbers("ar", 3, MAX_OBJECT_ID).is_ok());
        let message = check_node_numbers("ar", 3, MAX_OBJECT_ID + 1)
            .expect_err("too many")
            .to_string();
        assert!(
            message.contains("16777217 object-steps by step 3"),
            "{message}"
        );
        assert!(message.contains("exceed 16777216"), "{message}");
        assert_eq!(MAX_OBJECT_ID as f32 as u64, MAX_OBJECT_ID);
        assert_ne!((MAX_OBJECT_ID + 1) as f32 as u64, MAX_OBJECT_ID + 1);
    }

    #[test]
    fn the_spec_defaults_are_the_criterion_defaults() {}

    #[test]
    fn a_criterion_testing_transport_needs_wind() {
        let mut config = ObjectsConfig {
            input: "ivt".into(),
            output: "ar".into(),
            threshold: 250.0,
            min_area_km2: 0.0,
            min_duration_steps: 1,
            criterion: Some(ArCriterion::default()),
            wind: None,
        };
        let message = config.validate().expect_err("no wind").to_string();
        assert!(message.contains("needs wind"), "{message}");
        config.criterion = Some(ArCriterion {
            require_poleward: false,
            min_coherence: 0.0,
            ..ArCriterion::default()
        });
        assert!(config.validate().is_ok());
        config.min_area_km2 = -1.0;
        let message = config.validate().expect_err("negative area").to_string();
        assert!(message.contains("min_area_km2 -1"), "{message}");
    }
}
