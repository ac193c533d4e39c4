//! The `inference` package must stay wire-compatible with KServe v2's `grpc_predict_v2.proto`.
//!
//! The expected table below was transcribed from KServe's file
//! (`docs/predict-api/v2/grpc_predict_v2.proto`): every message, field name, number, label and
//! type, and every method of `GRPCInferenceService`. The test reads the compiled descriptor set
//! this crate ships, so a renumbered, renamed or retyped field fails here.

use std::collections::BTreeMap;

use isotach_proto::inference::model_infer_request::InferInputTensor;
use isotach_proto::inference::{InferParameter, ModelInferRequest, infer_parameter};
use isotach_proto::prost_types::field_descriptor_proto::{Label, Type};
use isotach_proto::prost_types::{
    DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
};
use isotach_proto::{FILE_DESCRIPTOR_SET, v1};
use prost::Message;

const MAP: &str = "map<string, .inference.InferParameter>";

/// KServe v2's messages: name -> [(field, number, type as written in the .proto)].
fn kserve_messages() -> BTreeMap<&'static str, Vec<(&'static str, i32, &'static str)>> {
    BTreeMap::from([
        ("ServerLiveRequest", vec![]),
        ("ServerLiveResponse", vec![("live", 1, "bool")]),
        ("ServerReadyRequest", vec![]),
        ("ServerReadyResponse", vec![("ready", 1, "bool")]),
        (
            "ModelReadyRequest",
            vec![("name", 1, "string"), ("version", 2, "string")],
        ),
        ("ModelReadyResponse", vec![("ready", 1, "bool")]),
        ("ServerMetadataRequest", vec![]),
        (
            "ServerMetadataResponse",
            vec![
                ("name", 1, "string"),
                ("version", 2, "string"),
                ("extensions", 3, "repeated string"),
            ],
        ),
        (
            "ModelMetadataRequest",
            vec![("name", 1, "string"), ("version", 2, "string")],
        ),
        (
            "ModelMetadataResponse",
            vec![
                ("name", 1, "string"),
                ("versions", 2, "repeated string"),
                ("platform", 3, "string"),
                (
                    "inputs",
                    4,
                    "repeated .inference.ModelMetadataResponse.TensorMetadata",
                ),
                (
                    "outputs",
                    5,
                    "repeated .inference.ModelMetadataResponse.TensorMetadata",
                ),
            ],
        ),
        (
            "ModelMetadataResponse.TensorMetadata",
            vec![
                ("name", 1, "string"),
                ("datatype", 2, "string"),
                ("shape", 3, "repeated int64"),
            ],
        ),
        (
            "ModelInferRequest",
            vec![
                ("model_name", 1, "string"),
                ("model_version", 2, "string"),
                ("id", 3, "string"),
                ("parameters", 4, MAP),
                (
                    "inputs",
                    5,
                    "repeated .inference.ModelInferRequest.InferInputTensor",
                ),
                (
                    "outputs",
                    6,
                    "repeated .inference.ModelInferRequest.InferRequestedOutputTensor",
                ),
                ("raw_input_contents", 7, "repeated bytes"),
            ],
        ),
        (
            "ModelInferRequest.InferInputTensor",
            vec![
                ("name", 1, "string"),
                ("datatype", 2, "string"),
                ("shape", 3, "repeated int64"),
                ("parameters", 4, MAP),
                ("contents", 5, ".inference.InferTensorContents"),
            ],
        ),
        (
            "ModelInferRequest.InferRequestedOutputTensor",
            vec![("name", 1, "string"), ("parameters", 2, MAP)],
        ),
        (
            "ModelInferResponse",
            vec![
                ("model_name", 1, "string"),
                ("model_version", 2, "string"),
                ("id", 3, "string"),
                ("parameters", 4, MAP),
                (
                    "outputs",
                    5,
                    "repeated .inference.ModelInferResponse.InferOutputTensor",
                ),
                ("raw_output_contents", 6, "repeated bytes"),
            ],
        ),
        (
            "ModelInferResponse.InferOutputTensor",
            vec![
                ("name", 1, "string"),
                ("datatype", 2, "string"),
                ("shape", 3, "repeated int64"),
                ("parameters", 4, MAP),
                ("contents", 5, ".inference.InferTensorContents"),
            ],
        ),
        (
            "InferParameter",
            vec![
                ("bool_param", 1, "oneof parameter_choice bool"),
                ("int64_param", 2, "oneof parameter_choice int64"),
                ("string_param", 3, "oneof parameter_choice string"),
            ],
        ),
        (
            "InferTensorContents",
            vec![
                ("bool_contents", 1, "repeated bool"),
                ("int_contents", 2, "repeated int32"),
                ("int64_contents", 3, "repeated int64"),
                ("uint_contents", 4, "repeated uint32"),
                ("uint64_contents", 5, "repeated uint64"),
                ("fp32_contents", 6, "repeated float"),
                ("fp64_contents", 7, "repeated double"),
                ("bytes_contents", 8, "repeated bytes"),
            ],
        ),
    ])
}

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("the shipped descriptor set decodes")
}

fn file<'a>(set: &'a FileDescriptorSet, name: &str) -> &'a FileDescriptorProto {
    set.file
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("{name} is in the descriptor set"))
}

fn scalar(t: Type) -> &'static str {
    match t {
        Type::Bool => "bool",
        Type::Int32 => "int32",
        Type::Int64 => "int64",
        Type::Uint32 => "uint32",
        Type::Uint64 => "uint64",
        Type::Float => "float",
        Type::Double => "double",
        Type::String => "string",
        Type::Bytes => "bytes",
        other => panic!("unexpected type {other:?}"),
    }
}

/// A field as it would be written in a .proto file.
fn describe(message: &DescriptorProto, field: &FieldDescriptorProto) -> String {
    let base = match field.r#type() {
        Type::Message => field.type_name().to_owned(),
        t => scalar(t).to_owned(),
    };
    let entry = message.nested_type.iter().find(|n| {
        n.options.as_ref().is_some_and(|o| o.map_entry())
            && field.type_name().ends_with(&format!(".{}", n.name()))
    });
    if let Some(entry) = entry {
        let key = describe(entry, &entry.field[0]);
        let value = describe(entry, &entry.field[1]);
        return format!("map<{key}, {value}>");
    }
    if let Some(oneof) = field.oneof_index.filter(|_| !field.proto3_optional()) {
        return format!("oneof {} {base}", message.oneof_decl[oneof as usize].name());
    }
    match field.label() {
        Label::Repeated => format!("repeated {base}"),
        _ => base,
    }
}

fn collect(
    prefix: &str,
    message: &DescriptorProto,
    out: &mut BTreeMap<String, Vec<(String, i32, String)>>,
) {
    if message.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let name = if prefix.is_empty() {
        message.name().to_owned()
    } else {
        format!("{prefix}.{}", message.name())
    };
    let fields = message
        .field
        .iter()
        .map(|f| (f.name().to_owned(), f.number(), describe(message, f)))
        .collect();
    for nested in &message.nested_type {
        collect(&name, nested, out);
    }
    out.insert(name, fields);
}

#[test]
fn inference_messages_match_kserve_v2() {
    let set = descriptor_set();
    let proto = file(&set, "inference/grpc_predict_v2.proto");
    assert_eq!(proto.package(), "inference");
    assert_eq!(proto.syntax(), "proto3");

    let mut actual = BTreeMap::new();
    for message in &proto.message_type {
        collect("", message, &mut actual);
    }
    let expected: BTreeMap<String, Vec<(String, i32, String)>> = kserve_messages()
        .into_iter()
        .map(|(m, fields)| {
            (
                m.to_owned(),
                fields
                    .into_iter()
                    .map(|(f, n, t)| (f.to_owned(), n, t.to_owned()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "message set"
    );
    for (message, fields) in &expected {
        assert_eq!(&actual[message], fields, "fields of {message}");
    }
}

#[test]
fn inference_service_matches_kserve_v2() {
    let set = descriptor_set();
    let proto = file(&set, "inference/grpc_predict_v2.proto");
    assert_eq!(proto.service.len(), 1);
    let service = &proto.service[0];
    assert_eq!(service.name(), "GRPCInferenceService");
    let methods: Vec<(&str, &str, &str, bool)> = service
        .method
        .iter()
        .map(|m| {
            (
                m.name(),
                m.input_type(),
                m.output_type(),
                m.client_streaming() || m.server_streaming(),
            )
        })
        .collect();
    let rpc = |name: &'static str| -> (String, String, String) {
        (
            name.to_owned(),
            format!(".inference.{name}Request"),
            format!(".inference.{name}Response"),
        )
    };
    let expected: Vec<(String, String, String)> = [
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
    ]
    .map(rpc)
    .into();
    assert_eq!(methods.len(), expected.len());
    for ((name, input, output, streaming), (e_name, e_input, e_output)) in
        methods.iter().zip(&expected)
    {
        assert_eq!(
            (*name, *input, *output, *streaming),
            (e_name.as_str(), e_input.as_str(), e_output.as_str(), false)
        );
    }
}

#[test]
fn model_infer_request_bytes_use_kserve_field_numbers() {
    let request = ModelInferRequest {
        model_name: "m".to_owned(),
        inputs: vec![InferInputTensor {
            name: "x".to_owned(),
            datatype: "FP32".to_owned(),
            shape: vec![1],
            ..Default::default()
        }],
        raw_input_contents: vec![1f32.to_le_bytes().to_vec()],
        ..Default::default()
    };
    // 1: model_name "m"; 5: inputs { 1: name "x", 2: datatype "FP32", 3: shape [1] (packed) };
    // 7: raw_input_contents [00 00 80 3f].
    let expected: Vec<u8> = vec![
        0x0a, 0x01, b'm', //
        0x2a, 0x0c, 0x0a, 0x01, b'x', 0x12, 0x04, b'F', b'P', b'3', b'2', 0x1a, 0x01, 0x01, //
        0x3a, 0x04, 0x00, 0x00, 0x80, 0x3f,
    ];
    assert_eq!(request.encode_to_vec(), expected);

    let parameter = InferParameter {
        parameter_choice: Some(infer_parameter::ParameterChoice::Int64Param(300)),
    };
    // 2: int64_param 300 as a varint.
    assert_eq!(parameter.encode_to_vec(), [0x10, 0xac, 0x02]);
}

#[test]
fn isotach_v1_files_are_in_the_descriptor_set() {
    let set = descriptor_set();
    for name in [
        "isotach/v1/pipeline.proto",
        "isotach/v1/job.proto",
        "isotach/v1/frame.proto",
    ] {
        assert_eq!(file(&set, name).package(), "isotach.v1", "{name}");
    }
    let job = file(&set, "isotach/v1/job.proto");
    let methods: Vec<&str> = job.service[0].method.iter().map(|m| m.name()).collect();
    assert_eq!(methods, ["Submit", "Get", "List", "Watch", "Cancel"]);
    let watch = &job.service[0].method[3];
    assert!(watch.server_streaming() && !watch.client_streaming());
    let frame = file(&set, "isotach/v1/frame.proto");
    let services: Vec<&str> = frame.service.iter().map(|s| s.name()).collect();
    assert_eq!(services, ["FrameService", "WallSync", "ReplayControl"]);
    assert!(frame.service[0].method[0].server_streaming());
    let replay: Vec<&str> = frame.service[2].method.iter().map(|m| m.name()).collect();
    assert_eq!(replay, ["Start", "Control", "Get", "Stop"]);
    // The generated enums carry protobuf's names.
    assert_eq!(
        v1::ReplayState::Playing.as_str_name(),
        "REPLAY_STATE_PLAYING"
    );
}
