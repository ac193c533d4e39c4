//! Reads stores that zarr-python 3 and xarray wrote (`scripts/interop/make_zarr_fixtures.py`) and
//! compares every array, value for value, with what `xarray.open_zarr` decodes from the same store:
//! CF-decoded numbers (fill values and `missing_value` → NaN, packed integers unpacked), the time
//! axis as instants, the data variables and their dimensions. One test per layout family, so that
//! a failure names the family; each reports every mismatching store and array at once.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use isotach_connectors::{Source, TileRequest, ZarrSource};
use serde::Deserialize;

/// `manifest.json` as the fixture script writes it.
#[derive(Debug, Deserialize)]
struct Manifest {
    stores: Vec<Store>,
}

#[derive(Debug, Deserialize)]
struct Store {
    name: String,
    path: String,
    family: String,
    format: u8,
    consolidated: bool,
    codec: String,
    readable: bool,
    #[serde(default)]
    arrays: Vec<ArrayEntry>,
    #[serde(default)]
    variables: Vec<VariableEntry>,
    time: Option<TimeEntry>,
    unreadable: Option<Unreadable>,
}

#[derive(Debug, Deserialize)]
struct ArrayEntry {
    name: String,
    role: String,
    dims: Vec<String>,
    shape: Vec<u64>,
    dtype: String,
    packed: bool,
    nan_count: usize,
    expected: String,
}

#[derive(Debug, Deserialize)]
struct VariableEntry {
    name: String,
    dims: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct TimeEntry {
    instants: Vec<String>,
    calendar: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Unreadable {
    array: String,
    codec: String,
}

struct Fixtures {
    /// Kept for the life of the test process; the folder lies under `target/tmp`.
    _dir: tempfile::TempDir,
    root: PathBuf,
    manifest: Manifest,
}

/// Writes the fixtures once per test binary.
fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("zarr-interop-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temporary folder under target/tmp");
        support::run_script("make_zarr_fixtures.py", &[dir.path().as_os_str()]);
        let text = std::fs::read_to_string(dir.path().join("manifest.json"))
            .expect("the fixture script writes manifest.json");
        let manifest: Manifest = serde_json::from_str(&text).expect("manifest.json parses");
        Fixtures {
            root: dir.path().to_owned(),
            _dir: dir,
            manifest,
        }
    })
}

fn stores(family: &str) -> Vec<&'static Store> {
    let found: Vec<_> = fixtures()
        .manifest
        .stores
        .iter()
        .filter(|s| s.family == family)
        .collect();
    assert!(
        !found.is_empty(),
        "the manifest has no store of family {family}"
    );
    found
}

fn read_f64_file(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

/// xarray's dimension names as the reader reports them (`latitude` → `lat`, `longitude` → `lon`).
fn canonical_dim(dim: &str) -> &str {
    match dim {
        "latitude" => "lat",
        "longitude" => "lon",
        d => d,
    }
}

/// Equal as xarray shows them: bitwise (so -0.0 ≠ 0.0), or both NaN; packed integers unpacked
/// within 1e-6 of the value.
fn same(got: f64, expected: f64, packed: bool) -> bool {
    if expected.is_nan() || got.is_nan() {
        return expected.is_nan() && got.is_nan();
    }
    if packed {
        (got - expected).abs() <= 1e-6 * expected.abs()
    } else {
        got.to_bits() == expected.to_bits()
    }
}

/// Compares two series and describes the first few differences.
fn compare(what: &str, got: &[f64], expected: &[f64], packed: bool, failures: &mut Vec<String>) {
    if got.len() != expected.len() {
        failures.push(format!(
            "{what}: {} values, expected {}",
            got.len(),
            expected.len()
        ));
        return;
    }
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| !same(got[i], expected[i], packed))
        .collect();
    if let Some(&first) = bad.first() {
        let examples: Vec<String> = bad
            .iter()
            .take(4)
            .map(|&i| format!("[{i}] got {} expected {}", got[i], expected[i]))
            .collect();
        let nan_got = got.iter().filter(|v| v.is_nan()).count();
        let nan_expected = expected.iter().filter(|v| v.is_nan()).count();
        failures.push(format!(
            "{what}: {} of {} values differ from xarray (first at flat index {first}; NaN: got \
             {nan_got}, expected {nan_expected}): {}",
            bad.len(),
            got.len(),
            examples.join(", ")
        ));
    }
}

/// Everything that differs between the reader and xarray for one store.
fn check_store(store: &Store) -> Vec<String> {
    let root = &fixtures().root;
    let label = format!(
        "store {} (v{}, {}, {})",
        store.name,
        store.format,
        store.codec,
        if store.consolidated {
            "consolidated"
        } else {
            "unconsolidated"
        }
    );
    let mut failures = Vec::new();
    assert!(store.readable, "{label} is not meant to be readable");
    let path = root.join(&store.path);
    let source = match ZarrSource::open(path.to_str().expect("UTF-8 path")) {
        Ok(source) => source,
        Err(e) => return vec![format!("{label}: open failed: {e}")],
    };
    let info = source.describe();

    let time = store
        .time
        .as_ref()
        .expect("readable stores list their instants");
    let expected_times: Vec<DateTime<Utc>> = time
        .instants
        .iter()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .expect("ISO-8601 instant in the manifest")
                .to_utc()
        })
        .collect();
    if info.time.times != expected_times {
        failures.push(format!(
            "{label}: time axis {:?}, xarray shows {:?} (calendar {:?})",
            info.time
                .times
                .iter()
                .map(|t| t.to_rfc3339())
                .collect::<Vec<_>>(),
            time.instants,
            time.calendar
        ));
    }

    let got_vars: Vec<(String, Vec<String>)> = info
        .variables
        .iter()
        .map(|v| (v.name.clone(), v.dims.clone()))
        .collect();
    let expected_vars: Vec<(String, Vec<String>)> = store
        .variables
        .iter()
        .map(|v| {
            let dims = v.dims.iter().map(|d| canonical_dim(d).to_owned()).collect();
            (v.name.clone(), dims)
        })
        .collect();
    if got_vars != expected_vars {
        failures.push(format!(
            "{label}: variables {got_vars:?}, xarray shows {expected_vars:?}"
        ));
    }

    for array in &store.arrays {
        let what = format!("{label}: array {} ({})", array.name, array.dtype);
        let expected = read_f64_file(&root.join(&array.expected));
        assert_eq!(
            expected.len() as u64,
            array.shape.iter().product::<u64>(),
            "{what}: the expected file does not match the manifest's shape"
        );
        match source.shape(&array.name) {
            Ok(shape) if shape == array.shape => {}
            Ok(shape) => failures.push(format!(
                "{what}: shape {shape:?}, expected {:?}",
                array.shape
            )),
            Err(e) => failures.push(format!("{what}: shape: {e}")),
        }
        match source.read_all(&array.name) {
            Ok(values) => compare(
                &format!("{what}: read_all"),
                &values,
                &expected,
                array.packed,
                &mut failures,
            ),
            Err(e) => failures.push(format!("{what}: read_all failed: {e}")),
        }
        if array.role == "data" && array.dims.len() == 3 {
            check_tiles(&source, array, &expected, &what, &mut failures);
        }
    }
    failures
}

/// Every tile of every step, through the `Source` trait as the engine reads them (f32).
fn check_tiles(
    source: &ZarrSource,
    array: &ArrayEntry,
    expected: &[f64],
    what: &str,
    failures: &mut Vec<String>,
) {
    let regions = match source.regions(&array.name) {
        Ok(regions) => regions,
        Err(e) => {
            failures.push(format!("{what}: regions failed: {e}"));
            return;
        }
    };
    let (rows, cols) = (array.shape[1] as usize, array.shape[2] as usize);
    let covered: usize = regions.iter().map(|(_, w)| w.rows * w.cols).sum();
    if covered != rows * cols {
        failures.push(format!(
            "{what}: regions cover {covered} cells, the grid has {}",
            rows * cols
        ));
    }
    for step in 0..array.shape[0] {
        for (region, window) in &regions {
            let request = TileRequest {
                step,
                region: *region,
                window: *window,
            };
            let tile = match source.read_tile(&array.name, &request) {
                Ok(tile) => tile,
                Err(e) => {
                    // One tile names the problem; the rest would repeat it.
                    failures.push(format!("{what}: read_tile {request:?} failed: {e}"));
                    return;
                }
            };
            let got: Vec<f64> = tile
                .values
                .as_slice()
                .iter()
                .map(|v| f64::from(*v))
                .collect();
            let mut want = Vec::with_capacity(window.rows * window.cols);
            for r in window.row0..window.row0 + window.rows {
                let start = (step as usize * rows + r) * cols + window.col0;
                want.extend(
                    expected[start..start + window.cols]
                        .iter()
                        .map(|v| f64::from(*v as f32)),
                );
            }
            let before = failures.len();
            compare(
                &format!("{what}: tile step {step} {window:?}"),
                &got,
                &want,
                array.packed,
                failures,
            );
            if failures.len() > before {
                return;
            }
        }
    }
}

fn check_family(family: &str) -> Vec<&'static Store> {
    let stores = stores(family);
    let failures: Vec<String> = stores.iter().flat_map(|s| check_store(s)).collect();
    assert!(
        failures.is_empty(),
        "{} problem(s) reading {family} stores as xarray does:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    stores
}

fn array<'a>(store: &'a Store, name: &str) -> &'a ArrayEntry {
    store
        .arrays
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("store {} has no array {name}", store.name))
}

#[test]
fn v2_blosc_every_compressor_and_shuffle() {
    let stores = check_family("v2_blosc");
    for cname in ["lz4", "zstd", "blosclz"] {
        for shuffle in ["shuffle", "bitshuffle", "noshuffle"] {
            let name = format!("v2_blosc_{cname}_{shuffle}");
            assert!(stores.iter().any(|s| s.name == name), "no fixture {name}");
        }
    }
}

#[test]
fn v2_zstd_gzip_zlib_bz2_and_uncompressed() {
    let stores = check_family("v2_compressors");
    assert_eq!(stores.len(), 5);
}

#[test]
fn v2_big_endian_and_fortran_order() {
    let stores = check_family("v2_layout");
    let layout = stores[0];
    assert_eq!(array(layout, "t2m_be").dtype, "float32");
    assert_eq!(array(layout, "z_be").dtype, "int16");
    assert!(stores.iter().any(|s| s.consolidated) && stores.iter().any(|s| !s.consolidated));
}

#[test]
fn v3_zstd_checksums_blosc_gzip_bz2_and_uncompressed() {
    let stores = check_family("v3_codecs");
    assert!(stores.len() >= 8);
}

#[test]
fn v3_sharding_indexed_with_zstd_and_blosc_inside() {
    assert_eq!(check_family("v3_sharding").len(), 2);
}

#[test]
fn v3_transpose_and_big_endian_bytes() {
    let stores = check_family("v3_layout");
    assert!(stores.iter().any(|s| s.consolidated) && stores.iter().any(|s| !s.consolidated));
}

#[test]
fn cf_fill_values_packing_missing_value_calendars_and_axes() {
    let stores = check_family("cf");
    // The fixtures exercise what they claim: masked values, packing, both calendars.
    for store in &stores {
        for name in ["t2m", "sp", "tp"] {
            assert!(array(store, name).nan_count > 0, "{}: {name}", store.name);
        }
        assert!(array(store, "sp").packed, "{}: sp", store.name);
    }
    let calendars: Vec<_> = stores
        .iter()
        .filter_map(|s| s.time.as_ref()?.calendar.clone())
        .collect();
    assert!(calendars.iter().any(|c| c == "noleap"), "{calendars:?}");
    assert!(calendars.iter().any(|c| c == "standard"), "{calendars:?}");
}

#[test]
fn missing_chunks_and_shards_read_as_nan() {
    let stores = check_family("missing_chunk");
    for store in &stores {
        assert!(array(store, "t2m").nan_count > 0, "{}", store.name);
    }
}

#[test]
fn unsupported_codecs_are_refused_naming_codec_and_array() {
    let root = &fixtures().root;
    let mut failures = Vec::new();
    for store in stores("unreadable") {
        let Unreadable { array, codec } = store
            .unreadable
            .as_ref()
            .expect("unreadable stores say why");
        let path = root.join(&store.path);
        let error = match ZarrSource::open(path.to_str().expect("UTF-8 path")) {
            Err(e) => e.to_string(),
            Ok(source) => match source.read_all(array) {
                Err(e) => e.to_string(),
                Ok(values) => {
                    failures.push(format!(
                        "store {} ({}): array {array} read {} values; expected an error naming \
                         {codec}",
                        store.name,
                        store.codec,
                        values.len()
                    ));
                    continue;
                }
            },
        };
        println!("{} ({}): {error}", store.name, store.codec);
        let lower = error.to_lowercase();
        if !lower.contains(codec.as_str()) || !error.contains(array.as_str()) {
            failures.push(format!(
                "store {} ({}): the error should name codec {codec:?} and array {array:?}: {error}",
                store.name, store.codec
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
