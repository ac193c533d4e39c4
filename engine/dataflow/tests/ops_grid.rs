//! The grid-changing operators, `coarsen` and `regrid`, agree with xarray (values and coordinates,
//! NaNs included), and streaming them through a timely dataflow gives exactly what the plain
//! functions give.

mod support;

use std::sync::{Arc, Mutex};

use isotach_core::{Field, LatLonGrid};
use isotach_engine::operators::{
    Coarsen, Regrid, coarsen_field, coarsen_grid, regrid_field, regrid_target,
};
use isotach_engine::{EngineError, ErrorSlot};
use support::{Array, assert_close, python_arrays};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::InputHandle;
use timely::dataflow::operators::Inspect;

fn field(variable: &str, step: u64, grid: &Arc<LatLonGrid>, values: Vec<f32>) -> Field {
    assert_eq!(values.len(), grid.len());
    Field {
        variable: variable.to_owned(),
        units: "K".to_owned(),
        long_name: format!("{variable} long name"),
        step,
        time: chrono::DateTime::from_timestamp(3600 * step as i64, 0).expect("time"),
        grid: grid.clone(),
        values,
    }
}

/// A smooth pattern with structure along both axes, different for every `seed`.
fn pattern(grid: &LatLonGrid, seed: f32) -> Vec<f32> {
    grid.lat
        .iter()
        .flat_map(|&lat| {
            grid.lon.iter().map(move |&lon| {
                let (y, x) = (lat.to_radians() as f32, lon.to_radians() as f32);
                250.0 + seed + 30.0 * y.cos() + 8.0 * (3.0 * x + seed).sin() * (2.0 * y).cos()
            })
        })
        .collect()
}

fn coords(values: &[f64]) -> Array {
    let as_f32: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    assert!(
        as_f32.iter().zip(values).all(|(&a, &b)| f64::from(a) == b),
        "coordinates handed to Python must be exact in f32"
    );
    Array::new(as_f32, &[values.len()])
}

fn set_nan(values: &mut [f32], nlon: usize, cells: &[(usize, usize)]) {
    for &(r, c) in cells {
        values[r * nlon + c] = f32::NAN;
    }
}

// ----------------------------------------------------------------------------------------------
// coarsen

#[test]
fn coarsen_matches_xarray_with_trim_descending_lat_and_nans() {
    // 11 × 13, latitude descending; factor [3, 4] trims 2 rows and 1 column, [2, 5] 1 and 3.
    let grid = Arc::new(LatLonGrid {
        lat: (0..11).map(|i| 50.0 - 2.5 * i as f64).collect(),
        lon: (0..13).map(|j| 10.0 + 1.5 * j as f64).collect(),
    });
    let mut values = pattern(&grid, 1.0);
    // Scattered NaNs, and rows 0..3 × columns 4..8 all NaN: a whole [3, 4] block.
    set_nan(&mut values, 13, &[(1, 1), (4, 0), (5, 6), (7, 11), (8, 9)]);
    for r in 0..3 {
        set_nan(&mut values, 13, &[(r, 4), (r, 5), (r, 6), (r, 7)]);
    }
    let f = field("t", 0, &grid, values.clone());

    let a = coarsen_field(&f, [3, 4], "t_c").expect("coarsen [3, 4]");
    let b = coarsen_field(&f, [2, 5], "t_c").expect("coarsen [2, 5]");
    assert_eq!(a.grid.shape(), (3, 3));
    assert_eq!(b.grid.shape(), (5, 2));
    assert_eq!(*a.grid, coarsen_grid(&grid, [3, 4]).expect("grid [3, 4]"));
    assert_eq!(*b.grid, coarsen_grid(&grid, [2, 5]).expect("grid [2, 5]"));
    assert!(a.values[1].is_nan(), "the all-NaN block gives NaN");
    assert_eq!(
        (a.variable.as_str(), a.units.as_str(), a.step),
        ("t_c", "K", 0)
    );

    let out = python_arrays(
        r#"
import xarray as xr
da = xr.DataArray(inputs["v"], dims=("lat", "lon"),
                  coords={"lat": inputs["lat"].astype("f8"), "lon": inputs["lon"].astype("f8")})
for name, (fy, fx) in {"a": (3, 4), "b": (2, 5)}.items():
    c = da.coarsen(lat=fy, lon=fx, boundary="trim").mean()
    outputs[name] = c.values
    outputs[name + "_lat"] = c.lat.values
    outputs[name + "_lon"] = c.lon.values
"#,
        &[
            ("v", Array::new(values, &[11, 13])),
            ("lat", coords(&grid.lat)),
            ("lon", coords(&grid.lon)),
        ],
    );
    for (name, ours) in [("a", &a), ("b", &b)] {
        let theirs = &out[name];
        assert_eq!(theirs.shape, vec![ours.grid.lat.len(), ours.grid.lon.len()]);
        assert_close(name, &ours.values, &theirs.values, 1e-4, 1e-6);
        let lat: Vec<f32> = ours.grid.lat.iter().map(|&v| v as f32).collect();
        let lon: Vec<f32> = ours.grid.lon.iter().map(|&v| v as f32).collect();
        assert_close("lat", &lat, &out[&format!("{name}_lat")].values, 1e-5, 0.0);
        assert_close("lon", &lon, &out[&format!("{name}_lon")].values, 1e-5, 0.0);
    }
    assert_eq!(a.grid.lat, vec![47.5, 40.0, 32.5]);
    assert_eq!(b.grid.lon, vec![13.0, 20.5]);
}

#[test]
fn coarsen_by_hand_and_identity() {
    let grid = Arc::new(LatLonGrid {
        lat: vec![3.0, 2.0, 1.0],
        lon: vec![0.0, 1.0, 2.0, 3.0],
    });
    #[rustfmt::skip]
    let values = vec![
        1.0, 2.0, f32::NAN, f32::NAN,
        3.0, 6.0, f32::NAN, 7.0,
        100.0, 100.0, 100.0, 100.0,
    ];
    let f = field("t", 4, &grid, values.clone());
    let c = coarsen_field(&f, [2, 2], "c").expect("coarsen");
    assert_eq!(c.grid.lat, vec![2.5]);
    assert_eq!(c.grid.lon, vec![0.5, 2.5]);
    assert_eq!(c.values, vec![3.0, 7.0]);
    assert_eq!((c.step, c.time), (f.step, f.time));

    let same = coarsen_field(&f, [1, 1], "same").expect("identity");
    assert_eq!(*same.grid, *grid);
    assert_eq!(same.values.len(), values.len());
    assert_close("identity", &same.values, &values, 0.0, 0.0);

    let whole = coarsen_field(&f, [3, 4], "whole").expect("one block");
    assert_eq!(
        whole.values,
        vec![(1.0 + 2.0 + 3.0 + 6.0 + 7.0 + 400.0) / 9.0]
    );
}

#[test]
fn coarsen_rejects_bad_factors_naming_them() {
    let grid = LatLonGrid {
        lat: vec![1.0, 0.0],
        lon: vec![0.0, 1.0, 2.0],
    };
    let zero = coarsen_grid(&grid, [0, 1]).expect_err("factor 0");
    assert!(zero.contains("latitude") && zero.contains('0'), "{zero}");
    let large = coarsen_grid(&grid, [1, 4]).expect_err("factor 4 > 3 columns");
    assert!(
        large.contains("longitude") && large.contains('4') && large.contains('3'),
        "{large}"
    );
    let f = field("t", 0, &Arc::new(grid), vec![0.0; 6]);
    assert!(coarsen_field(&f, [3, 1], "c").is_err());
}

// ----------------------------------------------------------------------------------------------
// regrid

/// xarray's equivalent of a periodic regrid: wrap-pad one column, then linear `interp`.
const XR_REGRID: &str = r#"
import xarray as xr
lat = inputs["lat"].astype("f8")
lon = inputs["lon"].astype("f8")
da = xr.DataArray(inputs["v"], dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
if GLOBAL:
    da = da.pad(lon=(0, 1), mode="wrap")
    da = da.assign_coords(lon=np.append(lon, lon[-1] + (lon[1] - lon[0])))
for name in NAMES:
    r = da.interp(lat=inputs[name + "_lat"].astype("f8"), lon=inputs[name + "_lon"].astype("f8"),
                  method="linear")
    outputs[name] = r.values
"#;

fn xarray_regrid(
    source: &Field,
    global: bool,
    targets: &[(&str, &LatLonGrid)],
) -> std::collections::BTreeMap<String, Array> {
    let names: Vec<String> = targets.iter().map(|(n, _)| format!("{n:?}")).collect();
    let script = format!(
        "GLOBAL = {}\nNAMES = [{}]\n{XR_REGRID}",
        if global { "True" } else { "False" },
        names.join(", ")
    );
    let (nlat, nlon) = source.grid.shape();
    let mut inputs = vec![
        (
            "v".to_owned(),
            Array::new(source.values.clone(), &[nlat, nlon]),
        ),
        ("lat".to_owned(), coords(&source.grid.lat)),
        ("lon".to_owned(), coords(&source.grid.lon)),
    ];
    for (name, grid) in targets {
        inputs.push((format!("{name}_lat"), coords(&grid.lat)));
        inputs.push((format!("{name}_lon"), coords(&grid.lon)));
    }
    let inputs: Vec<(&str, Array)> = inputs
        .iter()
        .map(|(n, a)| (n.as_str(), a.clone()))
        .collect();
    python_arrays(&script, &inputs)
}

#[test]
fn regrid_global_matches_xarray_across_the_seam_with_nans() {
    // 2°, latitude 90 → -90, longitude 0 … 358.
    let grid = Arc::new(LatLonGrid::regular(2.0));
    assert!(grid.is_global_in_lon());
    let (nlat, nlon) = grid.shape();
    let mut values = pattern(&grid, 2.0);
    // Scattered NaNs (one on the last column, next to the seam, one on the south pole row), and a
    // 3 × 4 hole.
    set_nan(
        &mut values,
        nlon,
        &[(3, 7), (10, 179), (20, 0), (45, 90), (60, 33), (90, 120)],
    );
    for r in 30..33 {
        set_nan(&mut values, nlon, &[(r, 50), (r, 51), (r, 52), (r, 53)]);
    }
    let f = field("t", 0, &grid, values);

    let coarse = regrid_target(&grid, 3.0).expect("3° target");
    let fine = regrid_target(&grid, 0.75).expect("0.75° target");
    assert_eq!(coarse.shape(), (61, 120));
    assert_eq!(fine.shape(), (241, 480));
    assert_eq!(
        (fine.lat[0], fine.lat[240], fine.lon[479]),
        (90.0, -90.0, 359.25)
    );

    let a = regrid_field(&f, &coarse, "t_r").expect("regrid 3°");
    let b = regrid_field(&f, &fine, "t_r").expect("regrid 0.75°");
    let out = xarray_regrid(&f, true, &[("a", &coarse), ("b", &fine)]);
    assert_eq!(out["a"].shape, vec![61, 120]);
    assert_eq!(out["b"].shape, vec![241, 480]);
    assert_close("3°", &a.values, &out["a"].values, 1e-4, 1e-6);
    assert_close("0.75°", &b.values, &out["b"].values, 1e-4, 1e-6);
    // Both sides of the seam are real values, and the NaNs spread as xarray spreads them.
    assert!(b.values[10 * 480 + 479].is_finite());
    assert!(b.values.iter().any(|v| v.is_nan()));
    assert_eq!(nlat, 91);
}

#[test]
fn regrid_regional_matches_xarray_and_is_nan_outside() {
    // Latitude ascending, longitudes continuous across the dateline (170 … 215).
    let grid = Arc::new(LatLonGrid {
        lat: (0..17).map(|i| 20.0 + 2.5 * i as f64).collect(),
        lon: (0..19).map(|j| 170.0 + 2.5 * j as f64).collect(),
    });
    assert!(!grid.is_global_in_lon());
    let mut values = pattern(&grid, 3.0);
    set_nan(
        &mut values,
        19,
        &[(0, 0), (4, 9), (8, 18), (16, 3), (10, 10)],
    );
    let f = field("t", 0, &grid, values);

    let one = regrid_target(&grid, 1.0).expect("1° target");
    assert_eq!(one.lat.first(), Some(&20.0));
    assert_eq!(one.lat.last(), Some(&60.0));
    assert_eq!(one.lon.last(), Some(&215.0));
    // A target reaching past the source on every side (values exact in f32 for the comparison).
    let wide = LatLonGrid {
        lat: (0..40)
            .map(|i| f64::from((14.0 + 1.3 * i as f64) as f32))
            .collect(),
        lon: (0..50)
            .map(|j| f64::from((163.0 + 1.1 * j as f64) as f32))
            .collect(),
    };
    let a = regrid_field(&f, &one, "r").expect("regrid 1°");
    let b = regrid_field(&f, &wide, "r").expect("regrid wide");
    let out = xarray_regrid(&f, false, &[("a", &one), ("b", &wide)]);
    assert_close("1°", &a.values, &out["a"].values, 1e-4, 1e-6);
    assert_close("wide", &b.values, &out["b"].values, 1e-4, 1e-6);
    // Outside the source: the first wide row (14°N) and column (163°E) are NaN.
    assert!(b.values[..50].iter().all(|v| v.is_nan()));
    assert!(b.values.iter().step_by(50).all(|v| v.is_nan()));

    // Longitudes are compared modulo 360: -170 is 190.
    let west = LatLonGrid {
        lat: one.lat.clone(),
        lon: one
            .lon
            .iter()
            .map(|&l| if l > 180.0 { l - 360.0 } else { l })
            .collect(),
    };
    let c = regrid_field(&f, &west, "r").expect("regrid -180..180");
    assert_close("modulo 360", &c.values, &a.values, 0.0, 0.0);
}

#[test]
fn regrid_on_nodes_spreads_nans_like_xarray() {
    // xarray (scipy's interp1d) takes a target on node j from the interval [j-1, j] (ascending),
    // so a NaN at node j-1 reaches it although its weight is zero. These values come from
    // `da.interp(lat=[4, 2, 1, 0], lon=[0, 0.5, 1, 2])` in xarray 2026.9.
    let grid = Arc::new(LatLonGrid {
        lat: vec![4.0, 2.0, 0.0],
        lon: vec![0.0, 1.0, 2.0],
    });
    let mut values: Vec<f32> = (0..9).map(|v| v as f32).collect();
    values[6] = f32::NAN; // lat 0, lon 0
    let f = field("t", 0, &grid, values);
    let target = LatLonGrid {
        lat: vec![4.0, 2.0, 1.0, 0.0],
        lon: vec![0.0, 0.5, 1.0, 2.0],
    };
    let r = regrid_field(&f, &target, "r").expect("regrid");
    let nan = f32::NAN;
    #[rustfmt::skip]
    let expected = [
        0.0, 0.5, 1.0, 2.0,
        nan, nan, nan, 5.0,
        nan, nan, nan, 6.5,
        nan, nan, nan, 8.0,
    ];
    assert_close("on nodes", &r.values, &expected, 0.0, 0.0);
}

#[test]
fn regrid_rejects_bad_targets_and_sources() {
    let grid = LatLonGrid::regular(2.0);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 400.0, 1e-3] {
        let message = regrid_target(&grid, bad).expect_err("bad resolution");
        assert!(message.contains("resolution"), "{message}");
    }
    let single_row = Arc::new(LatLonGrid {
        lat: vec![0.0],
        lon: vec![0.0, 1.0],
    });
    let f = field("t", 0, &single_row, vec![1.0, 2.0]);
    let message = regrid_field(&f, &grid, "r").expect_err("one latitude");
    assert!(message.contains("latitude"), "{message}");
}

// ----------------------------------------------------------------------------------------------
// streaming

type Captured = Arc<Mutex<Vec<Field>>>;

/// Feeds `fields` into a 2-worker dataflow (each worker feeds the steps it owns), applies `build`,
/// and returns every field that comes out, sorted by (step, variable).
fn stream(
    fields: Vec<Field>,
    build: impl for<'s> Fn(
        timely::dataflow::Stream<'s, u64, Vec<Field>>,
        ErrorSlot,
    ) -> timely::dataflow::Stream<'s, u64, Vec<Field>>
    + Send
    + Sync
    + 'static,
    errors: ErrorSlot,
) -> Vec<Field> {
    let captured: Captured = Arc::default();
    let sink = captured.clone();
    let fields = Arc::new(fields);
    let guards = timely::execute(timely::Config::process(2), move |worker| {
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<Field>>>::new();
        let sink = sink.clone();
        let errors = errors.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            build(input.to_stream(scope), errors).inspect(move |f: &Field| {
                sink.lock().expect("capture").push(f.clone());
            });
        });
        let (index, peers) = (worker.index() as u64, worker.peers() as u64);
        let last = fields.iter().map(|f| f.step).max().unwrap_or(0);
        for step in 0..=last {
            input.advance_to(step);
            if step % peers == index {
                for f in fields.iter().filter(|f| f.step == step) {
                    input.send(f.clone());
                }
            }
            worker.step();
        }
        input.close();
        while worker.step() {}
    })
    .expect("timely");
    for result in guards.join() {
        result.expect("worker");
    }
    let mut out = captured.lock().expect("captured").clone();
    out.sort_by(|a, b| (a.step, &a.variable).cmp(&(b.step, &b.variable)));
    out
}

#[test]
fn streamed_coarsen_and_regrid_equal_the_plain_functions() {
    let grid = Arc::new(LatLonGrid::regular(4.0)); // 46 × 90
    let target = Arc::new(regrid_target(&grid, 3.0).expect("target"));
    let mut inputs = Vec::new();
    for step in 0..5u64 {
        let mut t = pattern(&grid, step as f32);
        set_nan(&mut t, 90, &[(step as usize, 3), (20, 89 - step as usize)]);
        inputs.push(field("t", step, &grid, t));
        inputs.push(field("u", step, &grid, pattern(&grid, 10.0 + step as f32)));
    }
    let errors = ErrorSlot::default();
    let stream_target = target.clone();
    let out = stream(
        inputs.clone(),
        move |s, errors| {
            s.coarsen("t".into(), "t_c".into(), [3, 2], errors.clone())
                .regrid(
                    "t".into(),
                    "t_r".into(),
                    stream_target.clone(),
                    errors.clone(),
                )
                .regrid("t_c".into(), "t_cr".into(), stream_target.clone(), errors)
        },
        errors.clone(),
    );
    assert!(errors.take().is_none());

    let mut expected = Vec::new();
    for f in &inputs {
        expected.push(f.clone());
        if f.variable == "t" {
            let c = coarsen_field(f, [3, 2], "t_c").expect("coarsen");
            expected.push(regrid_field(&c, &target, "t_cr").expect("regrid coarse"));
            expected.push(c);
            expected.push(regrid_field(f, &target, "t_r").expect("regrid"));
        }
    }
    expected.sort_by(|a, b| (a.step, &a.variable).cmp(&(b.step, &b.variable)));
    assert_eq!(out.len(), 5 * 5);
    for (got, want) in out.iter().zip(&expected) {
        assert_eq!(
            (got.step, &got.variable, got.time),
            (want.step, &want.variable, want.time)
        );
        assert_eq!(*got.grid, *want.grid, "{} at {}", got.variable, got.step);
        assert_close(&got.variable, &got.values, &want.values, 0.0, 0.0);
    }
    let shapes: Vec<(usize, usize)> = out[..5].iter().map(|f| f.grid.shape()).collect();
    // Sorted by variable: t, t_c, t_cr, t_r, u.
    assert_eq!(
        shapes,
        vec![(46, 90), (15, 45), (61, 120), (61, 120), (46, 90)]
    );
}

#[test]
fn streamed_errors_name_the_step_and_keep_the_inputs() {
    let grid = Arc::new(LatLonGrid::regular(30.0)); // 7 × 12
    let inputs: Vec<Field> = (0..3)
        .map(|step| field("t", step, &grid, pattern(&grid, step as f32)))
        .collect();
    let errors = ErrorSlot::default();
    let out = stream(
        inputs.clone(),
        |s, errors| s.coarsen("t".into(), "t_c".into(), [8, 1], errors),
        errors.clone(),
    );
    assert_eq!(out, inputs, "inputs pass through; no coarsened field");
    match errors.take() {
        Some(EngineError::Operator {
            region, message, ..
        }) => {
            assert_eq!(region, "whole grid");
            assert!(message.contains('8') && message.contains('7'), "{message}");
        }
        other => panic!("expected an operator error, got {other:?}"),
    }
}

#[test]
fn regrid_of_the_era5_grid_onto_its_own_nodes_copies_them() {
    // 1440 × 721 onto 0.75°: every target point is a source node, so each value is the node's
    // value exactly (weights are exactly 0 or 1).
    let grid = Arc::new(LatLonGrid::regular(0.25));
    let f = field("t", 0, &grid, pattern(&grid, 5.0));
    let target = regrid_target(&grid, 0.75).expect("target");
    let start = std::time::Instant::now();
    let r = regrid_field(&f, &target, "r").expect("regrid");
    let elapsed = start.elapsed();
    let coarse = coarsen_field(&f, [3, 3], "c").expect("coarsen");
    eprintln!(
        "regrid 1440×721 → 480×241: {elapsed:?}; coarsen 3×3: {:?}",
        start.elapsed() - elapsed
    );
    assert_eq!(coarse.grid.shape(), (240, 480));
    for (i, row) in r.values.chunks_exact(480).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            assert_eq!(v, f.at(3 * i, 3 * j), "target ({i}, {j})");
        }
    }
}
