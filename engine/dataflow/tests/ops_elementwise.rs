//! The element-wise operators `expression` and `convert_units`: streamed and sharded over
//! regions they give exactly what the plain functions give on whole fields, and their values
//! match numpy/xarray float32 arithmetic.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use isotach_core::expr::Expr;
use isotach_core::units::{Conversion, conversion};
use isotach_core::{RegionKey, Tile, TileValues, TileWindow};
use isotach_engine::operators::{ConvertUnits, Expression, convert_values, expression_values};
use isotach_engine::{ErrorSlot, TileBundle};
use support::{Array, assert_close, python_arrays};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Exchange, Inspect};
use timely::dataflow::{InputHandle, Stream};

// ---------------------------------------------------------------------------------------------
// A small gridded dataset: whole fields, cut into tiles by region.

const ROWS: usize = 7;
const COLS: usize = 10;
const BLOCK_ROWS: usize = 3;
const BLOCK_COLS: usize = 4;
const STEPS: u64 = 5;

/// SplitMix64 of a few integers: reproducible values without a dependency.
fn hash(parts: &[u64]) -> u64 {
    let mut z = 0x1234_5678_u64;
    for p in parts {
        z = z.wrapping_add(*p).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// A uniform value in `[lo, hi)`, NaN in about one cell of eleven.
fn value(variable: u64, step: u64, cell: usize, lo: f32, hi: f32) -> f32 {
    let h = hash(&[variable, step, cell as u64]);
    if h.is_multiple_of(11) {
        return f32::NAN;
    }
    lo + (hi - lo) * ((h >> 40) as f32 / (1u64 << 24) as f32)
}

/// The whole field of a source variable at `step`, row-major `ROWS × COLS`.
fn field(variable: &str, step: u64) -> Vec<f32> {
    let (id, lo, hi) = match variable {
        "t" => (1, 250.0, 310.0),
        "u" => (2, -30.0, 30.0),
        "v" => (3, -30.0, 30.0),
        _ => (4, 0.0, 0.02),
    };
    (0..ROWS * COLS)
        .map(|cell| value(id, step, cell, lo, hi))
        .collect()
}

fn windows() -> Vec<(RegionKey, TileWindow)> {
    let mut out = Vec::new();
    for (br, row0) in (0..ROWS).step_by(BLOCK_ROWS).enumerate() {
        for (bc, col0) in (0..COLS).step_by(BLOCK_COLS).enumerate() {
            out.push((
                RegionKey {
                    row: br as u32,
                    col: bc as u32,
                },
                TileWindow {
                    row0,
                    rows: BLOCK_ROWS.min(ROWS - row0),
                    col0,
                    cols: BLOCK_COLS.min(COLS - col0),
                },
            ));
        }
    }
    out
}

/// The cells of `whole` inside `window`, row-major.
fn cut(whole: &[f32], window: &TileWindow) -> Vec<f32> {
    (window.row0..window.row0 + window.rows)
        .flat_map(|r| whole[r * COLS + window.col0..r * COLS + window.col0 + window.cols].to_vec())
        .collect()
}

fn tile(variable: &str, units: &str, step: u64, region: RegionKey, window: TileWindow) -> Tile {
    Tile {
        variable: variable.to_owned(),
        units: units.to_owned(),
        step,
        region,
        window,
        lat_bounds: [
            90.0 - 10.0 * window.row0 as f64,
            90.0 - 10.0 * (window.row0 + window.rows - 1) as f64,
        ],
        lon_bounds: [
            10.0 * window.col0 as f64,
            10.0 * (window.col0 + window.cols - 1) as f64,
        ],
        values: TileValues::from_vec(cut(&field(variable, step), &window)),
    }
}

const SOURCES: [(&str, &str); 4] = [("t", "K"), ("u", "m s-1"), ("v", "m s-1"), ("q", "kg kg-1")];

fn bundles(variables: &[(&str, &str)]) -> Vec<TileBundle> {
    let mut out = Vec::new();
    for step in 0..STEPS {
        for (region, window) in windows() {
            out.push(TileBundle {
                step,
                region,
                tiles: variables
                    .iter()
                    .map(|(name, units)| tile(name, units, step, region, window))
                    .collect(),
            });
        }
    }
    out
}

/// Runs `build` over `input` on `workers` timely workers (worker 0 feeds every bundle at its step;
/// an exchange by region shards them) and returns each output bundle with its worker's index.
fn run_dataflow<F>(
    workers: usize,
    input: Vec<TileBundle>,
    errors: ErrorSlot,
    build: F,
) -> Vec<(usize, TileBundle)>
where
    F: for<'s> Fn(Stream<'s, u64, Vec<TileBundle>>, ErrorSlot) -> Stream<'s, u64, Vec<TileBundle>>
        + Send
        + Sync
        + 'static,
{
    let out: Arc<Mutex<Vec<(usize, TileBundle)>>> = Arc::default();
    let sink = out.clone();
    let input = Arc::new(input);
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let mut handle = InputHandle::<u64, CapacityContainerBuilder<Vec<TileBundle>>>::new();
        let sink = sink.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            let stream = handle
                .to_stream(scope)
                .exchange(|bundle: &TileBundle| bundle.region.route());
            build(stream, errors.clone()).inspect(move |bundle: &TileBundle| {
                sink.lock()
                    .expect("output lock")
                    .push((index, bundle.clone()))
            });
        });
        if index == 0 {
            let steps: BTreeSet<u64> = input.iter().map(|b| b.step).collect();
            for step in steps {
                handle.advance_to(step);
                for bundle in input.iter().filter(|b| b.step == step) {
                    handle.send(bundle.clone());
                }
                worker.step();
            }
        }
        handle.close();
        while worker.step() {}
    })
    .expect("timely starts")
    .join()
    .into_iter()
    .for_each(|result| result.expect("worker"));
    let mut out = std::mem::take(&mut *out.lock().expect("output lock"));
    out.sort_by_key(|(_, b)| (b.step, b.region));
    out
}

fn eval_whole(expr: &Expr, columns: &[(&str, &[f32])]) -> Vec<f32> {
    let inputs: Vec<(&str, TileValues)> = columns
        .iter()
        .map(|(name, values)| (*name, TileValues::from_vec(values.to_vec())))
        .collect();
    let named: Vec<(&str, &TileValues)> = inputs.iter().map(|(n, v)| (*n, v)).collect();
    expression_values(expr, &named, ROWS * COLS)
        .expect("whole-field evaluation")
        .as_slice()
        .to_vec()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------------
// Streaming equals from scratch.

#[test]
fn streamed_operators_equal_whole_field_computation_on_two_workers() {
    let speed = Arc::new(
        Expr::parse("where(t > 273.15, hypot(u, v), -min(u, v)) + q * 1e3 - 2**-1").expect("parse"),
    );
    let ratio = Arc::new(Expr::parse("t_c ** 2 / (1 + abs(t_c)) + (u != u)").expect("parse"));
    let to_celsius = conversion("K", "degC").expect("K -> degC");
    let to_g_per_kg = conversion("kg kg**-1", "g kg-1").expect("kg/kg -> g/kg");
    let (e1, e2) = (speed.clone(), ratio.clone());
    let errors = ErrorSlot::default();
    let out = run_dataflow(
        2,
        bundles(&SOURCES),
        errors.clone(),
        move |stream, errors| {
            stream
                .expression(e1.clone(), "speed".into(), "m s-1".into(), errors.clone())
                .convert_units(
                    "t".into(),
                    "t_c".into(),
                    "degC".into(),
                    to_celsius,
                    errors.clone(),
                )
                .expression(e2.clone(), "ratio".into(), "degC".into(), errors.clone())
                .convert_units("q".into(), "q".into(), "g kg-1".into(), to_g_per_kg, errors)
        },
    );
    assert!(errors.take().is_none(), "no operator failed");
    let regions = windows();
    assert_eq!(out.len(), STEPS as usize * regions.len());
    let workers: BTreeSet<usize> = out.iter().map(|(w, _)| *w).collect();
    assert_eq!(workers.len(), 2, "regions are sharded over both workers");
    for (worker, bundle) in &out {
        assert_eq!(
            *worker as u64,
            bundle.region.route() % 2,
            "region stays on its worker"
        );
    }

    for step in 0..STEPS {
        let (t, u, v, q) = (
            field("t", step),
            field("u", step),
            field("v", step),
            field("q", step),
        );
        let whole_speed = eval_whole(&speed, &[("t", &t), ("u", &u), ("v", &v), ("q", &q)]);
        let whole_t_c = convert_values(&TileValues::from_vec(t.clone()), to_celsius);
        let whole_ratio = eval_whole(&ratio, &[("t_c", whole_t_c.as_slice()), ("u", &u)]);
        let whole_q = convert_values(&TileValues::from_vec(q.clone()), to_g_per_kg);
        for (region, window) in &regions {
            let (_, bundle) = out
                .iter()
                .find(|(_, b)| b.step == step && b.region == *region)
                .expect("every region of every step");
            let names: Vec<&str> = bundle.tiles.iter().map(|t| t.variable.as_str()).collect();
            assert_eq!(names, ["t", "u", "v", "q", "speed", "t_c", "ratio"]);
            let source = tile("t", "K", step, *region, *window);
            for (name, units, whole) in [
                ("speed", "m s-1", &whole_speed[..]),
                ("t_c", "degC", whole_t_c.as_slice()),
                ("ratio", "degC", &whole_ratio[..]),
                ("q", "g kg-1", whole_q.as_slice()),
            ] {
                let got = bundle.tile(name).expect("output tile");
                assert_eq!(got.units, units, "{name}");
                assert_eq!(
                    (got.step, got.region, got.window),
                    (step, *region, *window),
                    "{name}"
                );
                assert_eq!(
                    (got.lat_bounds, got.lon_bounds),
                    (source.lat_bounds, source.lon_bounds),
                    "{name}"
                );
                assert_eq!(
                    bits(got.values.as_slice()),
                    bits(&cut(whole, window)),
                    "step {step}, region {region:?}: streamed {name} differs from the whole field"
                );
            }
            // The inputs pass through untouched.
            assert_eq!(bundle.tile("t").expect("t"), &source);
        }
    }
    // Sanity of the from-scratch values themselves (NaNs from NaN inputs, finite elsewhere).
    let t = field("t", 0);
    let whole = eval_whole(
        &speed,
        &[
            ("t", &t),
            ("u", &field("u", 0)),
            ("v", &field("v", 0)),
            ("q", &field("q", 0)),
        ],
    );
    assert!(whole.iter().any(|x| x.is_nan()));
    assert!(whole.iter().filter(|x| x.is_finite()).count() > ROWS * COLS / 2);
}

#[test]
fn missing_inputs_are_recorded_naming_step_region_and_variable() {
    // `u` is absent: the expression fails on the first bundle, which passes on unchanged.
    let errors = ErrorSlot::default();
    let expr = Arc::new(Expr::parse("hypot(u, v)").expect("parse"));
    let out = run_dataflow(
        1,
        bundles(&[("t", "K"), ("v", "m s-1")]),
        errors.clone(),
        move |stream, errors| {
            stream.expression(expr.clone(), "speed".into(), "m s-1".into(), errors)
        },
    );
    assert!(out.iter().all(|(_, b)| b.tiles.len() == 2));
    let message = errors.take().expect("an error is recorded").to_string();
    assert_eq!(
        message,
        "step 0, region 0,0: expression -> \"speed\": input \"u\" missing from the region's \
         tiles (have: t, v)"
    );

    let errors = ErrorSlot::default();
    let out = run_dataflow(
        1,
        bundles(&[("u", "m s-1")]),
        errors.clone(),
        move |stream, errors| {
            stream.convert_units(
                "t".into(),
                "t_c".into(),
                "degC".into(),
                Conversion {
                    scale: 1.0,
                    offset: -273.15,
                },
                errors,
            )
        },
    );
    assert_eq!(out.len(), STEPS as usize * windows().len());
    let message = errors.take().expect("an error is recorded").to_string();
    assert_eq!(
        message,
        "step 0, region 0,0: convert_units -> \"t_c\": input \"t\" missing from the region's \
         tiles (have: u)"
    );

    // An expression reading no variable fills the bundle's window with its value.
    let errors = ErrorSlot::default();
    let constant = Arc::new(Expr::parse("2 * 3 - 0.5").expect("parse"));
    let out = run_dataflow(
        2,
        bundles(&[("u", "m s-1")]),
        errors.clone(),
        move |stream, errors| stream.expression(constant.clone(), "c".into(), "1".into(), errors),
    );
    assert!(errors.take().is_none());
    for (_, bundle) in &out {
        let c = bundle.tile("c").expect("constant tile");
        assert_eq!(c.window, bundle.tiles[0].window);
        assert_eq!(c.values.len(), c.window.len());
        assert!(c.values.as_slice().iter().all(|v| *v == 5.5));
    }
}

#[test]
fn plain_functions_check_their_inputs() {
    let expr = Expr::parse("a + b").expect("parse");
    let a = TileValues::from_vec(vec![1.0, 2.0]);
    let b = TileValues::from_vec(vec![1.0]);
    let err = expression_values(&expr, &[("a", &a), ("b", &b)], 2)
        .expect_err("lengths differ")
        .to_string();
    assert_eq!(
        err,
        "expression \"a + b\": variable \"b\" has 1 values, expected 2"
    );
    let err = expression_values(&expr, &[("a", &a)], 2)
        .expect_err("b missing")
        .to_string();
    assert!(err.contains("variable \"b\" is missing"), "{err}");
    let same = convert_values(&a, Conversion::IDENTITY);
    assert_eq!(same, a);
}

// ---------------------------------------------------------------------------------------------
// numpy / xarray agreement.

/// Inputs with every kind of value: NaN, ±inf, ±0, tiny, huge, negative, ordinary.
fn python_inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    const SPECIAL: [f32; 12] = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        2.0,
        1e-30,
        3e30,
        -7.25,
    ];
    let n = 16 * 16;
    let make = |id: u64| -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = hash(&[id, i as u64]);
                match h % 8 {
                    0 => SPECIAL[(h >> 8) as usize % SPECIAL.len()],
                    1 => value(id, 99, i, -3.0, 3.0).round(),
                    _ => value(id, 7, i, -20.0, 20.0),
                }
            })
            .collect()
    };
    (make(1), make(2), make(3))
}

/// Our values against numpy's: infinities and NaNs exactly where numpy has them, the rest within
/// a few ulp (relative 2e-6; subnormal results within 1e-37).
fn assert_matches_numpy(what: &str, ours: &[f32], numpy: &[f32]) {
    assert_eq!(ours.len(), numpy.len(), "{what}: lengths differ");
    let mut a = ours.to_vec();
    let mut b = numpy.to_vec();
    for (i, (x, y)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
        if x.is_infinite() || y.is_infinite() {
            assert_eq!(x, y, "{what}[{i}]: {x} vs numpy {y}");
            (*x, *y) = (0.0, 0.0);
        }
    }
    assert_close(what, &a, &b, 1e-37, 2e-6);
}

#[test]
fn expressions_match_xarray_float32() {
    // (our expression, the same in xarray over DataArrays A, B, C)
    let cases: [(&str, &str); 27] = [
        ("a + b * c - a / b", "A + B * C - A / B"),
        ("a / b", "A / B"),
        ("-a**2 + b", "-A**2 + B"),
        ("a ** b", "A ** B"),
        ("b ** (c / 10) ** 2", "B ** (C / 10) ** 2"),
        ("a ** 3", "A ** 3"),
        (
            "a ** 0.5 + b ** -1 + c ** 2 + a ** 1 + b ** 0",
            "A ** 0.5 + B ** -1 + C ** 2 + A ** 1 + B ** 0",
        ),
        ("sqrt(a)", "np.sqrt(A)"),
        ("abs(c)", "np.abs(C)"),
        ("exp(c / 10)", "np.exp(C / 10)"),
        ("log(a)", "np.log(A)"),
        ("pow(b, c)", "np.power(B, C)"),
        ("min(a, b)", "np.minimum(A, B)"),
        ("max(a, c)", "np.maximum(A, C)"),
        ("hypot(a, b)", "np.hypot(A, B)"),
        ("a < b", "A < B"),
        ("a <= b", "A <= B"),
        ("a > c", "A > C"),
        ("a >= c", "A >= C"),
        ("a == b", "A == B"),
        ("a != b", "A != B"),
        ("where(a > b, a, c)", "xr.where(A > B, A, C)"),
        ("where(c, a, 2.5)", "xr.where(C, A, 2.5)"),
        ("a * 1e-3 + 2 ** -1 - -2**2", "A * 1e-3 + 2 ** -1 - -2**2"),
        (
            "where(a >= 0, sqrt(a), -sqrt(-a)) * max(b, 0.5)",
            "xr.where(A >= 0, np.sqrt(A), -np.sqrt(-A)) * np.maximum(B, 0.5)",
        ),
        (
            "(a + 1 < b * 2) + (c == c) * 2",
            "(A + 1 < B * 2).astype(np.float32) + (C == C).astype(np.float32) * 2",
        ),
        ("-(a - b) / (1 + abs(c))", "-(A - B) / (1 + np.abs(C))"),
    ];
    let (a, b, c) = python_inputs();
    let mut script = String::from(
        "import xarray as xr\n\
         A, B, C = (xr.DataArray(inputs[k], dims=('y', 'x')) for k in 'abc')\n\
         assert A.dtype == np.float32\n\
         with np.errstate(all='ignore'):\n",
    );
    for (i, (_, python)) in cases.iter().enumerate() {
        script.push_str(&format!("    outputs['e{i}'] = {python}\n"));
    }
    // numpy computed in float32 (comparisons give booleans), not in float64.
    script.push_str(
        "for _k, _v in outputs.items():\n    assert _v.dtype in (np.float32, np.bool_), (_k, _v.dtype)\n",
    );
    let shape = [16, 16];
    let numpy = python_arrays(
        &script,
        &[
            ("a", Array::new(a.clone(), &shape)),
            ("b", Array::new(b.clone(), &shape)),
            ("c", Array::new(c.clone(), &shape)),
        ],
    );
    let (ta, tb, tc) = (
        TileValues::from_vec(a),
        TileValues::from_vec(b),
        TileValues::from_vec(c),
    );
    let mut nan_results = 0;
    for (i, (ours, python)) in cases.iter().enumerate() {
        let expr = Expr::parse(ours).expect("parse");
        let got =
            expression_values(&expr, &[("a", &ta), ("b", &tb), ("c", &tc)], 256).expect("evaluate");
        let want = &numpy[&format!("e{i}")];
        assert_eq!(want.shape, shape, "{python}");
        assert_matches_numpy(&format!("{ours} vs {python}"), got.as_slice(), &want.values);
        nan_results += got.as_slice().iter().filter(|v| v.is_nan()).count();
    }
    assert!(nan_results > 100, "the inputs exercise NaN handling");
}

#[test]
fn unit_conversions_match_numpy_formulas() {
    let mut kelvin: Vec<f32> = (0..64).map(|i| 180.0 + 2.03 * i as f32).collect();
    kelvin[5] = f32::NAN;
    kelvin[6] = 273.15;
    let mut pascal: Vec<f32> = (0..64).map(|i| 30_000.0 + 1_117.3 * i as f32).collect();
    pascal[9] = f32::NAN;
    pascal[10] = 101_325.0;
    let script = "\
t = inputs['t']; p = inputs['p']
assert t.dtype == np.float32
outputs['c32'] = t - 273.15
outputs['c64'] = (t.astype(np.float64) - 273.15).astype(np.float32)
outputs['f32'] = t * 9 / 5 - 459.67
outputs['h32'] = p / 100
outputs['h64'] = (p.astype(np.float64) / 100).astype(np.float32)
";
    let numpy = python_arrays(
        script,
        &[
            ("t", Array::new(kelvin.clone(), &[64])),
            ("p", Array::new(pascal.clone(), &[64])),
        ],
    );
    let t = TileValues::from_vec(kelvin);
    let p = TileValues::from_vec(pascal);
    let celsius = convert_values(&t, conversion("K", "degC").expect("K -> degC"));
    let fahrenheit = convert_values(&t, conversion("K", "degF").expect("K -> degF"));
    let hpa = convert_values(&p, conversion("Pa", "hPa").expect("Pa -> hPa"));
    // Computed in f64 and rounded once: exactly numpy's float64 route ...
    assert_eq!(bits(celsius.as_slice()), bits(&numpy["c64"].values));
    assert_eq!(bits(hpa.as_slice()), bits(&numpy["h64"].values));
    // ... and within float32 rounding of the float32 formulas (an ulp of 300 K is 3e-5).
    assert_close(
        "K -> degC",
        celsius.as_slice(),
        &numpy["c32"].values,
        3e-5,
        0.0,
    );
    assert_close(
        "K -> degF",
        fahrenheit.as_slice(),
        &numpy["f32"].values,
        1e-4,
        2e-7,
    );
    assert_close("Pa -> hPa", hpa.as_slice(), &numpy["h32"].values, 0.0, 2e-7);
    assert!(celsius.as_slice()[6].abs() < 1e-5);
    assert_eq!(hpa.as_slice()[10], 1013.25);
    assert!(celsius.as_slice()[5].is_nan() && hpa.as_slice()[9].is_nan());

    // Errors name both units and what would work.
    let err = conversion("K", "hPa")
        .expect_err("incompatible")
        .to_string();
    assert!(
        err.contains("\"K\" (temperature)")
            && err.contains("\"hPa\" is a pressure unit")
            && err.contains("converts to: K, degC, degF"),
        "{err}"
    );
    let err = conversion("kelvins", "degC")
        .expect_err("unknown")
        .to_string();
    assert!(
        err.starts_with("cannot convert \"kelvins\" to \"degC\": \"kelvins\" is not a known unit (known units: K, degC,"),
        "{err}"
    );
}
