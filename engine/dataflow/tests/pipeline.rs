//! The streamed, sharded pipeline gives exactly what a from-scratch computation gives, whatever the
//! number of workers, and its differential statistics equal statistics of the whole field.

mod support;

use std::sync::Arc;

use isotach_connectors::{Source, ZarrSource};
use isotach_core::{Field, PipelineSpec, TileValues};
use isotach_engine::operators::TilePartial;
use isotach_engine::{RunConfig, RunReport, run_pipeline};
use isotach_synth::{SynthConfig, generate};

fn spec(uri: &str, time: &str) -> PipelineSpec {
    PipelineSpec::from_toml_str(&format!(
        r#"
        name = "t"
        [source]
        uri = "{uri}"
        variables = ["ivt_u", "ivt_v"]
        {time}
        [[step]]
        op = "magnitude"
        inputs = ["ivt_u", "ivt_v"]
        output = "ivt"
        [[sink]]
        kind = "frames"
        path = "unused"
        layers = [{{ variable = "ivt" }}]
        "#
    ))
    .expect("spec")
}

fn run(source: &Arc<ZarrSource>, spec: &PipelineSpec, workers: usize) -> (RunReport, Vec<Field>) {
    let config = RunConfig {
        workers,
        max_steps_in_flight: 2,
        ..RunConfig::default()
    };
    let (report, fields) = support::run_collecting(source.clone(), spec, config);
    (report.expect("run"), fields)
}

#[test]
fn sharded_dataflow_equals_from_scratch_for_any_worker_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.zarr");
    generate(
        &SynthConfig {
            resolution_deg: 3.0,
            steps: 6,
            ..Default::default()
        },
        &path,
    )
    .expect("generate");
    let uri = path.to_str().expect("utf-8").to_owned();
    let source = Arc::new(ZarrSource::open(&uri).expect("open"));
    let (nlat, nlon) = source.describe().grid.shape();
    let spec = spec(&uri, "");

    let (one_report, one) = run(&source, &spec, 1);
    assert_eq!(one.len(), 6);
    assert_eq!(one_report.tiles_read, 6 * 16 * 2);
    for field in &one {
        let s = field.step;
        let u = source
            .read_subset("ivt_u", &[s..s + 1, 0..nlat as u64, 0..nlon as u64])
            .expect("u");
        let v = source
            .read_subset("ivt_v", &[s..s + 1, 0..nlat as u64, 0..nlon as u64])
            .expect("v");
        let expected: Vec<f32> = u
            .iter()
            .zip(&v)
            .map(|(a, b)| (a * a + b * b).sqrt())
            .collect();
        assert_eq!(field.values.len(), expected.len());
        assert!(
            field
                .values
                .iter()
                .zip(&expected)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "step {s}: streamed IVT differs from the direct computation"
        );
        assert_eq!(field.time, source.describe().time.times[s as usize]);
        assert_eq!(field.units, "kg m-1 s-1");

        // The differential statistics equal those of the whole field computed at once.
        let whole = isotach_core::Tile {
            variable: "ivt".into(),
            units: field.units.clone(),
            step: s,
            region: isotach_core::RegionKey { row: 0, col: 0 },
            window: isotach_core::TileWindow {
                row0: 0,
                rows: nlat,
                col0: 0,
                cols: nlon,
            },
            lat_bounds: [90.0, -90.0],
            lon_bounds: [0.0, 357.0],
            values: TileValues::from_vec(field.values.clone()),
        };
        let p = TilePartial::of(&whole, &source.describe().grid).expect("finite values");
        let stats = one_report
            .stats
            .iter()
            .find(|st| st.step == s)
            .expect("stats for every step");
        assert_eq!(stats.max, p.max_centi as f64 / 100.0);
        assert_eq!(stats.valid_cells, (nlat * nlon) as u64);
        assert_eq!(stats.mean, p.weighted_sum as f64 / p.area as f64 / 100.0);
    }

    for workers in [2, 3] {
        let (report, many) = run(&source, &spec, workers);
        assert_eq!(
            report.stats, one_report.stats,
            "{workers} workers: statistics differ"
        );
        assert_eq!(many, one, "{workers} workers: fields differ from 1 worker");
    }
}

#[test]
fn time_range_selects_exactly_those_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.zarr");
    generate(
        &SynthConfig {
            resolution_deg: 6.0,
            steps: 8,
            ..Default::default()
        },
        &path,
    )
    .expect("generate");
    let uri = path.to_str().expect("utf-8").to_owned();
    let source = Arc::new(ZarrSource::open(&uri).expect("open"));
    let spec = spec(
        &uri,
        r#"time = { start = "2017-01-01T12:00:00Z", end = "2017-01-02T00:00:00Z" }"#,
    );
    let (report, fields) = run(&source, &spec, 2);
    assert_eq!(
        fields.iter().map(|f| f.step).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(report.steps, 3);
}

#[test]
fn a_corrupt_chunk_fails_the_job_naming_store_array_and_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.zarr");
    generate(
        &SynthConfig {
            resolution_deg: 6.0,
            steps: 3,
            ..Default::default()
        },
        &path,
    )
    .expect("generate");
    std::fs::write(path.join("ivt_v/c/1/2/3"), b"definitely not blosc").expect("corrupt a chunk");
    let uri = path.to_str().expect("utf-8").to_owned();
    let source = Arc::new(ZarrSource::open(&uri).expect("open"));
    let pipeline = spec(&uri, "").validate(source.describe()).expect("valid");
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let drain = std::thread::spawn(move || while rx.blocking_recv().is_some() {});
    let err = run_pipeline(&pipeline, source, RunConfig::default(), tx)
        .expect_err("corrupt chunk must fail");
    drain.join().expect("drain");
    let text = err.to_string();
    assert!(
        text.contains(&uri) && text.contains("array ivt_v") && text.contains("chunk [1, 2, 3]"),
        "{text}"
    );
}
