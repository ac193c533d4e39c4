//! Shared by the connector tests: the Python environment that writes interop fixtures with the
//! scientists' own tools (zarr-python, xarray, netCDF4), built by `scripts/test.sh`.
#![allow(dead_code)]

pub mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use isotach_connectors::{VariableLayout, ZarrWriter};
use isotach_core::{CfTimeUnits, TimeAxis};
use serde_json::{Map, json};

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("connectors/ sits in the workspace root")
        .to_path_buf()
}

/// The interpreter of the test environment: `$ISOTACH_PYTHON`, else `.venv/bin/python`. Missing,
/// the test fails saying how to build it; interop tests never skip.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("ISOTACH_PYTHON") {
        return path.into();
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run ./scripts/test.sh once (it builds the Python environment of the \
         interop tests), or set ISOTACH_PYTHON",
        venv.display()
    );
    venv
}

/// Runs a script under `scripts/interop/` with arguments, failing the test with its stderr.
pub fn run_script(script: &str, args: &[&std::ffi::OsStr]) {
    let path = workspace_root().join("scripts/interop").join(script);
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python().display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}",
        path.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A small CF store written by Isotach: 3 steps of a 19 × 36 field in 3 × 4 chunks, with NaNs; consolidated or not.
pub fn write_store(path: &Path, consolidated: bool) {
    write_store_with(path, 3, [1, 7, 10], consolidated);
}

/// The value [`write_store_with`] stores at flat index `k` (row-major, 19 × 36) of `step`.
pub fn ivt_value(step: u64, k: usize) -> f32 {
    match k % 97 {
        0 => f32::NAN,
        _ => (k as f32 * 0.37 + step as f32 * 11.0).sin() * 400.0 + 500.0,
    }
}

/// Latitudes (descending, 90 to -90 by 10) and longitudes (0 to 350 by 10) of the test stores.
pub fn test_grid() -> (Vec<f64>, Vec<f64>) {
    let lat: Vec<f64> = (0..19).map(|i| 90.0 - 10.0 * i as f64).collect();
    let lon: Vec<f64> = (0..36).map(|j| 10.0 * j as f64).collect();
    (lat, lon)
}

/// The coordinates of a store of `steps` 6-hourly steps on [`test_grid`], without variables.
pub fn write_coordinates(path: &Path, steps: usize) -> ZarrWriter {
    let writer = ZarrWriter::create(path, Map::new()).expect("create store");
    let (lat, lon) = test_grid();
    writer
        .write_coordinate("lat", &lat, json_map(json!({"units": "degrees_north"})))
        .expect("lat");
    writer
        .write_coordinate("lon", &lon, json_map(json!({"units": "degrees_east"})))
        .expect("lon");
    let start: DateTime<Utc> = "2017-02-05T00:00:00Z".parse().expect("date");
    let epoch: DateTime<Utc> = "1900-01-01T00:00:00Z".parse().expect("date");
    writer
        .write_time(
            &TimeAxis::regular(start, 6, steps),
            CfTimeUnits::hours_since(epoch),
            Map::new(),
        )
        .expect("time");
    writer
}

/// A store like [`write_store`] with `steps` steps of `ivt` ([`ivt_value`]) in chunks of
/// `chunks` (time, lat, lon).
pub fn write_store_with(path: &Path, steps: u64, chunks: [u64; 3], consolidated: bool) {
    let writer = write_coordinates(path, steps as usize);
    let layout = VariableLayout {
        dims: vec!["time".into(), "lat".into(), "lon".into()],
        shape: vec![steps, 19, 36],
        chunks: chunks.to_vec(),
    };
    let variable = writer
        .create_variable("ivt", &layout, json_map(json!({"units": "kg m-1 s-1"})))
        .expect("variable");
    for step in 0..steps {
        let values: Vec<f32> = (0..19 * 36).map(|k| ivt_value(step, k)).collect();
        variable.write_step(step, &values).expect("write step");
    }
    if consolidated {
        writer.consolidate().expect("consolidate");
    }
}

pub fn json_map(value: serde_json::Value) -> Map<String, serde_json::Value> {
    value.as_object().cloned().unwrap_or_default()
}

pub fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// Deterministic pseudo-random numbers for mutation tests: SplitMix64 (Steele, Lea, Flood 2014).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
