//! `anomaly` against a climatology read from a store: the store xarray writes for
//! `da.groupby("time.month").mean()` gives, streamed on any number of workers and through a
//! region box, exactly xarray's `da.groupby("time.month") - climatology`; a climatology that does
//! not fit the run is refused before any work, naming what does not fit.

mod support;

use std::sync::Arc;

use isotach_connectors::{Source, open_source};
use isotach_core::{Field, PipelineSpec};
use isotach_engine::RunConfig;
use isotach_synth::{SynthConfig, generate};
use support::python_arrays;

/// Twelve daily steps from 2017-01-29: January and February.
const STEPS: usize = 12;

struct Stores {
    _dir: tempfile::TempDir,
    data: String,
    /// Monthly climatology of every step, as xarray writes it.
    monthly: String,
    /// Monthly climatology of January only.
    january: String,
    /// Monthly climatology on a 2 × 2 coarser grid.
    coarse: String,
    /// xarray's anomalies against `monthly`, (time, lat, lon).
    anomalies: Vec<f32>,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.zarr");
    generate(
        &SynthConfig {
            resolution_deg: 3.0,
            steps: STEPS,
            step_hours: 24,
            start: "2017-01-29T00:00:00Z".parse().expect("date"),
            surface_only: true,
            ..Default::default()
        },
        &data,
    )
    .expect("generate");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    let (monthly, january, coarse) = (
        path("monthly.zarr"),
        path("january.zarr"),
        path("coarse.zarr"),
    );
    let data = path("data.zarr");
    let script = format!(
        r#"
import xarray as xr
ds = xr.open_zarr({data:?})
clim = ds.mslp.groupby("time.month").mean(keep_attrs=True)
clim.to_dataset(name="mslp").to_zarr({monthly:?}, consolidated=True)
jan = ds.mslp.isel(time=slice(0, 3)).groupby("time.month").mean(keep_attrs=True)
jan.to_dataset(name="mslp").to_zarr({january:?}, consolidated=True)
coarse = clim.coarsen(lat=2, lon=2, boundary="trim").mean(keep_attrs=True)
coarse.to_dataset(name="mslp").to_zarr({coarse:?}, consolidated=True)
outputs["anomalies"] = (ds.mslp.groupby("time.month") - clim).values
"#
    );
    let anomalies = python_arrays(&script, &[])
        .remove("anomalies")
        .expect("anomalies");
    Stores {
        _dir: dir,
        data,
        monthly,
        january,
        coarse,
        anomalies: anomalies.values,
    }
}

fn spec(data: &str, extra_source: &str, step: &str) -> PipelineSpec {
    PipelineSpec::from_toml_str(&format!(
        r#"
        name = "stored-climatology"
        [source]
        uri = "{data}"
        variables = ["mslp", "iwv"]
        {extra_source}
        [[step]]
        op = "anomaly"
        output = "mslp_anomaly"
        {step}
        [[sink]]
        kind = "zarr"
        path = "unused.zarr"
        variables = ["mslp_anomaly"]
        "#
    ))
    .expect("spec")
}

fn with_store(uri: &str) -> String {
    format!("input = \"mslp\"\nclimatology = {{ uri = \"{uri}\", variable = \"mslp\" }}")
}

fn run(
    source: Arc<dyn Source>,
    spec: &PipelineSpec,
    workers: usize,
) -> isotach_engine::Result<Vec<Field>> {
    let config = RunConfig {
        workers,
        max_steps_in_flight: 3,
        ..RunConfig::default()
    };
    let (report, fields) = support::run_collecting(source, spec, config);
    report.map(|_| fields)
}

#[test]
fn stored_monthly_climatology_gives_xarrays_anomalies_on_any_workers_and_box() {
    let stores = stores();
    let source = open_source(&stores.data, &Default::default(), None).expect("open");
    let (nlat, nlon) = source.describe().grid.shape();
    let plane = nlat * nlon;
    let spec = spec(&stores.data, "", &with_store(&stores.monthly));
    let one = run(source.clone(), &spec, 1).expect("run");
    assert_eq!(one.len(), STEPS);
    for field in &one {
        let s = field.step as usize;
        let expected = &stores.anomalies[s * plane..(s + 1) * plane];
        let same = field
            .values
            .iter()
            .zip(expected)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "step {s}: anomaly differs from xarray's");
        assert_eq!(field.units, "Pa");
    }
    assert_eq!(
        run(source.clone(), &spec, 3).expect("run"),
        one,
        "3 workers"
    );

    // A regional run takes its cells out of the global climatology.
    let region = "region = { lat = [-30.0, 60.0], lon = [300.0, 60.0] }";
    let boxed_spec = spec_with_region(&stores, region);
    let boxed_source =
        open_source(&stores.data, &Default::default(), boxed_spec.source.region).expect("box");
    let grid = boxed_source.describe().grid.clone();
    let full = source.describe().grid.clone();
    let boxed = run(boxed_source, &boxed_spec, 2).expect("run box");
    for field in &boxed {
        for (r, lat) in grid.lat.iter().enumerate() {
            let row = full.lat.iter().position(|l| l == lat).expect("lat");
            for (c, lon) in grid.lon.iter().enumerate() {
                let col = full
                    .lon
                    .iter()
                    .position(|l| (l - lon).rem_euclid(360.0) == 0.0)
                    .expect("lon");
                assert_eq!(
                    field.values[r * grid.lon.len() + c].to_bits(),
                    one[field.step as usize].values[row * nlon + col].to_bits(),
                    "step {} at ({lat}, {lon})",
                    field.step
                );
            }
        }
    }
}

fn spec_with_region(stores: &Stores, region: &str) -> PipelineSpec {
    spec(&stores.data, region, &with_store(&stores.monthly))
}

#[test]
fn a_climatology_that_does_not_fit_is_refused_before_any_work() {
    let stores = stores();
    let source = open_source(&stores.data, &Default::default(), None).expect("open");
    let error = |step: &str| {
        run(source.clone(), &spec(&stores.data, "", step), 1)
            .expect_err("refused")
            .to_string()
    };

    let e = error(&with_store(&stores.january));
    assert_eq!(
        e,
        format!(
            "step[0].climatology: climatology store {}: no month [2] for the selected steps \
             (it has [1])",
            stores.january
        )
    );
    let e = error(&format!(
        "{}\nby = \"day_of_year\"",
        with_store(&stores.monthly)
    ));
    assert!(
        e.contains("\"mslp\" has dimensions (month, lat, lon); a climatology by dayofyear is laid out (dayofyear, lat, lon)"),
        "{e}"
    );
    let e = error(&with_store(&stores.monthly).replace("input = \"mslp\"", "input = \"iwv\""));
    assert!(
        e.ends_with("\"mslp\" is in \"Pa\", but \"iwv\" is in \"kg m-2\""),
        "{e}"
    );
    let e = error(&with_store(&stores.coarse));
    assert!(
        e.contains("has no latitude") && e.contains("which the input's grid 61 × 120"),
        "{e}"
    );
    let e =
        error(&with_store(&stores.monthly).replace("variable = \"mslp\"", "variable = \"msl\""));
    assert!(
        e.ends_with("variable \"msl\" not found (have: mslp)"),
        "{e}"
    );
    let e = error(&with_store("/nonexistent/clim.zarr"));
    assert!(
        e.starts_with("step[0].climatology: climatology store /nonexistent/clim.zarr: "),
        "{e}"
    );
}
