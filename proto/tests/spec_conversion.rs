//! `isotach.v1.PipelineSpec` <-> `isotach_core::PipelineSpec`: round trips, the wire encoding,
//! and every conversion error.

use isotach_core::{
    Colormap, FramesSink, LayerSpec, PipelineSpec, RegionBox, SinkSpec, SourceSpec, StepSpec,
    TimeRange,
};
use isotach_proto::prost_types::Timestamp;
use isotach_proto::{ConversionError, v1};
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
                path: "out/frames".to_owned(),
                width_px: 1920,
                height_px: 1080,
                layers: vec![
                    LayerSpec {
                        variable: "ivt".to_owned(),
                        colormap: Colormap::Magma,
                        range: Some([0.0, 1000.0]),
                    },
                    LayerSpec {
                        variable: "tcwv".to_owned(),
                        colormap: Colormap::Coolwarm,
                        range: None,
                    },
                ],
            }),
            SinkSpec::Frames(FramesSink {
                path: "out/small".to_owned(),
                width_px: 64,
                height_px: 64,
                layers: vec![LayerSpec {
                    variable: "odd".to_owned(),
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
        None => panic!("sink {i} has no kind"),
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
    let SinkSpec::Frames(frames) = &spec.sinks[0];
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
    let SinkSpec::Frames(frames) = &spec.sinks[0];
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
        "steps[1].op is not set; set one of: magnitude"
    );
}

#[test]
fn sink_without_kind_is_refused() {
    let mut msg = wire_spec();
    msg.sinks[0].kind = None;
    let err = PipelineSpec::try_from(msg).expect_err("no kind");
    assert_eq!(
        err.to_string(),
        "sinks[0].kind is not set; set one of: frames"
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
