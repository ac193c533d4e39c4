//! A bad spec is refused before any work, with the thing and the value named.

use chrono::{DateTime, Utc};
use isotach_core::{
    DatasetInfo, LatLonGrid, PipelineSpec, SpecError, TimeAxis, VariableInfo, VerticalAxis,
};

fn dataset() -> DatasetInfo {
    let var = |name: &str, units: &str, dims: &[&str]| VariableInfo {
        name: name.into(),
        units: units.into(),
        long_name: name.into(),
        dims: dims.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    };
    let start: DateTime<Utc> = "2017-01-01T00:00:00Z".parse().expect("date");
    DatasetInfo {
        uri: "data/demo.zarr".into(),
        variables: vec![
            var("ivt_u", "kg m-1 s-1", &["time", "lat", "lon"]),
            var("ivt_v", "kg m-1 s-1", &["time", "lat", "lon"]),
            var("mslp", "Pa", &["time", "lat", "lon"]),
            var("q", "kg kg-1", &["time", "level", "lat", "lon"]),
            var("u", "m s-1", &["time", "level", "lat", "lon"]),
            var("v", "m s-1", &["time", "level", "lat", "lon"]),
            var("v_knots", "knot", &["time", "level", "lat", "lon"]),
            var("t", "K", &["time", "level", "lat", "lon"]),
            var("w", "Pa s-1", &["time", "hybrid", "lat", "lon"]),
        ],
        time: TimeAxis::regular(start, 6, 8),
        grid: LatLonGrid::regular(10.0),
        vertical: vec![VerticalAxis {
            name: "level".into(),
            units: "hPa".into(),
            values: vec![1000.0, 850.0, 500.0],
        }],
        coordinates: Vec::new(),
        attributes: Default::default(),
    }
}

const GOOD: &str = r#"
name = "ivt-frames"
[source]
uri = "data/demo.zarr"
variables = ["ivt_u", "ivt_v"]
time = { start = "2017-01-01T06:00:00Z", end = "2017-01-02T00:00:00Z" }
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[sink]]
kind = "frames"
path = "out"
layers = [{ variable = "ivt", range = [0, 1000] }]
"#;

fn check(text: &str) -> Result<isotach_core::ValidatedPipeline, SpecError> {
    PipelineSpec::from_toml_str(text)?.validate(&dataset())
}

fn error(text: &str) -> String {
    check(text).expect_err("spec should be refused").to_string()
}

#[test]
fn a_good_spec_resolves_steps_and_units() {
    let v = check(GOOD).expect("valid");
    assert_eq!(v.steps, 1..5);
    assert_eq!(v.units["ivt"], "kg m-1 s-1");
    let SinkLayer { width, height } = sink_size(&v.spec);
    assert_eq!((width, height), (1280, 720), "documented defaults");
    let round_trip =
        PipelineSpec::from_toml_str(&v.spec.to_toml_string().expect("toml")).expect("reparse");
    assert_eq!(round_trip, v.spec);
}

struct SinkLayer {
    width: u32,
    height: u32,
}

fn sink_size(spec: &PipelineSpec) -> SinkLayer {
    let isotach_core::SinkSpec::Frames(f) = &spec.sinks[0] else {
        panic!("the first sink is a frames sink");
    };
    SinkLayer {
        width: f.width_px,
        height: f.height_px,
    }
}

#[test]
fn unknown_source_variable_lists_the_available_ones() {
    let e = error(&GOOD.replace(
        r#"variables = ["ivt_u", "ivt_v"]"#,
        r#"variables = ["ivt_u", "ivtv"]"#,
    ));
    assert_eq!(
        e,
        r#"variable "ivtv" not found in store data/demo.zarr (have: ivt_u, ivt_v, mslp, q, u, v, v_knots, t, w)"#
    );
}

#[test]
fn step_input_that_nothing_produces_is_named() {
    let e = error(&GOOD.replace(
        r#"inputs = ["ivt_u", "ivt_v"]"#,
        r#"inputs = ["ivt_u", "ivt"]"#,
    ));
    assert!(
        e.contains(r#"variable "ivt" not found in step[0] (magnitude) inputs"#),
        "{e}"
    );
    assert!(e.contains("have: ivt_u, ivt_v"), "{e}");
}

#[test]
fn time_range_outside_the_data_names_both_ranges() {
    let e = error(&GOOD.replace("2017-01-02T00:00:00Z", "2017-03-01T00:00:00Z"));
    assert_eq!(
        e,
        "time range 2017-01-01T06:00:00Z .. 2017-03-01T00:00:00Z is outside the data of data/demo.zarr \
         (2017-01-01T00:00:00Z .. 2017-01-02T18:00:00Z)"
    );
    let e = error(&GOOD.replace("2017-01-01T06:00:00Z", "2017-01-02T06:00:00Z"));
    assert!(
        e.contains("end 2017-01-02T00:00:00Z is before start 2017-01-02T06:00:00Z"),
        "{e}"
    );
}

#[test]
fn output_names_cannot_be_reused() {
    let e = error(&GOOD.replace(r#"output = "ivt""#, r#"output = "ivt_u""#));
    assert!(
        e.starts_with("step[0].output: \"ivt_u\" is already defined"),
        "{e}"
    );
}

#[test]
fn magnitude_components_must_share_units() {
    let text = GOOD.replace(
        r#"variables = ["ivt_u", "ivt_v"]"#,
        r#"variables = ["ivt_u", "ivt_v", "mslp"]"#,
    );
    let e = error(&text.replace(
        r#"inputs = ["ivt_u", "ivt_v"]"#,
        r#"inputs = ["ivt_u", "mslp"]"#,
    ));
    assert_eq!(
        e,
        r#"step[0].inputs: magnitude components must share units, got "kg m-1 s-1" and "Pa""#
    );
}

const IVT: &str = r#"
name = "ivt-levels"
[source]
uri = "data/demo.zarr"
variables = ["q", "u", "v"]
[[step]]
op = "ivt"
humidity = "q"
wind = ["u", "v"]
output = "ivt"
components = ["ivt_east", "ivt_north"]
[[sink]]
kind = "zarr"
path = "out.zarr"
variables = ["ivt", "ivt_east", "ivt_north"]
"#;

#[test]
fn ivt_reads_levels_and_writes_the_magnitude_and_its_components() {
    let v = check(IVT).expect("valid");
    for name in ["ivt", "ivt_east", "ivt_north"] {
        assert_eq!(v.units[name], "kg m-1 s-1", "{name}");
        assert_eq!(v.stage_of[name], 0, "{name}");
    }
    assert_eq!(
        v.on_levels.keys().collect::<Vec<_>>(),
        ["q", "u", "v"],
        "the variables read on levels"
    );
    assert_eq!(
        v.on_levels["q"].pressure_pa().expect("hPa"),
        [100_000.0, 85_000.0, 50_000.0]
    );
    let without_components = IVT
        .replace(r#"components = ["ivt_east", "ivt_north"]"#, "")
        .replace(
            r#"variables = ["ivt", "ivt_east", "ivt_north"]"#,
            r#"variables = ["ivt"]"#,
        );
    let v = check(&without_components).expect("valid");
    assert!(!v.units.contains_key("ivt_east"));
}

#[test]
fn variables_on_levels_are_only_read_by_ivt() {
    let e = error(&IVT.replace(
        r#"variables = ["ivt", "ivt_east", "ivt_north"]"#,
        r#"variables = ["ivt", "q"]"#,
    ));
    assert_eq!(
        e,
        r#"sink[0].variables[1]: "q" lies on level levels; sinks take fields on (time, lat, lon), so reduce it first (for example with ivt)"#
    );
    let e = error(&IVT.replace(
        "[[sink]]",
        "[[step]]\nop = \"magnitude\"\ninputs = [\"u\", \"v\"]\noutput = \"speed\"\n[[sink]]",
    ));
    assert!(
        e.starts_with("step[1].inputs: magnitude works on fields, but \"u\" lies on level levels"),
        "{e}"
    );
}

#[test]
fn ivt_inputs_must_be_humidity_and_wind_on_one_set_of_levels() {
    let all_read = IVT.replace(
        r#"variables = ["q", "u", "v"]"#,
        r#"variables = ["q", "u", "v", "t", "v_knots"]"#,
    );
    let with = |from: &str, to: &str| error(&all_read.replace(from, to));
    let e = with(r#"humidity = "q""#, r#"humidity = "t""#);
    assert!(
        e.starts_with(r#"step[0].humidity: "t" must be specific humidity: cannot convert "K""#),
        "{e}"
    );
    let e = with(r#"wind = ["u", "v"]"#, r#"wind = ["u", "v_knots"]"#);
    assert_eq!(
        e,
        r#"step[0].wind: "u" and "v_knots" must share units, got "m s-1" and "knot""#
    );
    let e = error(
        &IVT.replace(
            r#"variables = ["q", "u", "v"]"#,
            r#"variables = ["q", "u", "v", "mslp"]"#,
        )
        .replace(r#"humidity = "q""#, r#"humidity = "mslp""#),
    );
    assert!(
        e.starts_with(
            r#"step[0].humidity: ivt integrates over pressure levels, but "mslp" is a field"#
        ),
        "{e}"
    );
    let e = with(
        r#"components = ["ivt_east", "ivt_north"]"#,
        r#"components = ["ivt_east", "ivt"]"#,
    );
    assert!(
        e.starts_with(r#"step[0].components[1]: "ivt" is already defined"#),
        "{e}"
    );
}

#[test]
fn variables_on_levels_without_level_values_are_refused_with_their_dimensions() {
    let e = error(&GOOD.replace(
        r#"variables = ["ivt_u", "ivt_v"]"#,
        r#"variables = ["ivt_u", "ivt_v", "w"]"#,
    ));
    assert!(
        e.contains(r#""w" has dimensions (time, hybrid, lat, lon); fields are read on (time, lat, lon), or on (time, level, lat, lon) with a level coordinate"#),
        "{e}"
    );
}

#[test]
fn schema_errors_name_the_field_and_line() {
    let e = error(&GOOD.replace(r#"op = "magnitude""#, r#"op = "magnitud""#));
    assert!(
        e.contains("unknown variant `magnitud`") && e.contains("magnitude"),
        "{e}"
    );
    let e = error(&GOOD.replace("[source]", "[source]\nregoin = 3"));
    assert!(e.contains("unknown field `regoin`"), "{e}");
    let e = error(&GOOD.replace("[source]", "[source]\nregion = 3"));
    assert!(e.contains("region") && e.contains("invalid type"), "{e}");
    let e = error(&GOOD.replace(
        "[source]",
        "[source]\nregion = { lat = [60.0, 20.0], lon = [0.0, 10.0] }",
    ));
    assert!(
        e.contains("source.region.lat") && e.contains("[60.0, 20.0]"),
        "{e}"
    );
    let e = error(&GOOD.replace(
        "[source]",
        "[source]\nregion = { lat = [20.0, 60.0], lon = [1.0, 2.0] }",
    ));
    assert!(
        e.contains("source.region.lon") && e.contains("no grid column"),
        "{e}"
    );
    let e = error(&GOOD.replace("range = [0, 1000]", r#"colormap = "jet""#));
    assert!(e.contains("unknown variant `jet`"), "{e}");
}

#[test]
fn frames_sink_limits_are_enforced() {
    let e = error(&GOOD.replace("range = [0, 1000]", "range = [1000, 0]"));
    assert!(e.starts_with("sink[0].layers[0].range: [1000, 0]"), "{e}");
    let e = error(&GOOD.replace(r#"path = "out""#, "path = \"out\"\nwidth_px = 20000"));
    assert!(
        e.contains("sink[0].width_px: 20000 is outside 64..=16384"),
        "{e}"
    );
    let e = error(&GOOD.replace(r#"variable = "ivt""#, r#"variable = "iwv""#));
    assert!(
        e.contains(r#"variable "iwv" not found in sink[0].layers[0]"#),
        "{e}"
    );
    let no_sink = &GOOD[..GOOD.find("[[sink]]").expect("sink")];
    assert!(error(no_sink).contains("no sink is given"));
    assert!(
        error(&GOOD.replace(r#"name = "ivt-frames""#, r#"name = "ivt frames!""#))
            .starts_with("name: ")
    );
}

/// GOOD with `steps` after the magnitude step and `sinks` instead of its frames sink.
fn with(steps: &str, sinks: &str) -> String {
    let head = GOOD.split("[[sink]]").next().expect("head");
    let head = head.replace(
        r#"variables = ["ivt_u", "ivt_v"]"#,
        r#"variables = ["ivt_u", "ivt_v", "mslp"]"#,
    );
    format!("{head}\n{steps}\n{sinks}")
}

const FRAMES: &str = r#"
[[sink]]
kind = "frames"
path = "out"
layers = [{ variable = "ivt" }]
"#;

#[test]
fn every_operator_validates_and_tracks_units_and_grids() {
    let v = check(&with(
        r#"
        [[step]]
        op = "units"
        input = "mslp"
        output = "mslp_hpa"
        to = "hPa"
        [[step]]
        op = "expr"
        expr = "where(ivt > 250, ivt, 0) / 1000"
        output = "ivt_k"
        units = "1e3 kg m-1 s-1"
        [[step]]
        op = "anomaly"
        input = "ivt"
        output = "ivt_anom"
        [[step]]
        op = "rolling"
        input = "ivt"
        output = "ivt_mean"
        window = 2
        [[step]]
        op = "normalize"
        input = "ivt"
        output = "ivt_z"
        [[step]]
        op = "coarsen"
        input = "ivt"
        output = "ivt_c"
        factor = [2, 2]
        [[step]]
        op = "threshold"
        input = "ivt_c"
        output = "high"
        percentile = 90.0
        [[step]]
        op = "objects"
        input = "high"
        output = "ar_id"
        threshold = 0.5
        [[sink]]
        kind = "zarr"
        path = "out/a.zarr"
        variables = ["ivt_c", "high"]
        [[sink]]
        kind = "catalog"
        objects = "ar_id"
        path = "out/ar.parquet"
        "#,
        "",
    ))
    .map_err(|e| e.to_string())
    .expect("valid");
    assert_eq!(v.units["mslp_hpa"], "hPa");
    assert_eq!(v.units["ivt_anom"], "kg m-1 s-1");
    assert_eq!(v.units["ivt_z"], "1");
    assert_eq!(v.units["high"], "1");
    assert_eq!(v.stage_of["ivt_anom"], 0);
    assert_eq!(v.stage_of["ivt_c"], 1);
    assert_eq!(v.stage_of["high"], 1);
    assert_eq!(v.stage_of["ar_id"], 2);
    let wire = PipelineSpec::from_toml_str(&v.spec.to_toml_string().expect("toml")).expect("toml");
    assert_eq!(wire, v.spec);
}

#[test]
fn wrong_units_for_an_operator_are_named() {
    let e = error(&with(
        r#"
        [[step]]
        op = "units"
        input = "mslp"
        output = "mslp_k"
        to = "K"
        "#,
        FRAMES,
    ));
    assert!(e.contains("step[1].to"), "{e}");
    assert!(e.contains("\"Pa\"") && e.contains("\"K\""), "{e}");
    assert!(e.contains("hPa"), "lists what Pa converts to: {e}");
    let e = error(&with(
        r#"
        [[step]]
        op = "magnitude"
        inputs = ["ivt_u", "mslp"]
        output = "bad"
        "#,
        FRAMES,
    ));
    assert!(e.contains("share units") && e.contains("\"Pa\""), "{e}");
}

#[test]
fn expressions_are_parsed_at_validation() {
    let e = error(&with(
        r#"
        [[step]]
        op = "expr"
        expr = "ivt + * 2"
        output = "x"
        "#,
        FRAMES,
    ));
    assert!(e.contains("step[1].expr") && e.contains("'*'"), "{e}");
    let e = error(&with(
        r#"
        [[step]]
        op = "expr"
        expr = "ivt + precip"
        output = "x"
        "#,
        FRAMES,
    ));
    assert!(e.contains("\"precip\"") && e.contains("ivt_u"), "{e}");
}

#[test]
fn duplicate_outputs_and_missing_inputs_are_named() {
    let e = error(&with(
        r#"
        [[step]]
        op = "rolling"
        input = "ivt"
        output = "ivt"
        window = 2
        "#,
        FRAMES,
    ));
    assert!(
        e.contains("step[1].output") && e.contains("already defined"),
        "{e}"
    );
    let e = error(&with(
        r#"
        [[step]]
        op = "anomaly"
        input = "ivt_later"
        output = "a"
        [[step]]
        op = "rolling"
        input = "ivt"
        output = "ivt_later"
        window = 2
        "#,
        FRAMES,
    ));
    assert!(e.contains("\"ivt_later\"") && e.contains("step[1]"), "{e}");
}

#[test]
fn operator_parameters_are_checked() {
    let cases = [
        (
            "op = \"rolling\"\ninput = \"ivt\"\noutput = \"r\"\nwindow = 9",
            "window",
        ),
        (
            "op = \"threshold\"\ninput = \"ivt\"\noutput = \"t\"\nvalue = 1.0\npercentile = 50.0",
            "exactly one",
        ),
        (
            "op = \"threshold\"\ninput = \"ivt\"\noutput = \"t\"\npercentile = 150.0",
            "150",
        ),
        (
            "op = \"normalize\"\ninput = \"ivt\"\noutput = \"z\"\nmean = 1.0",
            "both",
        ),
        (
            "op = \"coarsen\"\ninput = \"ivt\"\noutput = \"c\"\nfactor = [0, 2]",
            "factor",
        ),
        (
            "op = \"regrid\"\ninput = \"ivt\"\noutput = \"g\"\nresolution_deg = -1.0",
            "resolution_deg",
        ),
        (
            "op = \"objects\"\ninput = \"ivt\"\noutput = \"o\"\nthreshold = 250.0\ncriterion = {}",
            "wind",
        ),
    ];
    for (step, needle) in cases {
        let e = error(&with(&format!("[[step]]\n{step}\n"), FRAMES));
        assert!(e.contains(needle), "{step}: {e}");
    }
}

#[test]
fn sinks_name_their_problems() {
    let e = error(&with(
        r#"
        [[step]]
        op = "coarsen"
        input = "ivt"
        output = "ivt_c"
        factor = [2, 2]
        [[sink]]
        kind = "zarr"
        path = "out/a.zarr"
        variables = ["ivt", "ivt_c"]
        "#,
        "",
    ));
    assert!(e.contains("different grids"), "{e}");
    let e = error(&with(
        "",
        r#"
        [[sink]]
        kind = "catalog"
        objects = "ivt"
        path = "out/c.parquet"
        "#,
    ));
    assert!(e.contains("outputs of objects steps"), "{e}");
}

#[test]
fn cell_steps_refuse_inputs_on_different_grids() {
    let e = error(&with(
        r#"
        [[step]]
        op = "coarsen"
        input = "ivt"
        output = "ivt_c"
        factor = [2, 2]
        [[step]]
        op = "expr"
        expr = "ivt - ivt_c"
        output = "d"
        "#,
        FRAMES,
    ));
    assert!(e.contains("different grids"), "{e}");
}

#[test]
fn infer_steps_name_their_bad_parameters() {
    let infer = |extra: &str| {
        format!(
            "[[step]]\nop = \"infer\"\nmodel = \"ar_unet\"\ninputs = [\"ivt\"]\noutput = \"p\"\n{extra}"
        )
    };
    let good = infer("workers = [\"http://127.0.0.1:8001\"]");
    let v = check(&with(&good, FRAMES)).expect("valid infer step");
    assert_eq!(v.units["p"], "1");
    assert_eq!(v.stage_of["p"], 1, "a model's output starts a stage");
    assert_eq!(v.stage_grid, vec![0, 0], "on its input's grid");
    let cases = [
        ("workers = []", "step[1].workers: is empty"),
        (
            "workers = [\"127.0.0.1:8001\"]",
            "step[1].workers[0]: \"127.0.0.1:8001\" is not an endpoint",
        ),
        (
            "workers = [\"http://a:1\", \"http://a:1\"]",
            "step[1].workers[1]: \"http://a:1\" is listed twice",
        ),
        (
            "workers = [\"http://a:1\"]\npatch_size = 64\nhalo = 32",
            "step[1].halo: 32 leaves no centre in a 64-cell patch",
        ),
        (
            "workers = [\"http://a:1\"]\npatch_size = 8",
            "step[1].patch_size: 8 must be between 16 and 4096",
        ),
        (
            "workers = [\"http://a:1\"]\nbatch_size = 0",
            "step[1].batch_size: 0 must be between 1 and 1024",
        ),
        (
            "workers = [\"http://a:1\"]\nmax_batches_in_flight = 0",
            "step[1].max_batches_in_flight",
        ),
        (
            "workers = [\"http://a:1\"]\ntimeout_ms = 0",
            "step[1].timeout_ms",
        ),
        (
            "workers = [\"http://a:1\"]\nmodel_output = \"\"",
            "step[1].model_output: is empty",
        ),
    ];
    for (extra, needle) in cases {
        let e = error(&with(&infer(extra), FRAMES));
        assert!(e.contains(needle), "{extra}: {e}");
    }
    let e = error(&with(
        &format!(
            "[[step]]\nop = \"coarsen\"\ninput = \"ivt\"\noutput = \"c\"\nfactor = [2, 2]\n{}",
            infer("workers = [\"http://a:1\"]").replace("[\"ivt\"]", "[\"ivt\", \"c\"]")
        ),
        FRAMES,
    ));
    assert!(e.contains("lie on different grids"), "{e}");
    let e = error(&with(
        &infer("workers = [\"http://a:1\"]").replace("\"ivt\"]", "\"nope\"]"),
        FRAMES,
    ));
    assert!(e.contains("\"nope\"") && e.contains("ivt"), "{e}");
}

#[test]
fn a_frame_has_one_colour_field_first_and_objects_over_it() {
    let steps = "[[step]]\nop = \"objects\"\ninput = \"ivt\"\noutput = \"ar\"\nthreshold = 250.0\n";
    let frames = |layers: &str| {
        format!("[[sink]]\nkind = \"frames\"\npath = \"out\"\nlayers = [{layers}]\n")
    };
    check(&with(
        steps,
        &frames(r#"{ variable = "ivt" }, { variable = "ar", style = "objects" }"#),
    ))
    .expect("a field with objects over it");
    let e = error(&with(
        steps,
        &frames(r#"{ variable = "ar", style = "objects" }, { variable = "ivt" }"#),
    ));
    assert!(
        e.contains("sink[0].layers[0].style: Objects cannot come first"),
        "{e}"
    );
    let e = error(&with(
        steps,
        &frames(r#"{ variable = "ivt" }, { variable = "mslp" }"#),
    ));
    assert!(
        e.contains("sink[0].layers[1].style: \"mslp\" is a second colour field"),
        "{e}"
    );
    let e = error(&with(
        steps,
        &frames(r#"{ variable = "ivt", style = "outline" }"#),
    ));
    assert!(e.contains("unknown variant `outline`"), "{e}");
}
