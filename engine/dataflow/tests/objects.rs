//! The objects operator: streamed labels and catalog equal a from-scratch computation for any
//! number of workers, partitions agree with scipy, objects cross the dateline, the
//! atmospheric-river criterion tells a long poleward band from a blob, and the catalog table.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arrow::array::Array as _;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Utc};
use isotach_core::{Field, LatLonGrid};
use isotach_engine::ErrorSlot;
use isotach_engine::operators::{
    ArCriterion, MAX_OBJECT_ID, ObjectRecord, Objects, ObjectsConfig, ar_object_ids, catalog_table,
    finish_catalog, node_to_object,
};
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle};

use support::{Array, python_arrays};

const R: f64 = 6371.0;
const FIRST_STEP: u64 = 10;

fn grid(lat0: f64, dlat: f64, nlat: usize, lon0: f64, dlon: f64, nlon: usize) -> Arc<LatLonGrid> {
    Arc::new(LatLonGrid {
        lat: (0..nlat).map(|i| lat0 + i as f64 * dlat).collect(),
        lon: (0..nlon).map(|j| lon0 + j as f64 * dlon).collect(),
    })
}

fn time_of(step: u64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000 + step as i64 * 3600, 0).expect("time")
}

fn field(name: &str, step: u64, grid: &Arc<LatLonGrid>, values: Vec<f32>) -> Field {
    assert_eq!(values.len(), grid.len(), "{name} at step {step}");
    Field {
        variable: name.to_owned(),
        units: "kg m-1 s-1".to_owned(),
        long_name: name.to_owned(),
        step,
        time: time_of(step),
        grid: grid.clone(),
        values,
    }
}

/// `#` inside (10), `.` outside (0), `?` missing.
fn art(rows: &[&str]) -> Vec<f32> {
    rows.iter()
        .flat_map(|row| {
            row.chars().map(|c| match c {
                '#' => 10.0,
                '.' => 0.0,
                _ => f32::NAN,
            })
        })
        .collect()
}

fn config(threshold: f32, min_area_km2: f64) -> ObjectsConfig {
    ObjectsConfig {
        input: "ivt".to_owned(),
        output: "objects".to_owned(),
        threshold,
        min_area_km2,
        min_duration_steps: 1,
        criterion: None,
        wind: None,
    }
}

struct Output {
    /// Label fields, by step.
    labels: Vec<Field>,
    /// Catalog records with a positive net multiplicity.
    catalog: Vec<ObjectRecord>,
    error: Option<String>,
}

/// Streams `steps` (step `i` fed by worker `i % workers`) one step at a time, checking that each
/// step's label field is out before the next step goes in.
fn run(config: &ObjectsConfig, steps: &[Vec<Field>], workers: usize) -> Output {
    run_on(config, steps, vec![timely::Config::process(workers)])
}

/// As [`run`], with one timely process per configuration (each in its own thread here).
fn run_on(config: &ObjectsConfig, steps: &[Vec<Field>], processes: Vec<timely::Config>) -> Output {
    let config = Arc::new(config.clone());
    let steps = Arc::new(steps.to_vec());
    let labels: Arc<Mutex<Vec<Field>>> = Arc::default();
    let catalog: Arc<Mutex<BTreeMap<ObjectRecord, isize>>> = Arc::default();
    let errors = ErrorSlot::default();
    let (l, c, e) = (labels.clone(), catalog.clone(), errors.clone());
    let logic = move |worker: &mut timely::worker::Worker| {
        let mut input = InputHandleVec::<u64, Field>::new();
        let probe = ProbeHandle::new();
        let index = worker.index();
        worker.dataflow::<u64, _, _>(|scope| {
            let (fields, records) = input.to_stream(scope).objects(config.clone(), e.clone());
            let l = l.clone();
            fields
                .inspect(move |f| l.lock().expect("labels").push(f.clone()))
                .probe_with(&probe);
            let c = c.clone();
            records
                .inspect(move |(r, _, d)| {
                    assert_eq!(index, 0, "catalog records reach worker 0 only");
                    *c.lock().expect("catalog").entry(r.clone()).or_default() += d;
                })
                .probe_with(&probe);
        });
        for (i, fields) in steps.iter().enumerate() {
            let step = FIRST_STEP + i as u64;
            input.advance_to(step);
            if i % worker.peers() == index {
                for f in fields {
                    input.send(f.clone());
                }
            }
            input.advance_to(step + 1);
            worker.step_while(|| probe.less_than(&(step + 1)));
            assert!(
                e.is_set() || l.lock().expect("labels").iter().any(|f| f.step == step),
                "the labels of step {step} are out before step {} goes in",
                step + 1
            );
        }
    };
    let threads: Vec<_> = processes
        .into_iter()
        .map(|process| {
            let logic = logic.clone();
            std::thread::spawn(move || {
                let guards = timely::execute(process, logic).expect("timely");
                for guard in guards.join() {
                    guard.expect("worker");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("process");
    }
    let mut labels = std::mem::take(&mut *labels.lock().expect("labels"));
    labels.sort_by_key(|f| f.step);
    let catalog = std::mem::take(&mut *catalog.lock().expect("catalog"));
    for (record, diff) in &catalog {
        assert!(*diff >= 0, "net multiplicity {diff} for {record:?}");
    }
    Output {
        labels,
        catalog: finish_catalog(
            catalog
                .into_iter()
                .filter(|(_, d)| *d > 0)
                .map(|(r, _)| r)
                .collect(),
            1,
        ),
        error: errors.take().map(|e| e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The from-scratch reference: flood fill per step, then temporal linking over the steps.

fn cell_area(grid: &LatLonGrid, row: usize) -> f64 {
    let dlat = (grid.lat[1] - grid.lat[0]).abs().to_radians();
    let dlon = (grid.lon[1] - grid.lon[0]).abs().to_radians();
    let lat = grid.lat[row].to_radians();
    let n = (lat + dlat / 2.0).min(std::f64::consts::FRAC_PI_2);
    let s = (lat - dlat / 2.0).max(-std::f64::consts::FRAC_PI_2);
    R * R * dlon * (n.sin() - s.sin())
}

/// Components as sorted cell lists, in raster order of their first cell.
fn ref_components(
    grid: &LatLonGrid,
    values: &[f32],
    threshold: f32,
    min_area: f64,
) -> Vec<Vec<usize>> {
    let (nlat, nlon) = grid.shape();
    let global = grid.is_global_in_lon();
    let inside = |i: usize| values[i] >= threshold;
    let mut seen = vec![false; values.len()];
    let mut comps = Vec::new();
    for start in 0..values.len() {
        if !inside(start) || seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut cells = Vec::new();
        while let Some(i) = stack.pop() {
            cells.push(i);
            let (r, c) = ((i / nlon) as i64, (i % nlon) as i64);
            for dr in -1..=1 {
                for dc in -1..=1 {
                    let (rr, mut cc) = (r + dr, c + dc);
                    if rr < 0 || rr >= nlat as i64 {
                        continue;
                    }
                    if global {
                        cc = cc.rem_euclid(nlon as i64);
                    } else if cc < 0 || cc >= nlon as i64 {
                        continue;
                    }
                    let j = rr as usize * nlon + cc as usize;
                    if inside(j) && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        cells.sort_unstable();
        comps.push(cells);
    }
    comps.retain(|cells| {
        cells
            .iter()
            .map(|&i| cell_area(grid, i / nlon))
            .sum::<f64>()
            >= min_area
    });
    comps
}

struct Reference {
    /// Label values per step (causal: the graph of the steps so far).
    labels: Vec<Vec<f32>>,
    /// (id, node, step, cells, largest value) of every node, with whole-history ids.
    nodes: Vec<(u64, u64, u64, Vec<usize>, f32)>,
}

fn reference(config: &ObjectsConfig, steps: &[Vec<Field>]) -> Reference {
    let mut parent: Vec<usize> = Vec::new();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut all: Vec<(u64, Vec<usize>, f32)> = Vec::new();
    let mut previous: Vec<(usize, HashSet<usize>)> = Vec::new();
    let mut labels = Vec::new();
    for (i, fields) in steps.iter().enumerate() {
        let f = fields
            .iter()
            .find(|f| f.variable == config.input)
            .expect("input");
        let comps = ref_components(&f.grid, &f.values, config.threshold, config.min_area_km2);
        let mut current = Vec::new();
        for cells in comps {
            let node = all.len();
            parent.push(node);
            let set: HashSet<usize> = cells.iter().copied().collect();
            for (p, pset) in &previous {
                if !set.is_disjoint(pset) {
                    // Union keeping the smallest node number as the root.
                    let (a, b) = (find(&mut parent, *p), find(&mut parent, node));
                    let (lo, hi) = (a.min(b), a.max(b));
                    parent[hi] = lo;
                }
            }
            let max = cells.iter().map(|&c| f.values[c]).fold(f32::MIN, f32::max);
            all.push((FIRST_STEP + i as u64, cells, max));
            current.push((node, set));
        }
        let mut values = vec![f32::NAN; f.values.len()];
        for (node, set) in &current {
            let id = find(&mut parent, *node) as f32 + 1.0;
            for &c in set {
                values[c] = id;
            }
        }
        labels.push(values);
        previous = current;
    }
    let nodes = all
        .into_iter()
        .enumerate()
        .map(|(n, (step, cells, max))| {
            (
                find(&mut parent, n) as u64 + 1,
                n as u64 + 1,
                step,
                cells,
                max,
            )
        })
        .collect();
    Reference { labels, nodes }
}

fn assert_same_labels(what: &str, got: &[Field], want: &[Vec<f32>]) {
    assert_eq!(got.len(), want.len(), "{what}: number of label fields");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.step, FIRST_STEP + i as u64, "{what}: steps in order");
        assert_eq!(g.variable, "objects");
        for (c, (a, b)) in g.values.iter().zip(w).enumerate() {
            assert!(
                a == b || (a.is_nan() && b.is_nan()),
                "{what}: step {} cell {c}: {a} vs reference {b}",
                g.step
            );
        }
    }
}

fn assert_catalog_matches(what: &str, got: &[ObjectRecord], r: &Reference, grid: &LatLonGrid) {
    let nlon = grid.lon.len();
    let mut want: Vec<&(u64, u64, u64, Vec<usize>, f32)> = r.nodes.iter().collect();
    want.sort_by_key(|(id, node, step, _, _)| (*id, *step, *node));
    assert_eq!(got.len(), want.len(), "{what}: number of records");
    for (g, (id, node, step, cells, max)) in got.iter().zip(want) {
        assert_eq!((g.id, g.node, g.step), (*id, *node, *step), "{what}");
        assert_eq!(g.time, time_of(*step));
        let area: f64 = cells.iter().map(|&i| cell_area(grid, i / nlon)).sum();
        assert!(
            (g.area_km2 - area).abs() <= 1e-9 * area,
            "{what}: area {} vs {area}",
            g.area_km2
        );
        let lats: Vec<f64> = cells.iter().map(|&i| grid.lat[i / nlon]).collect();
        let lat_min = lats.iter().copied().fold(f64::INFINITY, f64::min);
        let lat_max = lats.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            (g.lat_min, g.lat_max),
            (lat_min, lat_max),
            "{what}: node {node}"
        );
        assert_eq!(g.max_value, *max, "{what}: node {node}");
        assert!(
            g.mean_value <= *max && g.mean_value > 0.0,
            "{what}: node {node}"
        );
    }
}

// ---------------------------------------------------------------------------------------------

/// A merge at step 4 (A born at step 0, B at step 1), a split at step 6, an object on the seam,
/// and a one-cell blip below the area threshold, on a global 30° grid.
fn scenario() -> (Arc<LatLonGrid>, Vec<Vec<Field>>) {
    let g = grid(45.0, -30.0, 4, 0.0, 30.0, 12);
    #[rustfmt::skip]
    let frames: [[&str; 4]; 8] = [
        ["##..........", "##..........", "............", "#..........#"], // A, C on the seam
        [".##.........", ".##.........", ".........##.", "##.......##."], // A, B born, C
        ["..##....#...", "..##........", "........##..", "........##.."], // A, blip, B
        ["...##.......", "...##.......", ".......##...", ".......##..."], // A, B apart
        ["....##......", "....##......", "......##....", "......##...."], // A and B touch
        [".....##.....", ".....##.....", ".....##.....", ".....##....."], // merged
        ["....##......", "............", "............", "......##...."], // split
        ["....##......", "............", "............", ".......##..."], // both go on
    ];
    let steps = frames
        .iter()
        .enumerate()
        .map(|(i, rows)| vec![field("ivt", FIRST_STEP + i as u64, &g, art(rows))])
        .collect();
    (g, steps)
}

#[test]
fn merge_and_split_stream_like_from_scratch_for_one_and_three_workers() {
    let (g, steps) = scenario();
    // Two cells (≥ 15.5e6 km²) stay, one cell (≤ 10.6e6 km²) goes.
    let config = config(5.0, 12.0e6);
    let want = reference(&config, &steps);
    let one = run(&config, &steps, 1);
    let three = run(&config, &steps, 3);
    assert_eq!(one.error, None);
    assert_eq!(three.error, None);
    assert_same_labels("1 worker", &one.labels, &want.labels);
    assert_same_labels("3 workers", &three.labels, &want.labels);
    assert_catalog_matches("1 worker", &one.catalog, &want, &g);
    assert_eq!(
        one.catalog, three.catalog,
        "the catalog is the same for 1 and 3 workers"
    );

    // Nodes by step: 0: A=1, C=2; 1: A=3, B=4, C=5; 2: A=6, B=7 (the blip is dropped);
    // 3: A=8, B=9; 4: merged=10; 5: 11; 6: 12, 13; 7: 14, 15.
    let ids_at = |t: usize| -> BTreeSet<u32> {
        one.labels[t]
            .values
            .iter()
            .filter(|v| !v.is_nan())
            .map(|v| *v as u32)
            .collect()
    };
    assert_eq!(ids_at(0), BTreeSet::from([1, 2]));
    assert_eq!(ids_at(1), BTreeSet::from([1, 2, 4]));
    assert!(
        one.labels[2].values[8].is_nan(),
        "the blip is below min_area"
    );
    // B keeps its own id in the frames before the merge ...
    assert_eq!(ids_at(3), BTreeSet::from([1, 4]));
    // ... and carries A's id from the merge on, through the split.
    for t in 4..8 {
        assert_eq!(
            ids_at(t),
            BTreeSet::from([1]),
            "step {}",
            FIRST_STEP + t as u64
        );
    }
    // The catalog follows the merge for the whole history: B's records now carry id 1.
    let by_node: BTreeMap<u64, u64> = node_to_object(&one.catalog);
    assert_eq!(by_node[&4], 1);
    assert_eq!(by_node[&9], 1);
    assert_eq!(by_node[&5], 2);
    assert_eq!(by_node.len(), 15);
    let ids: BTreeSet<u64> = one.catalog.iter().map(|r| r.id).collect();
    assert_eq!(ids, BTreeSet::from([1, 2]));
    // Two records of object 1 at the split step.
    assert_eq!(
        one.catalog
            .iter()
            .filter(|r| r.id == 1 && r.step == FIRST_STEP + 6)
            .count(),
        2
    );

    // The duration filter: C spans 2 steps, object 1 spans 8.
    let long = finish_catalog(one.catalog.clone(), 3);
    assert!(long.iter().all(|r| r.id == 1));
    assert_eq!(long.len(), one.catalog.len() - 2);
    assert_eq!(finish_catalog(one.catalog.clone(), 8).len(), long.len());
    assert!(finish_catalog(one.catalog.clone(), 9).is_empty());
}

#[test]
fn two_processes_give_the_catalog_and_labels_of_one_worker() {
    let (_, steps) = scenario();
    let config = config(5.0, 12.0e6);
    let addresses: Vec<String> = (0..2)
        .map(|_| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            format!(
                "127.0.0.1:{}",
                listener.local_addr().expect("address").port()
            )
        })
        .collect();
    let processes = (0..2)
        .map(|process| timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: 1,
                process,
                addresses: addresses.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        })
        .collect();
    let two = run_on(&config, &steps, processes);
    let one = run(&config, &steps, 1);
    assert_eq!(two.error, None);
    assert_eq!(two.catalog, one.catalog, "records cross processes intact");
    let want: Vec<Vec<f32>> = one.labels.iter().map(|f| f.values.clone()).collect();
    assert_same_labels("2 processes", &two.labels, &want);
}

/// Deterministic pseudo-random numbers (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Drifting Gaussian blobs (some crossing the seam) on a global grid: objects that are born,
/// move, merge, split and die.
fn blobs(g: &Arc<LatLonGrid>, steps: usize, seed: u64) -> Vec<Vec<Field>> {
    let mut rng = Rng(seed);
    let blobs: Vec<[f64; 6]> = (0..9)
        .map(|_| {
            [
                rng.next() * 140.0 - 70.0,           // lat
                rng.next() * 360.0,                  // lon
                rng.next() * 6.0 - 3.0,              // dlat per step
                rng.next() * 40.0 - 20.0,            // dlon per step
                8.0 + rng.next() * 10.0,             // radius, degrees
                (rng.next() * steps as f64).floor(), // birth step
            ]
        })
        .collect();
    (0..steps)
        .map(|t| {
            let mut values = vec![0f32; g.len()];
            for (i, v) in values.iter_mut().enumerate() {
                let (lat, lon) = (g.lat[i / g.lon.len()], g.lon[i % g.lon.len()]);
                for b in &blobs {
                    if (t as f64) < b[5] {
                        continue;
                    }
                    let dt = t as f64 - b[5];
                    let (clat, clon) = (b[0] + b[2] * dt, b[1] + b[3] * dt);
                    let dlon =
                        ((lon - clon + 540.0).rem_euclid(360.0) - 180.0) * lat.to_radians().cos();
                    let d2 = (lat - clat).powi(2) + dlon.powi(2);
                    *v += (-d2 / (b[4] * b[4])).exp() as f32;
                }
                if rng.next() < 0.01 {
                    *v = f32::NAN;
                }
            }
            vec![field("ivt", FIRST_STEP + t as u64, g, values)]
        })
        .collect()
}

#[test]
fn random_blobs_stream_like_from_scratch_for_one_and_three_workers() {
    let g = grid(85.0, -10.0, 18, 0.0, 10.0, 36);
    let (mut merged_later, mut split) = (0, 0);
    for seed in [1, 2, 3, 4] {
        let steps = blobs(&g, 10, seed);
        let config = config(0.5, 2.0e6);
        let want = reference(&config, &steps);
        let one = run(&config, &steps, 1);
        assert_eq!(one.error, None);
        assert_same_labels(&format!("seed {seed}, 1 worker"), &one.labels, &want.labels);
        assert_catalog_matches(&format!("seed {seed}"), &one.catalog, &want, &g);
        // Three workers on a loaded machine take ~0.1 s a step: one seed is enough.
        if seed == 1 {
            let three = run(&config, &steps, 3);
            assert_eq!(three.error, None);
            assert_same_labels(
                &format!("seed {seed}, 3 workers"),
                &three.labels,
                &want.labels,
            );
            assert_eq!(one.catalog, three.catalog, "seed {seed}");
        }
        let objects: BTreeSet<u64> = one.catalog.iter().map(|r| r.id).collect();
        assert!(objects.len() >= 2, "seed {seed}: {} objects", objects.len());
        // The data exercise merges (a frame showing another id than the final one) and splits
        // (an object in two pieces at one step).
        merged_later += want
            .nodes
            .iter()
            .filter(|(id, _, step, cells, _)| {
                want.labels[(step - FIRST_STEP) as usize][cells[0]] != *id as f32
            })
            .count();
        let pieces: BTreeSet<(u64, u64)> = one.catalog.iter().map(|r| (r.id, r.step)).collect();
        split += one.catalog.len() - pieces.len();
    }
    assert!(
        merged_later > 0 && split > 0,
        "merges {merged_later}, splits {split}"
    );
}

/// Asserts two label arrays group the same cells together (0 or NaN = outside), whatever the ids.
fn assert_same_partition(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let mut ab: HashMap<u32, u32> = HashMap::new();
    let mut ba: HashMap<u32, u32> = HashMap::new();
    let outside = |v: f32| v.is_nan() || v == 0.0;
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert_eq!(outside(x), outside(y), "{what}: cell {i}: {x} vs {y}");
        if outside(x) {
            continue;
        }
        let (x, y) = (x as u32, y as u32);
        assert_eq!(
            *ab.entry(x).or_insert(y),
            y,
            "{what}: cell {i}: label {x} splits"
        );
        assert_eq!(
            *ba.entry(y).or_insert(x),
            x,
            "{what}: cell {i}: label {y} splits"
        );
    }
}

const SCIPY: &str = r#"
from scipy import ndimage
mask = inputs["values"] >= 0.5
T, H, W = mask.shape

def merge_seam(labels, mask2d_list):
    parent = {}
    def find(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x
    for t in range(labels.shape[0]):
        lab = labels[t]
        for r in range(H):
            for dr in (-1, 0, 1):
                rr = r + dr
                if 0 <= rr < H and lab[r, 0] and lab[rr, W - 1]:
                    a, b = find(lab[r, 0]), find(lab[rr, W - 1])
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    out = labels.copy()
    for x in np.unique(labels):
        if x:
            out[labels == x] = find(x)
    return out

space = np.zeros(mask.shape, dtype=np.int64)
for t in range(T):
    lab, _ = ndimage.label(mask[t], structure=np.ones((3, 3)))
    space[t] = merge_seam(lab[None], None)[0]
s3 = np.zeros((3, 3, 3))
s3[1] = 1
s3[0, 1, 1] = 1
s3[2, 1, 1] = 1
lab3, _ = ndimage.label(mask, structure=s3)
outputs["space"] = space
outputs["spacetime"] = merge_seam(lab3, None)
"#;

#[test]
fn partitions_agree_with_scipy_label_in_space_and_time() {
    let g = grid(85.0, -10.0, 18, 0.0, 10.0, 36);
    let steps = blobs(&g, 8, 7);
    let config = config(0.5, 0.0);
    let n = g.len();
    let stacked: Vec<f32> = steps.iter().flat_map(|s| s[0].values.clone()).collect();
    let py = python_arrays(
        SCIPY,
        &[(
            "values",
            Array::new(stacked, &[steps.len(), g.lat.len(), g.lon.len()]),
        )],
    );

    // Some object crosses the seam of the longitudes (scipy's labels joined across it).
    let (h, w) = g.shape();
    let space = &py["space"].values;
    assert!(
        (0..steps.len() * h).any(|row| {
            let (west, east) = (space[row * w], space[row * w + w - 1]);
            west > 0.0 && west == east
        }),
        "no object crosses the seam"
    );

    // In space: each step alone, where every component is its own object.
    for (t, step) in steps.iter().enumerate() {
        let mut alone = step.clone();
        for f in &mut alone {
            f.step = FIRST_STEP;
            f.time = time_of(FIRST_STEP);
        }
        let out = run(&config, &[alone], 1);
        assert_same_partition(
            &format!("space, step {t}"),
            &out.labels[0].values,
            &py["space"].values[t * n..(t + 1) * n],
        );
    }

    // In space and time: the streamed labels, mapped to the ids of the whole history.
    let out = run(&config, &steps, 2);
    assert_eq!(out.error, None);
    let final_id = node_to_object(&out.catalog);
    for (t, labels) in out.labels.iter().enumerate() {
        let whole: Vec<f32> = labels
            .values
            .iter()
            .map(|v| {
                if v.is_nan() {
                    f32::NAN
                } else {
                    final_id[&(*v as u64)] as f32
                }
            })
            .collect();
        assert_same_partition(
            &format!("space-time, step {t}"),
            &whole,
            &py["spacetime"].values[t * n..(t + 1) * n],
        );
    }
    let objects: BTreeSet<u64> = final_id.values().copied().collect();
    assert!(objects.len() >= 2, "{} objects", objects.len());
    assert!(
        final_id.len() > objects.len(),
        "some objects last more than one step"
    );
}

#[test]
fn an_object_across_the_dateline_is_one_object_with_a_sensible_box() {
    // 0..358 and -180..178 conventions; the object covers lon 354..6 (or 174..-174) at lat 10..20.
    for lon0 in [0.0, -180.0] {
        let g = grid(88.0, -2.0, 89, lon0, 2.0, 180);
        let shift = if lon0 == 0.0 { 0.0 } else { 180.0 };
        let mut values = vec![0f32; g.len()];
        for (i, v) in values.iter_mut().enumerate() {
            let (lat, lon) = (g.lat[i / 180], g.lon[i % 180]);
            let east = (lon - shift).rem_euclid(360.0);
            // Wider east of the seam than west of it: the centroid is east of the seam.
            if (10.0..=20.0).contains(&lat) && (east >= 354.0 || east <= 10.0) {
                *v = 1.0;
            }
        }
        let steps = vec![vec![field("ivt", FIRST_STEP, &g, values)]];
        let out = run(&config(0.5, 0.0), &steps, 1);
        let ids: BTreeSet<u32> = out.labels[0]
            .values
            .iter()
            .filter(|v| !v.is_nan())
            .map(|v| *v as u32)
            .collect();
        assert_eq!(ids, BTreeSet::from([1]), "lon0 {lon0}: one object");
        assert_eq!(out.catalog.len(), 1);
        let r = &out.catalog[0];
        let (west, east) = if lon0 == 0.0 {
            (354.0, 10.0)
        } else {
            (174.0, -170.0)
        };
        assert_eq!(
            (r.lon_min, r.lon_max),
            (west, east),
            "lon0 {lon0}: box crosses the seam"
        );
        assert_eq!((r.lat_min, r.lat_max), (10.0, 20.0));
        // Columns 354..358 (3) and 0..10 (6): unwrapped 354..370, centroid 362 = 2° east of the
        // seam.
        let centroid = if lon0 == 0.0 { 2.0 } else { -178.0 };
        assert!(
            (r.centroid_lon - centroid).abs() < 1e-9,
            "lon0 {lon0}: centroid lon {}",
            r.centroid_lon
        );
        assert!((r.centroid_lat - 15.0).abs() < 0.2, "{}", r.centroid_lat);
        // 6 rows × 9 columns: 16° of longitude at lat 15 ≈ 1720 km, 10° of latitude ≈ 1112 km.
        let cells = 6.0 * 9.0;
        let area: f64 = (0..6)
            .map(|k| {
                let lat = (10.0 + 2.0 * k as f64).to_radians();
                R * R
                    * 2f64.to_radians()
                    * ((lat + 1f64.to_radians()).sin() - (lat - 1f64.to_radians()).sin())
            })
            .sum::<f64>()
            * 9.0;
        assert!(
            (r.area_km2 - area).abs() < 1e-6 * area,
            "{} vs {area} ({cells} cells)",
            r.area_km2
        );
        assert!(
            r.length_km > 1500.0 && r.length_km < 2100.0,
            "length {}",
            r.length_km
        );
        assert!(
            r.orientation_deg.abs() < 20.0,
            "orientation {}",
            r.orientation_deg
        );
    }
}

/// A band of `half_width` cells either side of the great circle from (lat0, lon0) to (lat1, lon1)
/// in degrees, with IVT flowing along it (or against it).
fn band(
    g: &LatLonGrid,
    from: (f64, f64),
    to: (f64, f64),
    half_width: f64,
    flow: f64,
) -> [Vec<f32>; 3] {
    let n = g.len();
    let (mut ivt, mut u, mut v) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let steps = 400;
    for k in 0..=steps {
        let s = k as f64 / steps as f64;
        let (lat, lon) = (from.0 + s * (to.0 - from.0), from.1 + s * (to.1 - from.1));
        let (dy, dx) = (to.0 - from.0, (to.1 - from.1) * lat.to_radians().cos());
        let norm = dx.hypot(dy);
        for (i, cell) in ivt.iter_mut().enumerate() {
            let (clat, clon) = (g.lat[i / g.lon.len()], g.lon[i % g.lon.len()]);
            if (clat - lat).abs() <= half_width && (clon - lon).abs() <= half_width {
                *cell = 500.0;
                u[i] = (flow * 400.0 * dx / norm) as f32;
                v[i] = (flow * 400.0 * dy / norm) as f32;
            }
        }
    }
    [ivt, u, v]
}

fn blob(g: &LatLonGrid, centre: (f64, f64), radius: f64, wind: (f32, f32)) -> [Vec<f32>; 3] {
    let n = g.len();
    let (mut ivt, mut u, mut v) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    for i in 0..n {
        let (lat, lon) = (g.lat[i / g.lon.len()], g.lon[i % g.lon.len()]);
        let dx = (lon - centre.1) * centre.0.to_radians().cos();
        if (lat - centre.0).hypot(dx) <= radius {
            ivt[i] = 500.0;
            u[i] = wind.0;
            v[i] = wind.1;
        }
    }
    [ivt, u, v]
}

#[test]
fn the_ar_criterion_passes_a_long_poleward_band_and_fails_a_blob() {
    let g = grid(88.0, -2.0, 89, 0.0, 2.0, 180);
    let mut config = config(250.0, 0.0);
    config.criterion = Some(ArCriterion::default());
    config.wind = Some(("ivt_u".to_owned(), "ivt_v".to_owned()));
    let shapes: Vec<(&str, [Vec<f32>; 3], bool)> = vec![
        // North Pacific AR, south-west to north-east, moisture flowing north-east.
        (
            "nh band",
            band(&g, (22.0, 200.0), (52.0, 236.0), 2.0, 1.0),
            true,
        ),
        // The same band with the flow reversed: equatorward.
        (
            "equatorward band",
            band(&g, (22.0, 200.0), (52.0, 236.0), 2.0, -1.0),
            false,
        ),
        // A southern-hemisphere AR flowing south-east (v < 0 is poleward there).
        (
            "sh band",
            band(&g, (-20.0, 300.0), (-50.0, 330.0), 2.0, 1.0),
            true,
        ),
        // A round blob of strong poleward flow.
        ("blob", blob(&g, (40.0, 100.0), 9.0, (100.0, 300.0)), false),
        // A short band (about 1000 km).
        (
            "short band",
            band(&g, (30.0, 150.0), (36.0, 156.0), 1.0, 1.0),
            false,
        ),
    ];
    let mut steps = Vec::new();
    for (i, (_, [ivt, u, v], _)) in shapes.iter().enumerate() {
        let step = FIRST_STEP + i as u64;
        steps.push(vec![
            field("ivt", step, &g, ivt.clone()),
            field("ivt_u", step, &g, u.clone()),
            field("ivt_v", step, &g, v.clone()),
        ]);
    }
    let out = run(&config, &steps, 2);
    assert_eq!(out.error, None);
    for (i, (name, _, is_ar)) in shapes.iter().enumerate() {
        let records: Vec<&ObjectRecord> = out
            .catalog
            .iter()
            .filter(|r| r.step == FIRST_STEP + i as u64)
            .collect();
        assert_eq!(records.len(), 1, "{name}: one object");
        let r = records[0];
        assert_eq!(r.is_ar, Some(*is_ar), "{name}: {r:?}");
    }
    let band = out
        .catalog
        .iter()
        .find(|r| r.step == FIRST_STEP)
        .expect("band");
    assert!(
        band.length_km > 3500.0 && band.length_km < 5500.0,
        "{}",
        band.length_km
    );
    assert!(band.length_km / band.width_km > 5.0, "{band:?}");
    assert!(
        band.orientation_deg > 35.0 && band.orientation_deg < 65.0,
        "orientation {}",
        band.orientation_deg
    );
    let blob = out
        .catalog
        .iter()
        .find(|r| r.step == FIRST_STEP + 3)
        .expect("blob");
    assert!(blob.length_km / blob.width_km < 1.6, "{blob:?}");
    // Steps 0 and 1 are one object (same cells), an AR since step 0 passes; step 2 is another.
    let ar = ar_object_ids(&out.catalog);
    assert_eq!(ar.len(), 2, "{ar:?}");

    // No criterion: no verdict. A criterion testing transport without wind is refused.
    let plain = run(&self::config(250.0, 0.0), &steps[..1], 1);
    assert_eq!(plain.catalog[0].is_ar, None);
    let mut no_wind = self::config(250.0, 0.0);
    no_wind.criterion = Some(ArCriterion::default());
    let refused = run(&no_wind, &steps[..1], 1);
    let message = refused.error.expect("an error");
    assert!(message.contains("needs wind"), "{message}");
}

#[test]
fn a_missing_input_field_is_an_error_naming_it() {
    let (_, mut steps) = scenario();
    steps[1][0].variable = "other".to_owned();
    let out = run(&config(5.0, 0.0), &steps, 1);
    let message = out.error.expect("an error");
    assert!(message.contains("\"ivt\" is missing"), "{message}");
    assert!(message.contains("step 11"), "{message}");
}

#[test]
fn the_catalog_table_has_typed_columns_and_whole_object_columns() {
    let (_, steps) = scenario();
    let out = run(&config(5.0, 12.0e6), &steps, 1);
    let mut records = out.catalog.clone();
    records[0].is_ar = Some(true);
    let table = catalog_table(&records).expect("table");
    let schema = table.schema();
    let columns: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    assert_eq!(
        columns,
        vec![
            ("id", &DataType::UInt64),
            ("node", &DataType::UInt64),
            ("step", &DataType::UInt64),
            ("time", &ts),
            ("centroid_lat", &DataType::Float64),
            ("centroid_lon", &DataType::Float64),
            ("area_km2", &DataType::Float64),
            ("max_value", &DataType::Float32),
            ("mean_value", &DataType::Float32),
            ("lat_min", &DataType::Float64),
            ("lat_max", &DataType::Float64),
            ("lon_min", &DataType::Float64),
            ("lon_max", &DataType::Float64),
            ("length_km", &DataType::Float64),
            ("width_km", &DataType::Float64),
            ("orientation_deg", &DataType::Float64),
            ("is_ar", &DataType::Boolean),
            ("duration_steps", &DataType::UInt32),
            ("object_is_ar", &DataType::Boolean),
        ]
    );
    assert_eq!(table.num_rows(), records.len());
    let ids = table
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::UInt64Array>()
        .expect("u64");
    assert_eq!(
        ids.values().to_vec(),
        records.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    let times = table
        .column(3)
        .as_any()
        .downcast_ref::<arrow::array::TimestampMillisecondArray>()
        .expect("ms");
    assert_eq!(times.value(0), time_of(FIRST_STEP).timestamp_millis());
    let durations = table
        .column(17)
        .as_any()
        .downcast_ref::<arrow::array::UInt32Array>()
        .expect("u32");
    let by_id: BTreeMap<u64, u32> = records
        .iter()
        .map(|r| r.id)
        .zip(durations.values().iter().copied())
        .collect();
    assert_eq!(by_id, BTreeMap::from([(1, 8), (2, 2)]));
    let object_ar = table
        .column(18)
        .as_any()
        .downcast_ref::<arrow::array::BooleanArray>()
        .expect("bool");
    // Record 0 (object 1, step 10) passes, so object 1 is an AR object; records without a
    // verdict have none.
    assert!(object_ar.value(0));
    assert_eq!(object_ar.null_count(), records.len() - 1);

    // The duration filter drops the seam object (2 steps) and keeps the (id, step) order.
    let kept = finish_catalog(records, 3);
    assert!(kept.iter().all(|r| r.id == 1));
    assert!(
        kept.windows(2)
            .all(|w| (w[0].id, w[0].step) <= (w[1].id, w[1].step))
    );
    assert!(MAX_OBJECT_ID as f32 as u64 == MAX_OBJECT_ID);
    assert!(((MAX_OBJECT_ID + 1) as f32) as u64 != MAX_OBJECT_ID + 1);
}
