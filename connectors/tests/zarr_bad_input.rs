//! Bad Zarr input: corrupt chunks are errors naming the store, the array and the chunk; missing
//! chunks read as NaN; unknown variables are named with the ones the store has; out-of-range
//! requests are refused; and a few thousand mutations of real metadata files (`zarr.json`,
//! `.zarray`, `.zattrs`, `.zmetadata`) make `ZarrSource` return errors, never panic or abort.

mod support;

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use isotach_connectors::{Source, TileRequest, VariableLayout, ZarrSource, ZarrWriter};
use isotach_core::{CfTimeUnits, RegionKey, TileWindow, TimeAxis};
use serde_json::{Map, Value, json};

const NT: u64 = 3;
const NLAT: u64 = 19;
const NLON: u64 = 36;
const CHUNKS: [u64; 3] = [1, 8, 10];

/// The value `ZarrWriter` stores at (step, row, col) of `t2m` (exact in f32).
fn t2m(step: u64, row: u64, col: u64) -> f32 {
    250.0 + step as f32 * 10.0 + row as f32 + col as f32 / 64.0
}

fn text_attrs(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect()
}

/// A v3 store made by `ZarrWriter`: `t2m` and `u10` of 3 × 19 × 36 in chunks of 1 × 8 × 10.
fn writer_store(path: &Path) -> PathBuf {
    let writer = ZarrWriter::create(path, Map::new()).expect("create store");
    let lat: Vec<f64> = (0..NLAT).map(|i| 90.0 - 10.0 * i as f64).collect();
    let lon: Vec<f64> = (0..NLON).map(|i| 10.0 * i as f64).collect();
    writer
        .write_coordinate("lat", &lat, text_attrs(&[("units", "degrees_north")]))
        .expect("lat");
    writer
        .write_coordinate("lon", &lon, text_attrs(&[("units", "degrees_east")]))
        .expect("lon");
    let epoch: DateTime<Utc> = "1900-01-01T00:00:00Z".parse().expect("date");
    let start: DateTime<Utc> = "2020-01-01T00:00:00Z".parse().expect("date");
    writer
        .write_time(
            &TimeAxis::regular(start, 6, NT as usize),
            CfTimeUnits::hours_since(epoch),
            Map::new(),
        )
        .expect("time");
    let layout = VariableLayout {
        dims: ["time", "lat", "lon"].map(String::from).to_vec(),
        shape: vec![NT, NLAT, NLON],
        chunks: CHUNKS.to_vec(),
    };
    for (name, offset) in [("t2m", 0.0), ("u10", -240.0)] {
        let variable = writer
            .create_variable(name, &layout, text_attrs(&[("units", "K")]))
            .expect("declare variable");
        for step in 0..NT {
            let values: Vec<f32> = (0..NLAT)
                .flat_map(|r| (0..NLON).map(move |c| t2m(step, r, c) + offset))
                .collect();
            variable.write_step(step, &values).expect("write step");
        }
    }
    path.to_owned()
}

fn open(path: &Path) -> ZarrSource {
    ZarrSource::open(path.to_str().expect("UTF-8 path"))
        .unwrap_or_else(|e| panic!("{} should open: {e}", path.display()))
}

/// The tile of `variable` whose window starts at (row0, col0).
fn tile_request(
    source: &ZarrSource,
    variable: &str,
    step: u64,
    row0: usize,
    col0: usize,
) -> TileRequest {
    let (region, window) = source
        .regions(variable)
        .expect("regions")
        .into_iter()
        .find(|(_, w)| w.row0 == row0 && w.col0 == col0)
        .unwrap_or_else(|| panic!("no region starts at row {row0}, col {col0}"));
    TileRequest {
        step,
        region,
        window,
    }
}

fn assert_names_chunk(error: &str, store: &Path, array: &str, chunk: &str) {
    let store = store.display().to_string();
    assert!(
        error.contains(&store) && error.contains(array) && error.contains(chunk),
        "the error should name store {store}, array {array} and chunk {chunk}: {error}"
    );
}

#[test]
fn corrupt_chunks_are_errors_naming_store_array_and_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = writer_store(&dir.path().join("corrupt.zarr"));
    let mut rng = support::SplitMix64(7);
    // Chunk [0, 1, 0] (step 0, rows 8..16, columns 0..10): garbage. Chunk [2, 0, 3]: cut in half.
    std::fs::write(path.join("t2m/c/0/1/0"), rng.bytes(200)).expect("write garbage");
    let cut = path.join("t2m/c/2/0/3");
    let bytes = std::fs::read(&cut).expect("read chunk");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("truncate chunk");
    let source = open(&path);

    let err = source
        .read_tile("t2m", &tile_request(&source, "t2m", 0, 8, 0))
        .unwrap_err()
        .to_string();
    assert_names_chunk(&err, &path, "t2m", "[0, 1, 0]");
    let err = source
        .read_tile("t2m", &tile_request(&source, "t2m", 2, 0, 30))
        .unwrap_err()
        .to_string();
    assert_names_chunk(&err, &path, "t2m", "[2, 0, 3]");

    // A whole-array or wider read names the corrupt chunk, not the first chunk it touched.
    let err = source.read_all("t2m").unwrap_err().to_string();
    assert!(
        err.contains("[0, 1, 0]") || err.contains("[2, 0, 3]"),
        "read_all should name a corrupt chunk: {err}"
    );
    assert_names_chunk(&err, &path, "t2m", "");
    let err = source
        .read_subset("t2m", &[0..1, 4..19, 0..36])
        .unwrap_err()
        .to_string();
    assert_names_chunk(&err, &path, "t2m", "[0, 1, 0]");

    // Nothing else is lost: the neighbouring tiles and the other variable still read.
    let tile = source
        .read_tile("t2m", &tile_request(&source, "t2m", 0, 0, 0))
        .expect("intact tile");
    assert_eq!(tile.values.as_slice()[0], t2m(0, 0, 0));
    let tile = source
        .read_tile("t2m", &tile_request(&source, "t2m", 1, 8, 0))
        .expect("intact tile");
    assert_eq!(tile.values.as_slice()[0], t2m(1, 8, 0));
    assert_eq!(
        source.read_all("u10").expect("the other variable").len(),
        (NT * NLAT * NLON) as usize
    );
}

#[test]
fn corrupt_chunks_in_stores_from_zarr_python_name_the_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::run_script(
        "make_zarr_fixtures.py",
        &[
            dir.path().as_os_str(),
            "--only".as_ref(),
            "v2_zstd,v3_zstd_crc32c,v2_blosc_lz4_shuffle".as_ref(),
        ],
    );
    let mut rng = support::SplitMix64(11);
    for (store, key) in [
        ("v2_zstd", "t2m/1.0.1"),
        ("v2_blosc_lz4_shuffle", "t2m/1.0.1"),
        ("v3_zstd_crc32c", "t2m/c/1/0/1"),
    ] {
        let path = dir.path().join(format!("{store}.zarr"));
        std::fs::write(path.join(key), rng.bytes(97)).expect("write garbage");
        let source = open(&path);
        // Chunk [1, 0, 1] holds step 2, rows 0..8, columns 10..20.
        let err = source
            .read_tile("t2m", &tile_request(&source, "t2m", 2, 0, 10))
            .unwrap_err()
            .to_string();
        assert_names_chunk(&err, &path, "t2m", "[1, 0, 1]");
        let err = source.read_all("t2m").unwrap_err().to_string();
        assert_names_chunk(&err, &path, "t2m", "[1, 0, 1]");
        assert!(
            source
                .read_tile("t2m", &tile_request(&source, "t2m", 1, 0, 10))
                .is_ok(),
            "{store}: step 1 is in chunk [0, 0, 1], which is intact"
        );
    }
}

#[test]
fn missing_chunks_read_as_nan_and_the_rest_is_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = writer_store(&dir.path().join("missing.zarr"));
    // Step 1, rows 8..16, columns 20..30.
    std::fs::remove_file(path.join("t2m/c/1/1/2")).expect("remove chunk");
    let source = open(&path);

    let tile = source
        .read_tile("t2m", &tile_request(&source, "t2m", 1, 8, 20))
        .expect("tile over the missing chunk");
    assert_eq!(tile.values.len(), 80);
    assert!(tile.values.as_slice().iter().all(|v| v.is_nan()));

    let all = source.read_all("t2m").expect("read_all");
    assert_eq!(all.len(), (NT * NLAT * NLON) as usize);
    for step in 0..NT {
        for r in 0..NLAT {
            for c in 0..NLON {
                let got = all[((step * NLAT + r) * NLON + c) as usize];
                let hole = step == 1 && (8..16).contains(&r) && (20..30).contains(&c);
                if hole {
                    assert!(
                        got.is_nan(),
                        "({step}, {r}, {c}) is in the missing chunk: {got}"
                    );
                } else {
                    assert_eq!(got, f64::from(t2m(step, r, c)), "({step}, {r}, {c})");
                }
            }
        }
    }
    // Rows 15..17 × columns 19..21 straddle the hole's corner: only (15, 20) is in it.
    let subset = source
        .read_subset("t2m", &[1..2, 15..17, 19..21])
        .expect("read_subset");
    assert_eq!(subset[0], t2m(1, 15, 19));
    assert!(subset[1].is_nan(), "{subset:?}");
    assert_eq!(subset[2..], [t2m(1, 16, 19), t2m(1, 16, 20)]);
}

#[test]
fn unknown_variables_are_named_with_the_available_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = writer_store(&dir.path().join("names.zarr"));
    let source = open(&path);
    let request = TileRequest {
        step: 0,
        region: RegionKey { row: 0, col: 0 },
        window: TileWindow {
            row0: 0,
            rows: 8,
            col0: 0,
            cols: 10,
        },
    };
    let errors = [
        source.read_all("ivt").map(drop).unwrap_err(),
        source
            .read_subset("ivt", &[0..1, 0..1, 0..1])
            .map(drop)
            .unwrap_err(),
        source.read_tile("ivt", &request).map(drop).unwrap_err(),
        source.regions("ivt").map(drop).unwrap_err(),
        source.shape("ivt").map(drop).unwrap_err(),
        source.attribute("ivt", "units").map(drop).unwrap_err(),
    ];
    for err in errors {
        let err = err.to_string();
        assert!(
            err.contains("\"ivt\"") && err.contains("t2m") && err.contains("u10"),
            "the error should name \"ivt\" and list t2m and u10: {err}"
        );
        assert!(
            err.contains(&path.display().to_string()),
            "names the store: {err}"
        );
    }
}

#[test]
fn a_time_value_past_any_date_is_refused_naming_the_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = writer_store(&dir.path().join("far_future.zarr"));
    let store = std::sync::Arc::new(zarrs::filesystem::FilesystemStore::new(&path).expect("store"));
    let time = zarrs::array::Array::open(store, "/time").expect("time array");
    // 2.3e18 hours after 1900: a corrupt or misencoded value, not a date.
    time.store_chunk(&[0], &[0i64, 6, i64::MAX / 4][..])
        .expect("rewrite time");
    let err = ZarrSource::open(path.to_str().expect("UTF-8 path"))
        .expect_err("refused at open")
        .to_string();
    assert!(
        err.contains(&path.display().to_string())
            && err.contains("time")
            && err.contains("time step 2 (2305843009213694000 hours since 1900-01-01"),
        "{err}"
    );
}

#[test]
fn out_of_range_requests_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = writer_store(&dir.path().join("range.zarr"));
    let source = open(&path);
    let window = |row0, rows, col0, cols| TileWindow {
        row0,
        rows,
        col0,
        cols,
    };
    let region = RegionKey { row: 0, col: 0 };
    let tiles = [
        ("step past the time axis", NT, window(0, 8, 0, 10)),
        ("step u64::MAX", u64::MAX, window(0, 8, 0, 10)),
        ("rows past the grid", 0, window(16, 8, 0, 10)),
        ("columns past the grid", 0, window(0, 8, 30, 10)),
        ("empty window", 0, window(0, 0, 0, 0)),
        ("window at usize::MAX", 0, window(usize::MAX, 1, 0, 1)),
    ];
    let subsets: [(&str, Vec<Range<u64>>); 4] = [
        ("subset past the end", vec![0..1, 0..20, 0..36]),
        ("two ranges for three dimensions", vec![0..1, 0..19]),
        (
            "reversed range",
            vec![0..1, Range { start: 5, end: 2 }, 0..36],
        ),
        ("start past the end", vec![3..4, 0..1, 0..1]),
    ];
    let mut failures = Vec::new();
    for (what, step, window) in tiles {
        let request = TileRequest {
            step,
            region,
            window,
        };
        match catch_unwind(AssertUnwindSafe(|| source.read_tile("t2m", &request))) {
            Ok(Err(_)) => {}
            Ok(Ok(tile)) => failures.push(format!(
                "{what}: read_tile returned {} values",
                tile.values.len()
            )),
            Err(panic) => {
                failures.push(format!("{what}: read_tile panicked: {}", message(&*panic)))
            }
        }
    }
    for (what, ranges) in subsets {
        match catch_unwind(AssertUnwindSafe(|| source.read_subset("t2m", &ranges))) {
            Ok(Err(_)) => {}
            Ok(Ok(values)) => failures.push(format!(
                "{what}: read_subset {ranges:?} returned {} values",
                values.len()
            )),
            Err(panic) => failures.push(format!(
                "{what}: read_subset {ranges:?} panicked: {}",
                message(&*panic)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "out-of-range requests must be refused with an error:\n  {}",
        failures.join("\n  ")
    );
}

fn message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

// ---- Metadata mutations -------------------------------------------------------------------------
//
// The mutants run in a child process (this test binary again, running the ignored test
// `metadata_fuzz_worker`) under a 4 GiB address-space limit, so that a mutant that aborts the
// process (a failed allocation for an absurd shape) or hangs is reported as such instead of taking
// the test run, or the machine, with it. Within the child each mutant runs under `catch_unwind`.

/// Where the parent put the pristine stores (set for the child).
const FUZZ_DIR_ENV: &str = "ISOTACH_ZARR_FUZZ_DIR";
/// The first mutant the child runs (after a crash the parent restarts past it).
const FUZZ_START_ENV: &str = "ISOTACH_ZARR_FUZZ_START";
const FUZZ_SEED: u64 = 0x1507_AC40;
/// The stores written by the fixture script for the fuzz (with the `ZarrWriter` store).
const FUZZ_FIXTURES: &str = "cf_v2,cf_v3,v3_sharded_blosc";
/// Child processes started before giving up (each crash or hang costs one).
const MAX_WORKER_RUNS: usize = 12;
/// A mutant that runs longer than this is reported as a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// One mutated metadata file.
struct Mutant {
    store: PathBuf,
    /// The file, relative to the store.
    file: PathBuf,
    what: String,
    bytes: Vec<u8>,
}

/// The pristine stores under the fuzz folder, in a fixed order.
fn fuzz_stores(root: &Path) -> Vec<PathBuf> {
    let mut stores = vec![root.join("writer.zarr")];
    stores.extend(
        FUZZ_FIXTURES
            .split(',')
            .map(|name| root.join(format!("{name}.zarr"))),
    );
    stores
}

/// Metadata files of a store (relative paths), sorted.
fn metadata_files(store: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, store: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("list store") {
            let path = entry.expect("store entry").path();
            if path.is_dir() {
                walk(&path, store, out);
            } else if matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some("zarr.json" | ".zarray" | ".zattrs" | ".zgroup" | ".zmetadata")
            ) {
                out.push(
                    path.strip_prefix(store)
                        .expect("inside the store")
                        .to_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(store, store, &mut out);
    out.sort();
    out
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every node below the root, as a path of keys and indices.
fn json_paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                out.push(prefix.clone());
                json_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                json_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!("/{k}"),
            Step::Index(i) => format!("/{i}"),
        })
        .collect()
}

fn node_mut<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// Wrong types, negative, zero, huge and fractional numbers, empty and odd containers.
fn replacements() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(""),
        json!("x"),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1u64 << 40),
        json!(1e308),
        json!(-1e308),
        json!([]),
        json!({}),
        json!([-1]),
        json!(["x"]),
        json!([u64::MAX, u64::MAX, u64::MAX]),
        json!([0, 0, 0]),
        json!({"name": "x", "configuration": {}}),
    ]
}

/// At most `cap` items of `items`, chosen by `rng`, in their original order.
fn sample<T>(items: Vec<T>, cap: usize, rng: &mut support::SplitMix64) -> Vec<T> {
    if items.len() <= cap {
        return items;
    }
    let mut keep = vec![false; items.len()];
    let mut kept = 0;
    while kept < cap {
        let i = rng.below(items.len());
        if !keep[i] {
            keep[i] = true;
            kept += 1;
        }
    }
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, k)| k.then_some(item))
        .collect()
}

/// The mutants of every metadata file of every store, in a fixed order.
fn mutants(stores: &[PathBuf]) -> Vec<Mutant> {
    let mut rng = support::SplitMix64(FUZZ_SEED);
    let replacements = replacements();
    let mut out = Vec::new();
    for store in stores {
        for file in metadata_files(store) {
            let original = std::fs::read(store.join(&file)).expect("metadata file");
            let mut seen = std::collections::HashSet::new();
            let mut add = |what: String, bytes: Vec<u8>| {
                if bytes != original && seen.insert(bytes.clone()) {
                    out.push(Mutant {
                        store: store.clone(),
                        file: file.clone(),
                        what,
                        bytes,
                    });
                }
            };
            // Truncation every few bytes.
            let stride = (original.len() / 40).max(1);
            for len in (0..original.len()).step_by(stride) {
                add(
                    format!("truncated to {len} bytes"),
                    original[..len].to_vec(),
                );
            }
            // Byte flips and stray structural characters.
            for _ in 0..16 {
                let mut bytes = original.clone();
                let at = rng.below(bytes.len());
                let flip = 1 + rng.below(255) as u8;
                bytes[at] ^= flip;
                add(format!("byte {at} xor {flip:#04x}"), bytes);
            }
            for _ in 0..8 {
                let mut bytes = original.clone();
                let at = rng.below(bytes.len());
                let c = b"{}[]\":,-0e9 \\"[rng.below(13)];
                bytes.insert(at, c);
                add(format!("{:?} inserted at byte {at}", c as char), bytes);
            }
            let Ok(doc) = serde_json::from_slice::<Value>(&original) else {
                continue;
            };
            let mut paths = Vec::new();
            json_paths(&doc, &mut Vec::new(), &mut paths);
            // Deleted keys.
            let keyed: Vec<_> = paths
                .iter()
                .filter(|p| matches!(p.last(), Some(Step::Key(_))))
                .cloned()
                .collect();
            for path in sample(keyed, 40, &mut rng) {
                let mut doc = doc.clone();
                let (last, parent) = path.split_last().expect("a path below the root");
                if let (Step::Key(key), Some(map)) =
                    (last, node_mut(&mut doc, parent).as_object_mut())
                {
                    map.remove(key);
                }
                add(
                    format!("deleted {}", pointer(&path)),
                    serde_json::to_vec_pretty(&doc).expect("JSON"),
                );
            }
            // Values replaced: every node with a few replacements, at most 90 per file.
            let mut replaced = Vec::new();
            for path in &paths {
                for _ in 0..3 {
                    replaced.push((path.clone(), rng.below(replacements.len())));
                }
            }
            for (path, r) in sample(replaced, 90, &mut rng) {
                let mut doc = doc.clone();
                *node_mut(&mut doc, &path) = replacements[r].clone();
                add(
                    format!("{} replaced with {}", pointer(&path), replacements[r]),
                    serde_json::to_vec_pretty(&doc).expect("JSON"),
                );
            }
        }
    }
    out
}

/// Opens the (mutated) store and reads what it advertises; any error is fine.
fn exercise(store: &Path) {
    let Ok(source) = ZarrSource::open(store.to_str().expect("UTF-8 path")) else {
        return;
    };
    let names: Vec<String> = source
        .describe()
        .variables
        .iter()
        .map(|v| v.name.clone())
        .collect();
    for name in names {
        let Ok(shape) = source.shape(&name) else {
            continue;
        };
        let cells = shape.iter().try_fold(1u64, |a, n| a.checked_mul(*n));
        if cells.is_some_and(|n| n <= 1_000_000) {
            let _ = source.read_all(&name);
            if let Ok(regions) = source.regions(&name)
                && let Some(&(region, window)) = regions.first()
            {
                let request = TileRequest {
                    step: 0,
                    region,
                    window,
                };
                let _ = source.read_tile(&name, &request);
            }
        } else {
            // Absurd shapes: one value, not the whole array.
            let ranges: Vec<Range<u64>> = shape.iter().map(|n| 0..(*n).min(1)).collect();
            let _ = source.read_subset(&name, &ranges);
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("list store") {
        let entry = entry.expect("store entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// The child: runs mutants from `$ISOTACH_ZARR_FUZZ_START` on a copy of the stores, printing
/// `fuzz case N` before each, `fuzz panic N: message` for each panic and `fuzz done` at the end.
#[test]
#[ignore = "run by metadata_mutations_never_panic in a child process"]
fn metadata_fuzz_worker() {
    let Some(root) = std::env::var_os(FUZZ_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let start: usize = std::env::var(FUZZ_START_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("$ISOTACH_ZARR_FUZZ_START");
    let stores = fuzz_stores(&root);
    let mutants = mutants(&stores);
    let work = root.join(format!("work-{start}"));
    for store in &stores {
        copy_dir(store, &work.join(store.file_name().expect("store name")));
    }
    let last_panic = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let hook_slot = last_panic.clone();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        // Where it happened outside the standard library: zarrs or the reader.
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        let frames: Vec<&str> = trace
            .lines()
            .filter_map(|l| l.trim().strip_prefix("at "))
            .filter(|l| !l.starts_with("/rustc/") && !l.contains("zarr_bad_input.rs"))
            .take(3)
            .collect();
        *hook_slot.lock().expect("panic slot") = format!(
            "{}{location} (via {})",
            message(info.payload()),
            frames.join(" < ")
        );
    }));
    for (n, mutant) in mutants.iter().enumerate().skip(start) {
        println!("fuzz case {n}");
        let store = work.join(mutant.store.file_name().expect("store name"));
        let file = store.join(&mutant.file);
        let original = std::fs::read(&file).expect("metadata file");
        std::fs::write(&file, &mutant.bytes).expect("write mutant");
        if catch_unwind(AssertUnwindSafe(|| exercise(&store))).is_err() {
            let text = last_panic.lock().expect("panic slot").replace('\n', " ");
            println!("fuzz panic {n}: {text}");
        }
        std::fs::write(&file, original).expect("restore metadata file");
    }
    println!("fuzz done");
}

/// Runs the child from mutant `start`; returns its output and how it ended.
fn run_worker(root: &Path, start: usize) -> (String, String) {
    let log = root.join(format!("worker-{start}.log"));
    let exe = std::env::current_exe().expect("test executable");
    let mut child = Command::new("sh")
        .arg("-c")
        // 4 GiB of address space: an absurd allocation fails fast instead of paging the machine.
        .arg("ulimit -v 4194304 2>/dev/null; exec \"$0\" \"$@\"")
        .arg(exe)
        .args([
            "metadata_fuzz_worker",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FUZZ_DIR_ENV, root)
        .env(FUZZ_START_ENV, start.to_string())
        .env("RUST_BACKTRACE", "0")
        .stdout(std::fs::File::create(&log).expect("worker log"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the fuzz worker");
    // A mutant hangs when the log stops growing (each case prints a line first).
    let (mut progress, mut size) = (Instant::now(), 0);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll worker") {
            break format!("{status}");
        }
        let now = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if now != size {
            (progress, size) = (Instant::now(), now);
        } else if progress.elapsed() > CASE_TIMEOUT {
            child.kill().expect("kill worker");
            child.wait().expect("reap worker");
            break format!("hung: no progress for {CASE_TIMEOUT:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    let tail: String = stderr
        .lines()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" | ");
    (
        std::fs::read_to_string(&log).expect("worker log"),
        format!("{status}; stderr: {tail}"),
    )
}

fn describe(mutant: &Mutant) -> String {
    let text = String::from_utf8_lossy(&mutant.bytes);
    let shown: String = text.chars().take(600).collect();
    format!(
        "{}/{}: {}\n      mutant: {}{}",
        mutant
            .store
            .file_name()
            .expect("store name")
            .to_string_lossy(),
        mutant.file.display(),
        mutant.what,
        shown.split_whitespace().collect::<Vec<_>>().join(" "),
        if text.len() > 600 { " …" } else { "" }
    )
}

#[test]
fn metadata_mutations_never_panic() {
    let dir = tempfile::Builder::new()
        .prefix("zarr-fuzz-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path();
    writer_store(&root.join("writer.zarr"));
    support::run_script(
        "make_zarr_fixtures.py",
        &[root.as_os_str(), "--only".as_ref(), FUZZ_FIXTURES.as_ref()],
    );
    let stores = fuzz_stores(root);
    for store in &stores {
        exercise(store); // The pristine stores read (under this process's panic handling).
        open(store);
    }
    let mutants = mutants(&stores);
    assert!(mutants.len() >= 2000, "only {} mutants", mutants.len());

    let mut failures = Vec::new();
    let mut start = 0;
    let mut runs = 0;
    loop {
        runs += 1;
        let (log, status) = run_worker(root, start);
        let mut last_case = None;
        let mut done = false;
        for line in log.lines() {
            if let Some(n) = line.strip_prefix("fuzz case ") {
                last_case = n.parse::<usize>().ok();
            } else if let Some(rest) = line.strip_prefix("fuzz panic ") {
                let (n, text) = rest.split_once(": ").expect("worker output");
                let n: usize = n.parse().expect("mutant number");
                failures.push(format!(
                    "mutant {n} panicked: {text}\n    {}",
                    describe(&mutants[n])
                ));
            } else if line == "fuzz done" {
                done = true;
            }
        }
        if done {
            break;
        }
        match last_case {
            Some(n) => {
                failures.push(format!(
                    "mutant {n} killed the process ({status})\n    {}",
                    describe(&mutants[n])
                ));
                start = n + 1;
            }
            None => panic!("the fuzz worker ran no mutant ({status})\n{log}"),
        }
        if start >= mutants.len() || runs >= MAX_WORKER_RUNS {
            if start < mutants.len() {
                failures.push(format!(
                    "stopped after {runs} crashed workers; mutants {start}.. not run"
                ));
            }
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} metadata mutants panicked or crashed ZarrSource (it must return errors):\n  {}",
        failures.len(),
        mutants.len(),
        failures.join("\n  ")
    );
}
