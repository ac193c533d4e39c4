//! Streams a store several times larger than the memory the run may use, behind a deliberately
//! slow consumer: the source is held back (backpressure) and the process's peak memory stays far
//! below the store's size. Its own test binary, so the peak belongs to this run alone.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use isotach_connectors::{FieldStoreLayout, ReadOptions, Source, ZarrFieldSink, ZarrSource};
use isotach_core::{Field, LatLonGrid, PipelineSpec};
use isotach_engine::{RunConfig, run_pipeline};

const STEPS: usize = 160;
const MAX_STEPS_IN_FLIGHT: u64 = 2;
const CHANNEL: usize = 2;

/// Peak resident memory of this process so far, bytes (Linux `VmHWM`).
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM value");
    kib * 1024
}

/// Writes a (time, lat, lon) store of two noisy variables, one step at a time: noise keeps the
/// chunks near their raw size, so the store is as big on disk as in memory.
fn write_store(path: &std::path::Path, grid: &LatLonGrid) -> u64 {
    let start: DateTime<Utc> = "2020-01-01T00:00:00Z".parse().expect("time");
    let times: Vec<_> = (0..STEPS)
        .map(|i| start + chrono::Duration::hours(6 * i as i64))
        .collect();
    let layout = FieldStoreLayout {
        grid: grid.clone(),
        times: times.clone(),
        first_step: 0,
        variables: ["u", "v"]
            .map(|n| (n.to_owned(), "m s-1".to_owned(), n.to_owned()))
            .to_vec(),
    };
    let sink = ZarrFieldSink::create(path, &layout, Default::default()).expect("store");
    let grid = Arc::new(grid.clone());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut bytes = 0;
    for (step, time) in times.iter().enumerate() {
        for variable in ["u", "v"] {
            let values: Vec<f32> = (0..grid.len())
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 * 40.0 - 20.0
                })
                .collect();
            bytes += values.len() as u64 * 4;
            sink.write(&Field {
                variable: variable.to_owned(),
                units: "m s-1".to_owned(),
                long_name: variable.to_owned(),
                step: step as u64,
                time: *time,
                grid: grid.clone(),
                values,
            })
            .expect("write step");
        }
    }
    bytes
}

#[test]
fn a_store_larger_than_memory_streams_in_bounded_memory_behind_a_slow_consumer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.zarr");
    let grid = LatLonGrid::regular(0.5);
    let store_bytes = write_store(&path, &grid);
    let source = Arc::new(ZarrSource::open(path.to_str().expect("utf-8 path")).expect("open"));
    let spec = PipelineSpec::from_toml_str(&format!(
        r#"
        name = "big"
        [source]
        uri = "{}"
        variables = ["u", "v"]
        [[step]]
        op = "magnitude"
        inputs = ["u", "v"]
        output = "speed"
        [[sink]]
        kind = "frames"
        path = "unused"
        layers = [{{ variable = "speed" }}]
        "#,
        path.display()
    ))
    .expect("spec");
    let pipeline = spec.validate(source.describe()).expect("valid");
    let field_bytes = grid.len() as u64 * 4;
    let budget_bytes = 16 << 20;
    let config = RunConfig {
        workers: 2,
        max_steps_in_flight: MAX_STEPS_IN_FLIGHT,
        read: ReadOptions {
            concurrency: 2,
            memory_budget_bytes: budget_bytes,
        },
        ..RunConfig::default()
    };
    let progress = config.progress.clone();
    let baseline = peak_rss_bytes();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Field>(CHANNEL);
    let consumer = std::thread::spawn(move || {
        let mut received = 0u64;
        let mut most_ahead = 0u64;
        while rx.blocking_recv().is_some() {
            received += 1;
            // The slow sink: a display that takes 5 ms per frame.
            std::thread::sleep(Duration::from_millis(5));
            let read_steps = progress
                .snapshot()
                .stages
                .iter()
                .find(|s| s.name == "read")
                // Two variables, one chunk (so one tile) each per step.
                .map_or(0, |s| s.done / 2);
            most_ahead = most_ahead.max(read_steps.saturating_sub(received));
        }
        (received, most_ahead)
    });
    let report = run_pipeline(&pipeline, source.clone(), config, tx).expect("run");
    let (received, most_ahead) = consumer.join().expect("consumer");
    let grown = peak_rss_bytes().saturating_sub(baseline);

    assert_eq!(received, STEPS as u64);
    assert_eq!(report.fields, STEPS);
    // Steps read but not yet consumed: those in flight, those in the channel, and the one the
    // consumer holds; never the whole store.
    let allowed_ahead = MAX_STEPS_IN_FLIGHT + CHANNEL as u64 + 2;
    assert!(
        most_ahead <= allowed_ahead,
        "the source ran {most_ahead} steps ahead of a slow consumer (allowed {allowed_ahead})"
    );
    // Tiles in flight, fields being assembled and sent, the read budget: a few dozen fields,
    // far below the store.
    let allowed = budget_bytes + 40 * field_bytes;
    assert!(
        store_bytes > 4 * allowed,
        "the store ({store_bytes} B) must dwarf the allowance ({allowed} B) for this test to mean anything"
    );
    assert!(
        grown < allowed,
        "peak memory grew by {grown} B while streaming a {store_bytes} B store (allowed {allowed} B)"
    );
}
