//! The `ivt` operator: read on levels and integrated region by region, it gives exactly the column
//! integral of the whole field (any number of workers, a box across the store's seam), the
//! synthetic store's own IVT, and what xarray's `integrate` gives.

mod support;

use std::sync::Arc;

use isotach_connectors::{Source, ZarrSource, open_source};
use isotach_core::column::integrate_columns;
use isotach_core::{Field, PipelineSpec, TileValues};
use isotach_engine::RunConfig;
use isotach_engine::operators::{IvtConfig, ivt_values};
use isotach_synth::{SynthConfig, generate};
use support::{Array, assert_close, python_arrays};

const STEPS: usize = 4;

fn store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("levels.zarr");
    generate(
        &SynthConfig {
            resolution_deg: 3.0,
            steps: STEPS,
            ..Default::default()
        },
        &path,
    )
    .expect("generate");
    let uri = path.to_str().expect("utf-8").to_owned();
    (dir, uri)
}

fn ivt_spec(uri: &str, region: &str) -> PipelineSpec {
    PipelineSpec::from_toml_str(&format!(
        r#"
        name = "ivt-levels"
        [source]
        uri = "{uri}"
        variables = ["q", "u", "v"]
        {region}
        [[step]]
        op = "ivt"
        humidity = "q"
        wind = ["u", "v"]
        output = "ivt"
        components = ["ivt_east", "ivt_north"]
        [[sink]]
        kind = "zarr"
        path = "unused.zarr"
        variables = ["ivt", "ivt_east", "ivt_north"]
        "#
    ))
    .expect("spec")
}

/// Every field the pipeline delivers, sorted by (variable, step).
fn run(source: Arc<dyn Source>, spec: &PipelineSpec, workers: usize) -> Vec<Field> {
    let config = RunConfig {
        workers,
        max_steps_in_flight: 2,
        ..RunConfig::default()
    };
    let (report, fields) = support::run_collecting(source, spec, config);
    report.expect("run");
    fields
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn ivt_equals_the_column_integral_of_whole_fields_for_any_worker_count_and_box() {
    let (_dir, uri) = store();
    let zarr = Arc::new(ZarrSource::open(&uri).expect("open"));
    let info = zarr.describe().clone();
    let (nlat, nlon) = info.grid.shape();
    let axis = info.vertical_axis_of("q").expect("q lies on levels");
    assert_eq!(axis.units, "hPa");
    let pressure_pa = axis.pressure_pa().expect("pressure levels");
    let nlev = pressure_pa.len() as u64;

    let spec = ivt_spec(&uri, "");
    let one = run(zarr.clone(), &spec, 1);
    assert_eq!(one.len(), 3 * STEPS);
    for workers in [2, 3] {
        assert_eq!(run(zarr.clone(), &spec, workers), one, "{workers} workers");
    }

    let whole = |name: &str, s: u64| {
        zarr.read_subset(name, &[s..s + 1, 0..nlev, 0..nlat as u64, 0..nlon as u64])
            .expect(name)
    };
    for s in 0..STEPS as u64 {
        let (q, u, v) = (whole("q", s), whole("u", s), whole("v", s));
        let (_, east, north) = integrate_columns(&pressure_pa, &q, &u, &v, nlat * nlon);
        let magnitude: Vec<f32> = east
            .iter()
            .zip(&north)
            .map(|(e, n)| (e * e + n * n).sqrt())
            .collect();
        let field = |name: &str| {
            one.iter()
                .find(|f| f.variable == name && f.step == s)
                .unwrap_or_else(|| panic!("{name} at step {s}"))
        };
        assert_eq!(bits(&field("ivt_east").values), bits(&east), "step {s}");
        assert_eq!(bits(&field("ivt_north").values), bits(&north), "step {s}");
        assert_eq!(bits(&field("ivt").values), bits(&magnitude), "step {s}");
        assert_eq!(field("ivt").units, "kg m-1 s-1");
        // The generator integrated its own f32 levels: the same numbers from the stored ones.
        let stored = |name: &str| {
            zarr.read_subset(name, &[s..s + 1, 0..nlat as u64, 0..nlon as u64])
                .expect(name)
        };
        assert_eq!(
            bits(&stored("ivt_u")),
            bits(&east),
            "step {s}: stored ivt_u"
        );
        assert_eq!(
            bits(&stored("ivt_v")),
            bits(&north),
            "step {s}: stored ivt_v"
        );
    }

    // A box across the 0°/360° seam of the stored longitudes: tiles are stitched level by level.
    let region = "region = { lat = [-30.0, 60.0], lon = [300.0, 60.0] }";
    let boxed_spec = ivt_spec(&uri, region);
    let boxed_source =
        open_source(&uri, &Default::default(), boxed_spec.source.region).expect("open box");
    let boxed = run(boxed_source.clone(), &boxed_spec, 3);
    let grid = &boxed_source.describe().grid;
    let wrapped: Vec<f64> = grid.lon.iter().map(|l| l.rem_euclid(360.0)).collect();
    assert!(
        wrapped.iter().any(|l| *l >= 300.0) && wrapped.iter().any(|l| *l < 60.0),
        "the box spans the seam: {wrapped:?}"
    );
    for field in &boxed {
        let full = one
            .iter()
            .find(|f| f.variable == field.variable && f.step == field.step)
            .expect("same field on the whole grid");
        for (r, lat) in grid.lat.iter().enumerate() {
            let row = info.grid.lat.iter().position(|l| l == lat).expect("lat");
            for (c, lon) in grid.lon.iter().enumerate() {
                let col = info
                    .grid
                    .lon
                    .iter()
                    .position(|l| (l - lon).rem_euclid(360.0) == 0.0)
                    .expect("lon");
                assert_eq!(
                    field.values[r * grid.lon.len() + c].to_bits(),
                    full.values[row * nlon + col].to_bits(),
                    "{} step {} at ({lat}, {lon})",
                    field.variable,
                    field.step
                );
            }
        }
    }
}

#[test]
fn ivt_matches_xarray_integrate_on_the_store() {
    let (_dir, uri) = store();
    let zarr = Arc::new(ZarrSource::open(&uri).expect("open"));
    let ours = run(zarr.clone(), &ivt_spec(&uri, ""), 2);
    let script = format!(
        r#"
import xarray as xr
g = 9.80665
ds = xr.open_zarr({uri:?})
ds = ds.assign_coords(level=ds.level * 100.0).sortby("level")
ivt_east = (ds.q * ds.u).integrate("level") / g
ivt_north = (ds.q * ds.v).integrate("level") / g
outputs["ivt_east"] = ivt_east.values
outputs["ivt_north"] = ivt_north.values
outputs["ivt"] = np.hypot(ivt_east, ivt_north).values
"#
    );
    let xarray = python_arrays(&script, &[]);
    for name in ["ivt", "ivt_east", "ivt_north"] {
        let expected = &xarray[name];
        let plane = expected.values.len() / STEPS;
        for field in ours.iter().filter(|f| f.variable == name) {
            let s = field.step as usize;
            assert_close(
                &format!("{name} step {s}"),
                &field.values,
                &expected.values[s * plane..(s + 1) * plane],
                1e-3,
                1e-5,
            );
        }
    }
}

#[test]
fn missing_values_and_other_units_follow_xarray() {
    // 3 levels × 2 × 5 cells: humidity in g kg-1, wind in knots, a few NaN.
    let (levels, cells) = (3usize, 10usize);
    let pressure_hpa = [1000.0f64, 850.0, 500.0];
    let value = |k: usize, i: usize, scale: f32| ((k * 7 + i * 3) % 11) as f32 * scale - 2.0;
    let mut q: Vec<f32> = (0..levels * cells)
        .map(|n| 4.0 + value(n / cells, n % cells, 0.9))
        .collect();
    let mut u: Vec<f32> = (0..levels * cells)
        .map(|n| value(n / cells, n % cells, 3.0))
        .collect();
    let v: Vec<f32> = (0..levels * cells)
        .map(|n| value(n % cells, n / cells, -2.5))
        .collect();
    q[cells + 2] = f32::NAN; // middle level of cell 2
    u[2 * cells + 7] = f32::NAN; // top level of cell 7
    let knot = 1852.0 / 3600.0;
    let config = IvtConfig {
        humidity: "q".into(),
        wind: ["u".into(), "v".into()],
        output: "ivt".into(),
        components: None,
        pressure_pa: pressure_hpa.iter().map(|p| p * 100.0).collect(),
        humidity_scale: 0.001,
        wind_scale: knot,
    };
    let [magnitude, east, north] = ivt_values(
        &config,
        &TileValues::from_vec(q.clone()),
        [
            &TileValues::from_vec(u.clone()),
            &TileValues::from_vec(v.clone()),
        ],
    )
    .expect("ivt");
    assert!(east.as_slice()[2].is_nan() && magnitude.as_slice()[7].is_nan());

    let shape = [levels, 2, 5];
    let xarray = python_arrays(
        &format!(
            r#"
import xarray as xr
g = 9.80665
level = xr.DataArray(np.array({pressure_hpa:?}) * 100.0, dims="level")
da = lambda name: xr.DataArray(inputs[name], dims=("level", "lat", "lon"), coords={{"level": level}})
q = da("q") / 1000.0
u, v = da("u") * {knot}, da("v") * {knot}
east = (q * u).sortby("level").integrate("level") / g
north = (q * v).sortby("level").integrate("level") / g
outputs["east"] = east.values
outputs["north"] = north.values
outputs["ivt"] = np.hypot(east, north).values
"#
        ),
        &[
            ("q", Array::new(q, &shape)),
            ("u", Array::new(u, &shape)),
            ("v", Array::new(v, &shape)),
        ],
    );
    assert_close("east", east.as_slice(), &xarray["east"].values, 1e-4, 1e-5);
    assert_close(
        "north",
        north.as_slice(),
        &xarray["north"].values,
        1e-4,
        1e-5,
    );
    assert_close(
        "ivt",
        magnitude.as_slice(),
        &xarray["ivt"].values,
        1e-4,
        1e-5,
    );
}
