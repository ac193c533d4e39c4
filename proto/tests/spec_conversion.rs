//! `isotach.v1.PipelineSpec` <-> `isotach_core::PipelineSpec`: round trips, the wire encoding,
//! and every conversion error.

use isotach_core::{
    ArCriterionSpec, CatalogSink, ClimatologyPeriod, Colormap, FramesSink, LayerSpec, LayerStyle,
    PipelineSpec, RegionBox, SinkSpec, SourceSpec, StepSpec, TimeRange, ZarrSink,
};
use isotach_proto::prost_types::{FileDescriptorSet, Timestamp};
use isotach_proto::{ConversionError, FILE_DESCRIPTOR_SET, v1};
use prost::Message;

fn full_spec(time: Option<TimeRange>) -> PipelineSpec {
    PipelineSpec {
        name: "ar-objects".to_owned(),
        source: SourceSpec {
            uri: "s3://bucket/era5.zarr".to_owned(),
            variables: vec!["ivt_u".to_owned(), "ivt_v".to_owned(), "tcwv".to_owned()],
            time,
            region: Some(RegionBox {
                lat: [20.0, 60.0],
                lon: [170.0, -110.0],
            }),
        },
        steps: vec![
            StepSpec::Magnitude {
                inputs: vec!["ivt_u".to_owned(), "ivt_v".to_owned()],
                output: "ivt".to_owned(),
            },
            StepSpec::Magnitude {
                inputs: vec!["ivt".to_owned(), "tcwv".to_owned()],
                output: "odd".to_owned(),
            },
        ],
        sinks: vec![
            SinkSpec::Frames(FramesSink {
                path: Some("out/frames".to_owned()),
                channel: Some("lobby".to_owned()),
                width_px: 1920,
                height_px: 1080,
                layers: vec![
                    LayerSpec {
                        variable: "ivt".to_owned(),
                        style: LayerStyle::Field,
                        colormap: Colormap::Magma,
                        range: Some([0.0, 1000.0]),
                    },
                    LayerSpec {
                        variable: "tcwv".to_owned(),
                        style: LayerStyle::Objects,
                        colormap: Colormap::Coolwarm,
                        range: None,
                    },
                ],
            }),
            SinkSpec::Frames(FramesSink {
                path: Some("out/small".to_owned()),
                channel: None,
                width_px: 64,
                height_px: 64,
                layers: vec![LayerSpec {
                    variable: "odd".to_owned(),
                    style: LayerStyle::Field,
                    colormap: Colormap::Viridis,
                    range: Some([-1.5, 2.25]),
                }],
            }),
        ],
    }
}

fn time_range() -> TimeRange {
    TimeRange {
        start: "2017-02-05T00:00:00Z".parse().expect("start"),
        end: "2017-02-12T18:30:00.000000123Z".parse().expect("end"),
    }
}

/// A valid wire spec with one frames sink, for tests that break one field of it.
fn wire_spec() -> v1::PipelineSpec {
    v1::PipelineSpec::from(&full_spec(Some(time_range())))
}

fn frames_mut(msg: &mut v1::PipelineSpec, i: usize) -> &mut v1::sink::Frames {
    match msg.sinks[i].kind.as_mut() {
        Some(v1::sink::Kind::Frames(frames)) => frames,
        other => panic!("sink {i} is not a frames sink: {other:?}"),
    }
}

#[test]
fn full_spec_with_time_range_round_trips() {
    let spec = full_spec(Some(time_range()));
    let wire = v1::PipelineSpec::from(&spec);

    // The wire message holds what the core spec says.
    assert_eq!(wire.name, "ar-objects");
    let source = wire.source.as_ref().expect("source");
    assert_eq!(source.variables, ["ivt_u", "ivt_v", "tcwv"]);
    let time = source.time.as_ref().expect("time");
    assert_eq!(
        time.start,
        Some(Timestamp {
            seconds: 1_486_252_800,
            nanos: 0
        })
    );
    assert_eq!(
        time.end,
        Some(Timestamp {
            seconds: 1_486_924_200,
            nanos: 123
        })
    );
    assert_eq!(
        wire.steps[0].op,
        Some(v1::step::Op::Magnitude(v1::step::Magnitude {
            inputs: vec!["ivt_u".to_owned(), "ivt_v".to_owned()],
            output: "ivt".to_owned(),
        }))
    );
    let Some(v1::sink::Kind::Frames(frames)) = &wire.sinks[0].kind else {
        panic!("frames sink")
    };
    assert_eq!(
        (frames.width_px, frames.height_px),
        (Some(1920), Some(1080))
    );
    assert_eq!(frames.layers[0].colormap, "magma");
    assert_eq!(
        frames.layers[0].range,
        Some(v1::ValueRange {
            lo: 0.0,
            hi: 1000.0
        })
    );
    assert_eq!(frames.layers[1].colormap, "coolwarm");
    assert_eq!(frames.layers[1].range, None);

    assert_eq!(PipelineSpec::try_from(wire), Ok(spec));
}

#[test]
fn full_spec_without_time_range_round_trips() {
    let spec = full_spec(None);
    let wire = v1::PipelineSpec::from(spec.clone());
    assert_eq!(wire.source.as_ref().expect("source").time, None);
    assert_eq!(PipelineSpec::try_from(wire), Ok(spec));
}

#[test]
fn spec_from_toml_round_trips_through_the_wire() {
    let spec = PipelineSpec::from_toml_str(
        r#"
        name = "ivt-frames"
        [source]
        uri = "data/synthetic.zarr"
        variables = ["ivt_u", "ivt_v"]
        time = { start = "2017-02-05T00:00:00Z", end = "2017-02-06T00:00:00Z" }
        [[step]]
        op = "magnitude"
        inputs = ["ivt_u", "ivt_v"]
        output = "ivt"
        [[sink]]
        kind = "frames"
        path = "out/frames"
        layers = [{ variable = "ivt", colormap = "cividis", range = [0, 1000] }]
        "#,
    )
    .expect("valid spec");
    let back = PipelineSpec::try_from(v1::PipelineSpec::from(&spec)).expect("converts back");
    assert_eq!(back, spec);
    assert_eq!(
        back.to_toml_string().expect("toml"),
        spec.to_toml_string().expect("toml")
    );
}

#[test]
fn encoded_bytes_decode_to_the_same_spec() {
    for spec in [full_spec(Some(time_range())), full_spec(None)] {
        let wire = v1::PipelineSpec::from(&spec);
        let bytes = wire.encode_to_vec();
        // Field 1 (name), length-delimited, comes first: tag 0x0a, length 10, "ar-objects".
        assert_eq!(&bytes[..12], b"\x0a\x0aar-objects");
        let decoded = v1::PipelineSpec::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded, wire);
        assert_eq!(PipelineSpec::try_from(decoded), Ok(spec));
    }
}

#[test]
fn submit_request_and_job_encode_and_decode() {
    let job = v1::Job {
        id: "job-7".to_owned(),
        name: "ar-objects".to_owned(),
        state: v1::JobState::Running as i32,
        spec: Some(wire_spec()),
        created: Some(isotach_proto::to_timestamp(
            "2024-05-01T12:00:00Z".parse().expect("date"),
        )),
        updated: Some(isotach_proto::to_timestamp(
            "2024-05-01T12:05:00Z".parse().expect("date"),
        )),
        submitted_by: "alice".to_owned(),
        rerun_of: "job-3".to_owned(),
        reason: String::new(),
    };
    let decoded = v1::Job::decode(job.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(decoded, job);
    assert_eq!(decoded.state(), v1::JobState::Running);
    assert_eq!(v1::JobState::Running.as_str_name(), "JOB_STATE_RUNNING");
    assert_eq!(
        isotach_proto::from_timestamp("created", decoded.created.as_ref().expect("created"))
            .expect("valid")
            .to_rfc3339(),
        "2024-05-01T12:00:00+00:00"
    );

    let event = v1::JobEvent {
        job_id: "job-7".to_owned(),
        seq: 3,
        time: None,
        event: Some(v1::job_event::Event::Progress(
            v1::job_event::StageProgress {
                stage: "render".to_owned(),
                done: 5,
                total: 40,
                rate_per_s: 12.5,
            },
        )),
    };
    assert_eq!(
        v1::JobEvent::decode(event.encode_to_vec().as_slice()),
        Ok(event)
    );
}

#[test]
fn unset_sizes_and_colormap_take_the_toml_defaults() {
    let mut msg = wire_spec();
    let frames = frames_mut(&mut msg, 0);
    frames.width_px = None;
    frames.height_px = None;
    frames.layers[0].colormap.clear();
    let spec = PipelineSpec::try_from(msg).expect("converts");
    let SinkSpec::Frames(frames) = &spec.sinks[0] else {
        panic!("frames sink")
    };
    assert_eq!((frames.width_px, frames.height_px), (1280, 720));
    assert_eq!(frames.layers[0].colormap, Colormap::Viridis);
}

#[test]
fn values_for_the_validator_pass_through_unchanged() {
    // Conversion leaves semantic checks to the core validator: a zero width or an inverted range
    // arrive as sent.
    let mut msg = wire_spec();
    msg.name = "not a valid name!".to_owned();
    let frames = frames_mut(&mut msg, 0);
    frames.width_px = Some(0);
    frames.layers[0].range = Some(v1::ValueRange { lo: 5.0, hi: -5.0 });
    let spec = PipelineSpec::try_from(msg).expect("converts");
    assert_eq!(spec.name, "not a valid name!");
    let SinkSpec::Frames(frames) = &spec.sinks[0] else {
        panic!("frames sink")
    };
    assert_eq!(frames.width_px, 0);
    assert_eq!(frames.layers[0].range, Some([5.0, -5.0]));
}

#[test]
fn missing_source_is_refused() {
    let mut msg = wire_spec();
    msg.source = None;
    let err = PipelineSpec::try_from(msg).expect_err("no source");
    assert_eq!(
        err,
        ConversionError::Missing {
            field: "source".to_owned()
        }
    );
    assert_eq!(err.to_string(), "source is missing; it is required");
}

#[test]
fn missing_time_bound_is_refused() {
    let mut msg = wire_spec();
    msg.source
        .as_mut()
        .and_then(|s| s.time.as_mut())
        .expect("time")
        .end = None;
    let err = PipelineSpec::try_from(msg).expect_err("no end");
    assert_eq!(
        err.to_string(),
        "source.time.end is missing; it is required"
    );
}

#[test]
fn unknown_colormap_is_refused_listing_the_known_ones() {
    let mut msg = wire_spec();
    frames_mut(&mut msg, 1).layers[0].colormap = "jet".to_owned();
    let err = PipelineSpec::try_from(msg).expect_err("jet");
    assert_eq!(
        err,
        ConversionError::UnknownColormap {
            field: "sinks[1].frames.layers[0].colormap".to_owned(),
            value: "jet".to_owned()
        }
    );
    assert_eq!(
        err.to_string(),
        "sinks[1].frames.layers[0].colormap: unknown colormap \"jet\" (known: viridis, magma, cividis, coolwarm)"
    );
    for colormap in Colormap::ALL {
        assert!(err.to_string().contains(colormap.name()), "{err}");
    }
}

#[test]
fn colormap_names_are_case_sensitive() {
    let mut msg = wire_spec();
    frames_mut(&mut msg, 0).layers[1].colormap = "Viridis".to_owned();
    let err = PipelineSpec::try_from(msg).expect_err("capitalised");
    assert!(
        err.to_string()
            .contains("layers[1].colormap: unknown colormap \"Viridis\""),
        "{err}"
    );
}

#[test]
fn step_without_op_is_refused() {
    let mut msg = wire_spec();
    msg.steps[1].op = None;
    let err = PipelineSpec::try_from(msg).expect_err("no op");
    assert_eq!(
        err.to_string(),
        "steps[1].op is not set; set one of: magnitude, expr, units, coarsen, regrid, anomaly, \
         normalize, rolling, threshold, objects, ivt, infer"
    );
}

#[test]
fn sink_without_kind_is_refused() {
    let mut msg = wire_spec();
    msg.sinks[0].kind = None;
    let err = PipelineSpec::try_from(msg).expect_err("no kind");
    assert_eq!(
        err.to_string(),
        "sinks[0].kind is not set; set one of: frames, zarr, catalog"
    );
}

#[test]
fn sizes_that_do_not_fit_are_refused() {
    let mut msg = wire_spec();
    frames_mut(&mut msg, 0).width_px = Some(-1280);
    let err = PipelineSpec::try_from(msg).expect_err("negative");
    assert_eq!(
        err.to_string(),
        "sinks[0].frames.width_px: -1280 does not fit in 0..=4294967295"
    );

    let mut msg = wire_spec();
    frames_mut(&mut msg, 1).height_px = Some(1 << 32);
    let err = PipelineSpec::try_from(msg).expect_err("too large");
    assert_eq!(
        err,
        ConversionError::OutOfRange {
            field: "sinks[1].frames.height_px".to_owned(),
            value: 4_294_967_296,
            min: 0,
            max: 4_294_967_295,
        }
    );
}

#[test]
fn bad_timestamps_are_refused() {
    let mut msg = wire_spec();
    msg.source
        .as_mut()
        .and_then(|s| s.time.as_mut())
        .expect("time")
        .start = Some(Timestamp {
        seconds: 1_486_252_800,
        nanos: 1_000_000_000,
    });
    let err = PipelineSpec::try_from(msg).expect_err("nanos");
    assert_eq!(
        err.to_string(),
        "source.time.start: timestamp { seconds: 1486252800, nanos: 1000000000 } is invalid: nanos must be in 0..=999999999"
    );

    let mut msg = wire_spec();
    msg.source
        .as_mut()
        .and_then(|s| s.time.as_mut())
        .expect("time")
        .end = Some(Timestamp {
        seconds: -62_135_596_801,
        nanos: 0,
    });
    let err = PipelineSpec::try_from(msg).expect_err("year 0");
    assert!(
        matches!(&err, ConversionError::BadTimestamp { field, seconds: -62_135_596_801, .. } if field == "source.time.end"),
        "{err}"
    );
    assert!(err.to_string().contains("0001-01-01T00:00:00Z"), "{err}");
}

// ---- every op and every sink kind ----

/// A TOML spec using every op and every sink kind, with every optional field set to a value other
/// than its default.
const EVERY_OP_TOML: &str = r#"
name = "every-op"

[source]
uri = "data/era5.zarr"
variables = ["ivt_u", "ivt_v", "t2m", "sp"]
time = { start = "2017-02-05T00:00:00Z", end = "2017-02-12T18:00:00Z" }
region = { lat = [20.0, 60.0], lon = [170.0, -110.0] }

[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"

[[step]]
op = "expr"
expr = "where(ivt > 250, ivt, 0)"
output = "ivt_strong"
units = "kg m-1 s-1"

[[step]]
op = "units"
input = "t2m"
output = "t2m_c"
to = "degC"

[[step]]
op = "coarsen"
input = "ivt"
output = "ivt_coarse"
factor = [2, 3]

[[step]]
op = "regrid"
input = "sp"
output = "sp_1deg"
resolution_deg = 1.25

[[step]]
op = "anomaly"
input = "t2m"
output = "t2m_anom"
by = "day_of_year"
climatology = { uri = "s3://bucket/t2m-clim.zarr", variable = "t2m_daily" }

[[step]]
op = "normalize"
input = "t2m"
output = "t2m_z"
mean = 288.5
std = 12.25

[[step]]
op = "normalize"
input = "sp"
output = "sp_z"

[[step]]
op = "rolling"
input = "ivt"
output = "ivt_mean4"
window = 4

[[step]]
op = "threshold"
input = "ivt"
output = "ivt_over"
value = 250.0

[[step]]
op = "threshold"
input = "ivt"
output = "ivt_p85"
percentile = 85.0

[[step]]
op = "objects"
input = "ivt"
output = "ar"
threshold = 250.0
min_area_km2 = 150000.0
min_duration_steps = 3
wind = ["ivt_u", "ivt_v"]
criterion = { min_length_km = 1500.0, min_aspect = 1.5, require_poleward = false, min_coherence = 0.75 }

[[step]]
op = "objects"
input = "ivt"
output = "blobs"
threshold = 500.0

[[step]]
op = "ivt"
humidity = "q"
wind = ["u", "v"]
output = "ivt_levels"
components = ["ivt_levels_u", "ivt_levels_v"]

[[step]]
op = "ivt"
humidity = "q"
wind = ["u", "v"]
output = "ivt_magnitude_only"

[[step]]
op = "infer"
model = "ar_unet"
inputs = ["ivt"]
output = "ar_prob"
workers = ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
units = "1"
model_output = "prob"
patch_size = 128
halo = 8
batch_size = 16
max_batch_delay_ms = 2
max_batches_in_flight = 6
timeout_ms = 5000

[[sink]]
kind = "frames"
path = "out/frames"
width_px = 1920
height_px = 1080
layers = [{ variable = "ivt", colormap = "magma", range = [0.0, 1000.0] }]

[[sink]]
kind = "zarr"
path = "out/ivt.zarr"
variables = ["ivt", "t2m_anom", "ar"]

[[sink]]
kind = "catalog"
objects = "ar"
path = "out/ar.parquet"
"#;

fn every_op_spec() -> PipelineSpec {
    PipelineSpec::from_toml_str(EVERY_OP_TOML).expect("valid TOML spec")
}

/// The steps and sinks of a spec, by op and kind name, to check that a test covers them all.
fn ops_and_kinds(spec: &PipelineSpec) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut ops: Vec<&str> = spec.steps.iter().map(StepSpec::op).collect();
    ops.dedup();
    let kinds = spec
        .sinks
        .iter()
        .map(|sink| match sink {
            SinkSpec::Frames(_) => "frames",
            SinkSpec::Zarr(_) => "zarr",
            SinkSpec::Catalog(_) => "catalog",
        })
        .collect();
    (ops, kinds)
}

#[test]
fn every_op_and_sink_round_trips_through_encoded_bytes() {
    let spec = every_op_spec();
    assert_eq!(
        ops_and_kinds(&spec),
        (
            vec![
                "magnitude",
                "expr",
                "units",
                "coarsen",
                "regrid",
                "anomaly",
                "normalize",
                "rolling",
                "threshold",
                "objects",
                "ivt",
                "infer"
            ],
            vec!["frames", "zarr", "catalog"]
        )
    );

    let wire = v1::PipelineSpec::from(&spec);
    let bytes = wire.encode_to_vec();
    let decoded = v1::PipelineSpec::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded, wire);
    let back = PipelineSpec::try_from(decoded).expect("converts back");
    assert_eq!(back, spec);
    assert_eq!(
        back.to_toml_string().expect("toml"),
        spec.to_toml_string().expect("toml")
    );
}

#[test]
fn every_op_and_sink_says_every_value_on_the_wire() {
    use v1::step::{self as s, Op};
    let wire = v1::PipelineSpec::from(&every_op_spec());
    let ops: Vec<Op> = wire
        .steps
        .into_iter()
        .map(|step| step.op.expect("op"))
        .collect();
    let text = |v: &str| v.to_owned();
    assert_eq!(
        ops[1],
        Op::Expr(s::Expr {
            expr: text("where(ivt > 250, ivt, 0)"),
            output: text("ivt_strong"),
            units: Some(text("kg m-1 s-1")),
        })
    );
    assert_eq!(
        ops[2],
        Op::Units(s::Units {
            input: text("t2m"),
            output: text("t2m_c"),
            to: text("degC"),
        })
    );
    assert_eq!(
        ops[3],
        Op::Coarsen(s::Coarsen {
            input: text("ivt"),
            output: text("ivt_coarse"),
            factor_lat: 2,
            factor_lon: 3,
        })
    );
    assert_eq!(
        ops[4],
        Op::Regrid(s::Regrid {
            input: text("sp"),
            output: text("sp_1deg"),
            resolution_deg: 1.25,
        })
    );
    let Op::Anomaly(anomaly) = &ops[5] else {
        panic!("anomaly")
    };
    assert_eq!(anomaly.by(), v1::ClimatologyPeriod::DayOfYear);
    assert_eq!(
        anomaly.climatology,
        Some(s::ClimatologyStore {
            uri: text("s3://bucket/t2m-clim.zarr"),
            variable: text("t2m_daily"),
        })
    );
    assert_eq!(
        ops[6],
        Op::Normalize(s::Normalize {
            input: text("t2m"),
            output: text("t2m_z"),
            mean: Some(288.5),
            std: Some(12.25),
        })
    );
    assert_eq!(
        ops[7],
        Op::Normalize(s::Normalize {
            input: text("sp"),
            output: text("sp_z"),
            mean: None,
            std: None,
        })
    );
    assert_eq!(
        ops[8],
        Op::Rolling(s::Rolling {
            input: text("ivt"),
            output: text("ivt_mean4"),
            window: 4,
        })
    );
    assert_eq!(
        ops[9],
        Op::Threshold(s::Threshold {
            input: text("ivt"),
            output: text("ivt_over"),
            value: Some(250.0),
            percentile: None,
        })
    );
    assert_eq!(
        ops[10],
        Op::Threshold(s::Threshold {
            input: text("ivt"),
            output: text("ivt_p85"),
            value: None,
            percentile: Some(85.0),
        })
    );
    assert_eq!(
        ops[11],
        Op::Objects(s::Objects {
            input: text("ivt"),
            output: text("ar"),
            threshold: 250.0,
            min_area_km2: Some(150_000.0),
            min_duration_steps: Some(3),
            wind: Some(v1::WindComponents {
                eastward: text("ivt_u"),
                northward: text("ivt_v"),
            }),
            criterion: Some(v1::ArCriterion {
                min_length_km: Some(1500.0),
                min_aspect: Some(1.5),
                require_poleward: Some(false),
                min_coherence: Some(0.75),
            }),
        })
    );
    // Defaults from the TOML spec are sent explicitly, not left unset.
    assert_eq!(
        ops[12],
        Op::Objects(s::Objects {
            input: text("ivt"),
            output: text("blobs"),
            threshold: 500.0,
            min_area_km2: Some(0.0),
            min_duration_steps: Some(1),
            wind: None,
            criterion: None,
        })
    );
    let wind = Some(v1::WindComponents {
        eastward: text("u"),
        northward: text("v"),
    });
    assert_eq!(
        ops[13],
        Op::Ivt(s::Ivt {
            humidity: text("q"),
            wind: wind.clone(),
            output: text("ivt_levels"),
            components: Some(v1::WindComponents {
                eastward: text("ivt_levels_u"),
                northward: text("ivt_levels_v"),
            }),
        })
    );
    assert_eq!(
        ops[14],
        Op::Ivt(s::Ivt {
            humidity: text("q"),
            wind,
            output: text("ivt_magnitude_only"),
            components: None,
        })
    );
    assert_eq!(
        ops[15],
        Op::Infer(s::Infer {
            model: text("ar_unet"),
            inputs: vec![text("ivt")],
            output: text("ar_prob"),
            workers: vec![text("http://127.0.0.1:8001"), text("http://127.0.0.1:8002")],
            units: Some(text("1")),
            model_output: Some(text("prob")),
            patch_size: Some(128),
            halo: Some(8),
            batch_size: Some(16),
            max_batch_delay_ms: Some(2),
            max_batches_in_flight: Some(6),
            timeout_ms: Some(5000),
        })
    );
    assert_eq!(
        wire.sinks[1].kind,
        Some(v1::sink::Kind::Zarr(v1::sink::Zarr {
            path: text("out/ivt.zarr"),
            variables: vec![text("ivt"), text("t2m_anom"), text("ar")],
        }))
    );
    assert_eq!(
        wire.sinks[2].kind,
        Some(v1::sink::Kind::Catalog(v1::sink::Catalog {
            objects: text("ar"),
            path: text("out/ar.parquet"),
        }))
    );
}

#[test]
fn every_climatology_period_round_trips() {
    for (by, wire_by) in [
        (ClimatologyPeriod::Month, v1::ClimatologyPeriod::Month),
        (
            ClimatologyPeriod::DayOfYear,
            v1::ClimatologyPeriod::DayOfYear,
        ),
    ] {
        let step = StepSpec::Anomaly {
            input: "t2m".to_owned(),
            output: "a".to_owned(),
            by,
            climatology: None,
        };
        let mut spec = full_spec(None);
        spec.steps = vec![step];
        let wire = v1::PipelineSpec::from(&spec);
        let Some(v1::step::Op::Anomaly(anomaly)) = &wire.steps[0].op else {
            panic!("anomaly")
        };
        assert_eq!(anomaly.by(), wire_by);
        assert_eq!(PipelineSpec::try_from(wire), Ok(spec));
    }
}

/// A wire spec written by hand: every op and every optional field unset.
fn sparse_wire_spec() -> v1::PipelineSpec {
    use v1::step::{self as s, Op};
    let text = |v: &str| v.to_owned();
    let steps = vec![
        Op::Expr(s::Expr {
            expr: text("a * 2"),
            output: text("b"),
            units: None,
        }),
        Op::Anomaly(s::Anomaly {
            input: text("a"),
            output: text("c"),
            by: v1::ClimatologyPeriod::Unspecified.into(),
            climatology: None,
        }),
        Op::Normalize(s::Normalize {
            input: text("a"),
            output: text("d"),
            mean: None,
            std: None,
        }),
        Op::Threshold(s::Threshold {
            input: text("a"),
            output: text("e"),
            value: None,
            percentile: None,
        }),
        Op::Objects(s::Objects {
            input: text("a"),
            output: text("f"),
            threshold: 2.5,
            min_area_km2: None,
            min_duration_steps: None,
            wind: None,
            criterion: None,
        }),
        Op::Objects(s::Objects {
            input: text("a"),
            output: text("g"),
            threshold: 2.5,
            min_area_km2: None,
            min_duration_steps: None,
            wind: Some(v1::WindComponents {
                eastward: text("u"),
                northward: text("v"),
            }),
            criterion: Some(v1::ArCriterion::default()),
        }),
    ];
    v1::PipelineSpec {
        name: text("sparse"),
        source: Some(v1::SourceSpec {
            uri: text("x.zarr"),
            variables: vec![text("a"), text("u"), text("v")],
            time: None,
            region: None,
        }),
        steps: steps
            .into_iter()
            .map(|op| v1::Step { op: Some(op) })
            .collect(),
        sinks: vec![
            v1::Sink {
                kind: Some(v1::sink::Kind::Frames(v1::sink::Frames {
                    path: Some(text("out")),
                    channel: None,
                    width_px: None,
                    height_px: None,
                    layers: vec![v1::Layer {
                        variable: text("a"),
                        colormap: String::new(),
                        range: None,
                        style: 0,
                    }],
                })),
            },
            v1::Sink {
                kind: Some(v1::sink::Kind::Zarr(v1::sink::Zarr::default())),
            },
            v1::Sink {
                kind: Some(v1::sink::Kind::Catalog(v1::sink::Catalog::default())),
            },
        ],
    }
}

#[test]
fn unset_optional_fields_take_the_toml_defaults() {
    // The same spec with every optional field left out of the TOML.
    let toml = PipelineSpec::from_toml_str(
        r#"
        name = "sparse"
        [source]
        uri = "x.zarr"
        variables = ["a", "u", "v"]
        [[step]]
        op = "expr"
        expr = "a * 2"
        output = "b"
        [[step]]
        op = "anomaly"
        input = "a"
        output = "c"
        [[step]]
        op = "normalize"
        input = "a"
        output = "d"
        [[step]]
        op = "threshold"
        input = "a"
        output = "e"
        [[step]]
        op = "objects"
        input = "a"
        output = "f"
        threshold = 2.5
        [[step]]
        op = "objects"
        input = "a"
        output = "g"
        threshold = 2.5
        wind = ["u", "v"]
        criterion = {}
        [[sink]]
        kind = "frames"
        path = "out"
        layers = [{ variable = "a" }]
        [[sink]]
        kind = "zarr"
        path = ""
        variables = []
        [[sink]]
        kind = "catalog"
        objects = ""
        path = ""
        "#,
    )
    .expect("valid TOML spec");
    let from_wire = PipelineSpec::try_from(sparse_wire_spec()).expect("converts");
    assert_eq!(from_wire, toml);

    // Spelled out, so that a change of default on either side shows here.
    let StepSpec::Expr { units, .. } = &from_wire.steps[0] else {
        panic!("expr")
    };
    assert_eq!(units, "1");
    assert_eq!(
        from_wire.steps[1],
        StepSpec::Anomaly {
            input: "a".to_owned(),
            output: "c".to_owned(),
            by: ClimatologyPeriod::Month,
            climatology: None,
        }
    );
    let StepSpec::Objects {
        min_area_km2,
        min_duration_steps,
        ..
    } = &from_wire.steps[4]
    else {
        panic!("objects")
    };
    assert_eq!((*min_area_km2, *min_duration_steps), (0.0, 1));
    let StepSpec::Objects { criterion, .. } = &from_wire.steps[5] else {
        panic!("objects")
    };
    assert_eq!(
        *criterion,
        Some(ArCriterionSpec {
            min_length_km: 2000.0,
            min_aspect: 2.0,
            require_poleward: true,
            min_coherence: 0.5,
        })
    );
}

#[test]
fn each_unset_criterion_field_takes_its_default_alone() {
    let set = v1::ArCriterion {
        min_length_km: Some(1.0),
        min_aspect: Some(1.0),
        require_poleward: Some(false),
        min_coherence: Some(0.25),
    };
    let defaults = ArCriterionSpec::default();
    let clear: [fn(&mut v1::ArCriterion); 4] = [
        |c| c.min_length_km = None,
        |c| c.min_aspect = None,
        |c| c.require_poleward = None,
        |c| c.min_coherence = None,
    ];
    for (k, clear) in clear.iter().enumerate() {
        let mut wire = sparse_wire_spec();
        let mut criterion = set;
        clear(&mut criterion);
        let Some(v1::step::Op::Objects(objects)) = wire.steps[5].op.as_mut() else {
            panic!("objects")
        };
        objects.criterion = Some(criterion);
        let spec = PipelineSpec::try_from(wire).expect("converts");
        let StepSpec::Objects {
            criterion: Some(c), ..
        } = &spec.steps[5]
        else {
            panic!("objects with a criterion")
        };
        let expected = ArCriterionSpec {
            min_length_km: if k == 0 { defaults.min_length_km } else { 1.0 },
            min_aspect: if k == 1 { defaults.min_aspect } else { 1.0 },
            require_poleward: k == 2 && defaults.require_poleward,
            min_coherence: if k == 3 { defaults.min_coherence } else { 0.25 },
        };
        assert_eq!(*c, expected, "field {k} unset");
    }
}

#[test]
fn new_values_for_the_validator_pass_through_unchanged() {
    // Zero factors and windows, both threshold levels, half a normalization, a criterion without
    // wind, a negative resolution, a catalog that is not Parquet: all the validator's to refuse.
    use v1::step::{self as s, Op};
    let mut wire = sparse_wire_spec();
    let text = |v: &str| v.to_owned();
    wire.steps = [
        Op::Coarsen(s::Coarsen {
            input: text("a"),
            output: text("b"),
            factor_lat: 0,
            factor_lon: 0,
        }),
        Op::Rolling(s::Rolling {
            input: text("a"),
            output: text("c"),
            window: 0,
        }),
        Op::Threshold(s::Threshold {
            input: text("a"),
            output: text("d"),
            value: Some(f32::NAN),
            percentile: Some(150.0),
        }),
        Op::Normalize(s::Normalize {
            input: text("a"),
            output: text("e"),
            mean: Some(1.0),
            std: None,
        }),
        Op::Regrid(s::Regrid {
            input: text("a"),
            output: text("f"),
            resolution_deg: -1.0,
        }),
        Op::Objects(s::Objects {
            input: text("a"),
            output: text("g"),
            threshold: f32::INFINITY,
            min_area_km2: Some(-5.0),
            min_duration_steps: Some(0),
            wind: None,
            criterion: Some(v1::ArCriterion {
                min_coherence: Some(2.0),
                ..Default::default()
            }),
        }),
    ]
    .into_iter()
    .map(|op| v1::Step { op: Some(op) })
    .collect();
    wire.sinks[2].kind = Some(v1::sink::Kind::Catalog(v1::sink::Catalog {
        objects: text("nowhere"),
        path: text("out/catalog.csv"),
    }));
    let spec = PipelineSpec::try_from(wire).expect("converts");
    assert!(matches!(
        spec.steps[0],
        StepSpec::Coarsen { factor: [0, 0], .. }
    ));
    assert!(matches!(spec.steps[1], StepSpec::Rolling { window: 0, .. }));
    assert!(matches!(
        spec.steps[2],
        StepSpec::Threshold { value: Some(v), percentile: Some(150.0), .. } if v.is_nan()
    ));
    assert!(matches!(
        spec.steps[3],
        StepSpec::Normalize {
            mean: Some(1.0),
            std: None,
            ..
        }
    ));
    assert!(matches!(
        spec.steps[4],
        StepSpec::Regrid {
            resolution_deg: -1.0,
            ..
        }
    ));
    let StepSpec::Objects {
        threshold,
        min_area_km2,
        min_duration_steps,
        wind,
        criterion: Some(criterion),
        ..
    } = &spec.steps[5]
    else {
        panic!("objects")
    };
    assert_eq!(
        (*threshold, *min_area_km2, *min_duration_steps, wind),
        (f32::INFINITY, -5.0, 0, &None)
    );
    assert_eq!(criterion.min_coherence, 2.0);
    assert_eq!(
        spec.sinks[2],
        SinkSpec::Catalog(CatalogSink {
            objects: "nowhere".to_owned(),
            path: "out/catalog.csv".to_owned()
        })
    );
    assert_eq!(
        spec.sinks[1],
        SinkSpec::Zarr(ZarrSink {
            path: String::new(),
            variables: Vec::new()
        })
    );
}

/// The every-op wire spec with one step's op replaced.
fn every_op_wire_with(i: usize, edit: impl FnOnce(&mut v1::step::Op)) -> v1::PipelineSpec {
    let mut wire = v1::PipelineSpec::from(&every_op_spec());
    edit(wire.steps[i].op.as_mut().expect("op"));
    wire
}

#[test]
fn block_factors_that_do_not_fit_are_refused() {
    let wire = every_op_wire_with(3, |op| {
        let v1::step::Op::Coarsen(c) = op else {
            panic!("coarsen")
        };
        c.factor_lat = -2;
    });
    let err = PipelineSpec::try_from(wire).expect_err("negative");
    assert_eq!(
        err.to_string(),
        "steps[3].coarsen.factor_lat: -2 does not fit in 0..=4294967295"
    );

    let wire = every_op_wire_with(3, |op| {
        let v1::step::Op::Coarsen(c) = op else {
            panic!("coarsen")
        };
        c.factor_lon = 1 << 32;
    });
    assert_eq!(
        PipelineSpec::try_from(wire),
        Err(ConversionError::OutOfRange {
            field: "steps[3].coarsen.factor_lon".to_owned(),
            value: 4_294_967_296,
            min: 0,
            max: 4_294_967_295,
        })
    );
}

#[test]
fn windows_that_do_not_fit_are_refused() {
    let wire = every_op_wire_with(8, |op| {
        let v1::step::Op::Rolling(r) = op else {
            panic!("rolling")
        };
        r.window = -4;
    });
    assert_eq!(
        PipelineSpec::try_from(wire)
            .expect_err("negative")
            .to_string(),
        "steps[8].rolling.window: -4 does not fit in 0..=4294967295"
    );

    let wire = every_op_wire_with(8, |op| {
        let v1::step::Op::Rolling(r) = op else {
            panic!("rolling")
        };
        r.window = i64::MAX;
    });
    let err = PipelineSpec::try_from(wire).expect_err("too large");
    assert!(
        matches!(&err, ConversionError::OutOfRange { field, value: i64::MAX, .. } if field == "steps[8].rolling.window"),
        "{err}"
    );
}

#[test]
fn durations_that_do_not_fit_are_refused() {
    for (value, shown) in [(-1, "-1"), (1 << 40, "1099511627776")] {
        let wire = every_op_wire_with(11, |op| {
            let v1::step::Op::Objects(o) = op else {
                panic!("objects")
            };
            o.min_duration_steps = Some(value);
        });
        assert_eq!(
            PipelineSpec::try_from(wire)
                .expect_err("out of range")
                .to_string(),
            format!("steps[11].objects.min_duration_steps: {shown} does not fit in 0..=4294967295")
        );
    }
}

#[test]
fn unknown_climatology_period_is_refused() {
    for value in [3, -1] {
        let wire = every_op_wire_with(5, |op| {
            let v1::step::Op::Anomaly(a) = op else {
                panic!("anomaly")
            };
            a.by = value;
        });
        let err = PipelineSpec::try_from(wire).expect_err("unknown period");
        assert!(
            matches!(&err, ConversionError::UnknownEnumValue { field, value: v, .. } if field == "steps[5].anomaly.by" && *v == value),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "steps[5].anomaly.by: unknown enum value {value} (known: 0 \
                 (CLIMATOLOGY_PERIOD_UNSPECIFIED, month), 1 (CLIMATOLOGY_PERIOD_MONTH), 2 \
                 (CLIMATOLOGY_PERIOD_DAY_OF_YEAR))"
            )
        );
    }
}

#[test]
fn unset_op_and_kind_name_their_index_among_many() {
    let mut wire = v1::PipelineSpec::from(&every_op_spec());
    wire.steps[12].op = None;
    let err = PipelineSpec::try_from(wire).expect_err("no op");
    assert!(
        matches!(&err, ConversionError::OneofNotSet { field, .. } if field == "steps[12].op"),
        "{err}"
    );

    let mut wire = v1::PipelineSpec::from(&every_op_spec());
    wire.sinks[2].kind = None;
    let err = PipelineSpec::try_from(wire).expect_err("no kind");
    assert_eq!(
        err,
        ConversionError::OneofNotSet {
            field: "sinks[2].kind".to_owned(),
            expected: "frames, zarr, catalog"
        }
    );
}

// ---- wire compatibility ----

fn message<'a>(
    set: &'a FileDescriptorSet,
    path: &[&str],
) -> &'a isotach_proto::prost_types::DescriptorProto {
    let file = set
        .file
        .iter()
        .find(|f| f.name() == "isotach/v1/pipeline.proto")
        .expect("pipeline.proto is in the descriptor set");
    let mut msg = file
        .message_type
        .iter()
        .find(|m| m.name() == path[0])
        .unwrap_or_else(|| panic!("message {}", path[0]));
    for name in &path[1..] {
        msg = msg
            .nested_type
            .iter()
            .find(|m| m.name() == *name)
            .unwrap_or_else(|| panic!("message {name} in {}", msg.name()));
    }
    msg
}

/// `(name, number, proto3 optional)` for each field of a message.
fn fields(msg: &isotach_proto::prost_types::DescriptorProto) -> Vec<(&str, i32, bool)> {
    msg.field
        .iter()
        .map(|f| (f.name(), f.number(), f.proto3_optional()))
        .collect()
}

#[test]
fn field_numbers_and_presence_are_as_published() {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set decodes");
    // Oneof members keep their numbers forever: new ones are only ever appended.
    let numbered = |path: &[&str]| -> Vec<(String, i32)> {
        message(&set, path)
            .field
            .iter()
            .map(|f| (f.name().to_owned(), f.number()))
            .collect()
    };
    let expect = |names: &[&str]| -> Vec<(String, i32)> {
        names
            .iter()
            .zip(1..)
            .map(|(n, i)| ((*n).to_owned(), i))
            .collect()
    };
    assert_eq!(
        numbered(&["Step"]),
        expect(&[
            "magnitude",
            "expr",
            "units",
            "coarsen",
            "regrid",
            "anomaly",
            "normalize",
            "rolling",
            "threshold",
            "objects",
            "ivt",
            "infer"
        ])
    );
    assert_eq!(
        fields(message(&set, &["Step", "Infer"]))[4..],
        [
            ("units", 5, true),
            ("model_output", 6, true),
            ("patch_size", 7, true),
            ("halo", 8, true),
            ("batch_size", 9, true),
            ("max_batch_delay_ms", 10, true),
            ("max_batches_in_flight", 11, true),
            ("timeout_ms", 12, true)
        ]
    );
    assert_eq!(numbered(&["Sink"]), expect(&["frames", "zarr", "catalog"]));

    // Fields whose absence means a default or "unset" have presence on the wire.
    assert_eq!(
        fields(message(&set, &["Step", "Expr"])),
        [("expr", 1, false), ("output", 2, false), ("units", 3, true)]
    );
    assert_eq!(
        fields(message(&set, &["Step", "Coarsen"])),
        [
            ("input", 1, false),
            ("output", 2, false),
            ("factor_lat", 3, false),
            ("factor_lon", 4, false)
        ]
    );
    assert_eq!(
        fields(message(&set, &["Step", "Normalize"]))[2..],
        [("mean", 3, true), ("std", 4, true)]
    );
    assert_eq!(
        fields(message(&set, &["Step", "Threshold"]))[2..],
        [("value", 3, true), ("percentile", 4, true)]
    );
    assert_eq!(
        fields(message(&set, &["Step", "Objects"]))[2..],
        [
            ("threshold", 3, false),
            ("min_area_km2", 4, true),
            ("min_duration_steps", 5, true),
            // Message fields always have presence.
            ("wind", 6, false),
            ("criterion", 7, false)
        ]
    );
    assert!(
        fields(message(&set, &["ArCriterion"]))
            .iter()
            .all(|(_, _, optional)| *optional)
    );
    assert_eq!(
        v1::ClimatologyPeriod::Unspecified as i32,
        0,
        "unset means the default"
    );
    assert_eq!(
        v1::ClimatologyPeriod::DayOfYear.as_str_name(),
        "CLIMATOLOGY_PERIOD_DAY_OF_YEAR"
    );
}

#[test]
fn ivt_without_wind_is_refused() {
    let mut wire = v1::PipelineSpec::from(&every_op_spec());
    let Some(v1::step::Op::Ivt(ivt)) = &mut wire.steps[13].op else {
        panic!("step 13 is ivt")
    };
    ivt.wind = None;
    let e = PipelineSpec::try_from(wire).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "steps[13].ivt.wind is missing; it is required"
    );
}

#[test]
fn an_infer_step_with_every_tuning_field_unset_takes_the_toml_defaults() {
    let toml = PipelineSpec::from_toml_str(
        r#"
        name = "sparse-infer"
        [source]
        uri = "x.zarr"
        variables = ["ivt"]
        [[step]]
        op = "infer"
        model = "ar_unet"
        inputs = ["ivt"]
        output = "p"
        workers = ["http://127.0.0.1:8001"]
        [[sink]]
        kind = "zarr"
        path = "out.zarr"
        variables = ["p"]
        "#,
    )
    .expect("valid TOML spec");
    let mut wire = v1::PipelineSpec::from(&toml);
    let Some(v1::step::Op::Infer(infer)) = &mut wire.steps[0].op else {
        panic!("step 0 is infer")
    };
    *infer = v1::step::Infer {
        model: infer.model.clone(),
        inputs: infer.inputs.clone(),
        output: infer.output.clone(),
        workers: infer.workers.clone(),
        ..Default::default()
    };
    assert_eq!(PipelineSpec::try_from(wire).expect("converts"), toml);
    let StepSpec::Infer {
        units,
        patch_size,
        halo,
        batch_size,
        max_batch_delay_ms,
        max_batches_in_flight,
        timeout_ms,
        model_output,
        ..
    } = &toml.steps[0]
    else {
        panic!("infer")
    };
    assert_eq!(
        (
            units.as_str(),
            *patch_size,
            *halo,
            *batch_size,
            *max_batch_delay_ms,
            *max_batches_in_flight,
            *timeout_ms,
            model_output.as_deref()
        ),
        ("1", 256, 16, 8, 5, 4, 30_000, None)
    );
}

#[test]
fn an_unknown_layer_style_is_refused_listing_the_known_ones() {
    let mut wire = v1::PipelineSpec::from(&every_op_spec());
    let Some(v1::sink::Kind::Frames(frames)) = &mut wire.sinks[0].kind else {
        panic!("sink 0 is frames")
    };
    frames.layers[0].style = 7;
    let e = PipelineSpec::try_from(wire).expect_err("refused");
    assert_eq!(
        e.to_string(),
        "sinks[0].frames.layers[0].style: unknown enum value 7 (known: 0 \
         (LAYER_STYLE_UNSPECIFIED, field), 1 (LAYER_STYLE_FIELD), 2 (LAYER_STYLE_OBJECTS))"
    );
}
