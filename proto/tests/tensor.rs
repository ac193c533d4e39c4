//! Tensors through `ModelInferRequest` and `ModelInferResponse`: raw and typed contents, and
//! every way a peer can get them wrong.

use isotach_proto::inference::model_infer_request::InferInputTensor;
use isotach_proto::inference::model_infer_response::InferOutputTensor;
use isotach_proto::inference::{InferTensorContents, ModelInferRequest, ModelInferResponse};
use isotach_proto::tensor::{infer_request, infer_response, request_tensors, response_tensors};
use isotach_proto::{DataType, Tensor, TensorError};
use prost::Message;

fn output(
    name: &str,
    datatype: &str,
    shape: &[i64],
    contents: Option<InferTensorContents>,
) -> InferOutputTensor {
    InferOutputTensor {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape: shape.to_vec(),
        contents,
        ..Default::default()
    }
}

#[test]
fn fp32_raw_request_round_trips() {
    let ivt: Vec<f32> = (0..6).map(|i| i as f32 * 125.5 - 3.0).collect();
    let mask = Tensor::new("mask", DataType::Uint8, [2, 3], vec![0, 1, 1, 0, 0, 1]).expect("mask");
    let inputs = vec![
        Tensor::from_f32("ivt", [1, 2, 3], &ivt).expect("ivt"),
        mask.clone(),
    ];

    let request = infer_request("ar_unet", inputs.clone()).expect("request");
    assert_eq!(request.model_name, "ar_unet");
    assert_eq!(request.inputs.len(), 2);
    assert_eq!(request.inputs[0].name, "ivt");
    assert_eq!(request.inputs[0].datatype, "FP32");
    assert_eq!(request.inputs[0].shape, [1, 2, 3]);
    assert_eq!(request.inputs[0].contents, None);
    assert_eq!(request.inputs[1].datatype, "UINT8");
    assert_eq!(
        request.raw_input_contents[0],
        ivt.iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    );
    assert_eq!(request.raw_input_contents[1], [0, 1, 1, 0, 0, 1]);

    let decoded = ModelInferRequest::decode(request.encode_to_vec().as_slice()).expect("decodes");
    let back = request_tensors(decoded).expect("tensors");
    assert_eq!(back, inputs);
    assert_eq!(back[0].to_f32(), Ok(ivt));
}

#[test]
fn fp32_raw_response_round_trips() {
    let prob = [0.0f32, 0.25, 0.5, 1.0, f32::MIN_POSITIVE, -0.0];
    let outputs = vec![Tensor::from_f32("ar_prob", [1, 6], &prob).expect("prob")];
    let mut response = infer_response("ar_unet", outputs.clone()).expect("response");
    response.id = "batch-4".to_owned();

    let decoded = ModelInferResponse::decode(response.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(decoded.id, "batch-4");
    assert_eq!(decoded.raw_output_contents.len(), 1);
    let back = response_tensors(decoded).expect("tensors");
    assert_eq!(back, outputs);
    let values = back[0].to_f32().expect("f32");
    assert_eq!(
        values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        prob.map(f32::to_bits)
    );
}

#[test]
fn typed_fp32_contents_are_read_when_raw_is_absent() {
    let response = ModelInferResponse {
        model_name: "m".to_owned(),
        outputs: vec![output(
            "y",
            "FP32",
            &[2, 2],
            Some(InferTensorContents {
                fp32_contents: vec![1.5, -2.0, 3.25, 1e-3],
                ..Default::default()
            }),
        )],
        ..Default::default()
    };
    let decoded = ModelInferResponse::decode(response.encode_to_vec().as_slice()).expect("decodes");
    let tensors = response_tensors(decoded).expect("tensors");
    assert_eq!(tensors.len(), 1);
    assert_eq!(tensors[0].name, "y");
    assert_eq!(tensors[0].datatype, DataType::Fp32);
    assert_eq!(tensors[0].shape, [2, 2]);
    assert_eq!(tensors[0].data.len(), 16);
    assert_eq!(tensors[0].to_f32(), Ok(vec![1.5, -2.0, 3.25, 1e-3]));
}

#[test]
fn typed_integer_and_bool_contents_become_little_endian_bytes() {
    let request = ModelInferRequest {
        model_name: "m".to_owned(),
        inputs: vec![
            InferInputTensor {
                name: "i8".to_owned(),
                datatype: "INT8".to_owned(),
                shape: vec![3],
                contents: Some(InferTensorContents {
                    int_contents: vec![-128, 0, 127],
                    ..Default::default()
                }),
                ..Default::default()
            },
            InferInputTensor {
                name: "i64".to_owned(),
                datatype: "INT64".to_owned(),
                shape: vec![2],
                contents: Some(InferTensorContents {
                    int64_contents: vec![-1, 1 << 40],
                    ..Default::default()
                }),
                ..Default::default()
            },
            InferInputTensor {
                name: "b".to_owned(),
                datatype: "BOOL".to_owned(),
                shape: vec![1, 2],
                contents: Some(InferTensorContents {
                    bool_contents: vec![true, false],
                    ..Default::default()
                }),
                ..Default::default()
            },
            InferInputTensor {
                name: "u16".to_owned(),
                datatype: "UINT16".to_owned(),
                shape: vec![1],
                contents: Some(InferTensorContents {
                    uint_contents: vec![0xbeef],
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let tensors = request_tensors(request).expect("tensors");
    assert_eq!(tensors[0].data, [0x80, 0x00, 0x7f]);
    assert_eq!(
        tensors[1].data,
        [(-1i64).to_le_bytes(), (1i64 << 40).to_le_bytes()].concat()
    );
    assert_eq!(tensors[2].data, [1, 0]);
    assert_eq!(tensors[3].data, [0xef, 0xbe]);
}

#[test]
fn typed_values_outside_the_datatype_are_refused() {
    let request = ModelInferRequest {
        inputs: vec![InferInputTensor {
            name: "i8".to_owned(),
            datatype: "INT8".to_owned(),
            shape: vec![2],
            contents: Some(InferTensorContents {
                int_contents: vec![5, 300],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let err = request_tensors(request).expect_err("300 is not an INT8");
    assert_eq!(
        err.to_string(),
        "tensor \"i8\": value 300 at index 1 of contents.int_contents does not fit INT8"
    );
}

#[test]
fn typed_value_count_must_match_the_shape() {
    let response = ModelInferResponse {
        outputs: vec![output(
            "y",
            "FP32",
            &[2, 3],
            Some(InferTensorContents {
                fp32_contents: vec![1.0; 4],
                ..Default::default()
            }),
        )],
        ..Default::default()
    };
    let err = response_tensors(response).expect_err("4 of 6");
    assert_eq!(
        err.to_string(),
        "tensor \"y\": shape [2, 3] needs 6 values in contents.fp32_contents, got 4"
    );
}

#[test]
fn fp16_is_two_bytes_and_widens_to_f32() {
    assert_eq!(DataType::Fp16.size_bytes(), 2);
    assert_eq!(DataType::Fp16.name(), "FP16");
    // 1.0, -2.0, 0.5, 65504 (largest finite), 2^-24 (smallest subnormal), +inf.
    let bits: [u16; 6] = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00];
    let data: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
    assert_eq!(data.len(), 12);
    let t = Tensor::new("h", DataType::Fp16, [2, 3], data).expect("12 bytes for 6 FP16 values");
    assert_eq!(t.element_count(), Ok(6));
    assert_eq!(
        t.to_f32(),
        Ok(vec![1.0, -2.0, 0.5, 65504.0, 2f32.powi(-24), f32::INFINITY])
    );

    // Sized as FP32 by mistake: 24 bytes.
    let err = Tensor::new("h", DataType::Fp16, [2, 3], vec![0; 24]).expect_err("24 bytes");
    assert_eq!(
        err.to_string(),
        "tensor \"h\" (FP16, shape [2, 3]) needs 12 bytes, got 24"
    );
}

#[test]
fn fp16_cannot_travel_as_typed_contents() {
    let response = ModelInferResponse {
        outputs: vec![output(
            "h",
            "FP16",
            &[2],
            Some(InferTensorContents {
                fp32_contents: vec![1.0, 2.0],
                ..Default::default()
            }),
        )],
        ..Default::default()
    };
    let err = response_tensors(response).expect_err("FP16 typed");
    assert_eq!(
        err,
        TensorError::RawOnly {
            tensor: "h".to_owned(),
            datatype: DataType::Fp16
        }
    );
    assert!(err.to_string().contains("raw bytes"), "{err}");
}

#[test]
fn element_sizes_follow_the_protocol() {
    let sizes: Vec<(&str, usize)> = DataType::ALL
        .iter()
        .map(|d| (d.name(), d.size_bytes()))
        .collect();
    assert_eq!(
        sizes,
        [
            ("BOOL", 1),
            ("UINT8", 1),
            ("UINT16", 2),
            ("UINT32", 4),
            ("UINT64", 8),
            ("INT8", 1),
            ("INT16", 2),
            ("INT32", 4),
            ("INT64", 8),
            ("FP16", 2),
            ("FP32", 4),
            ("FP64", 8),
        ]
    );
}

#[test]
fn byte_count_mismatch_names_tensor_shape_and_counts() {
    let err = Tensor::new("ivt", DataType::Fp32, [2, 3], vec![0; 20]).expect_err("20 bytes");
    assert_eq!(
        err,
        TensorError::ByteCount {
            tensor: "ivt".to_owned(),
            datatype: DataType::Fp32,
            shape: vec![2, 3],
            expected: 24,
            actual: 20,
        }
    );
    assert_eq!(
        err.to_string(),
        "tensor \"ivt\" (FP32, shape [2, 3]) needs 24 bytes, got 20"
    );

    // The same check on raw contents a server sent back.
    let response = ModelInferResponse {
        outputs: vec![output("ar_prob", "FP64", &[4], None)],
        raw_output_contents: vec![vec![0; 16]],
        ..Default::default()
    };
    let err = response_tensors(response).expect_err("16 of 32 bytes");
    assert_eq!(
        err.to_string(),
        "tensor \"ar_prob\" (FP64, shape [4]) needs 32 bytes, got 16"
    );
}

#[test]
fn from_f32_checks_the_value_count() {
    let err = Tensor::from_f32("x", [3, 3], &[0.0; 8]).expect_err("8 of 9");
    assert_eq!(
        err.to_string(),
        "tensor \"x\": shape [3, 3] needs 9 values in values, got 8"
    );
}

#[test]
fn negative_dimensions_are_refused() {
    let err = Tensor::from_f32("x", [-1, 4], &[]).expect_err("-1");
    assert_eq!(
        err.to_string(),
        "tensor \"x\": shape [-1, 4] has a negative dimension; a tensor with data needs sizes >= 0"
    );
    let response = ModelInferResponse {
        outputs: vec![output("y", "FP32", &[2, -3], None)],
        raw_output_contents: vec![vec![0; 24]],
        ..Default::default()
    };
    assert!(
        matches!(response_tensors(response), Err(TensorError::NegativeDimension { tensor, .. }) if tensor == "y")
    );
}

#[test]
fn unknown_datatype_lists_the_known_ones() {
    let response = ModelInferResponse {
        outputs: vec![output("label", "BYTES", &[1], None)],
        raw_output_contents: vec![b"\x03\x00\x00\x00abc".to_vec()],
        ..Default::default()
    };
    let err = response_tensors(response).expect_err("BYTES");
    assert_eq!(
        err.to_string(),
        "tensor \"label\": unknown datatype \"BYTES\" (known: BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64)"
    );
}

#[test]
fn raw_contents_must_match_the_tensor_count() {
    let response = ModelInferResponse {
        outputs: vec![
            output("a", "FP32", &[1], None),
            output("b", "FP32", &[1], None),
        ],
        raw_output_contents: vec![1f32.to_le_bytes().to_vec()],
        ..Default::default()
    };
    let err = response_tensors(response).expect_err("1 raw for 2 outputs");
    assert_eq!(
        err,
        TensorError::RawCountMismatch {
            raw_field: "raw_output_contents",
            raw: 1,
            tensors_field: "outputs",
            tensors: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "raw_output_contents has 1 entries but outputs has 2 tensors; give one entry per tensor, in order"
    );

    let request = ModelInferRequest {
        raw_input_contents: vec![vec![0; 4]],
        ..Default::default()
    };
    let err = request_tensors(request).expect_err("1 raw for no inputs");
    assert!(
        err.to_string()
            .starts_with("raw_input_contents has 1 entries but inputs has 0 tensors"),
        "{err}"
    );
}

#[test]
fn raw_and_typed_contents_do_not_mix() {
    let response = ModelInferResponse {
        outputs: vec![
            output("a", "FP32", &[1], None),
            output(
                "b",
                "FP32",
                &[1],
                Some(InferTensorContents {
                    fp32_contents: vec![2.0],
                    ..Default::default()
                }),
            ),
        ],
        raw_output_contents: vec![vec![0; 4], vec![0; 4]],
        ..Default::default()
    };
    let err = response_tensors(response).expect_err("mixed");
    assert_eq!(
        err.to_string(),
        "tensor \"b\" sets typed contents while raw_output_contents is used; send every tensor one way"
    );
}

#[test]
fn request_building_validates_every_input() {
    let good = Tensor::from_f32("a", [2], &[1.0, 2.0]).expect("good");
    let bad = Tensor {
        name: "b".to_owned(),
        datatype: DataType::Int32,
        shape: vec![2],
        data: vec![0; 7],
    };
    let err = infer_request("m", vec![good.clone(), bad]).expect_err("7 bytes");
    assert_eq!(
        err.to_string(),
        "tensor \"b\" (INT32, shape [2]) needs 8 bytes, got 7"
    );

    let err = infer_request("m", vec![good.clone(), good]).expect_err("duplicate");
    assert_eq!(
        err.to_string(),
        "tensor name \"a\" appears more than once in inputs; names must be unique"
    );
}

#[test]
fn to_f32_refuses_other_datatypes() {
    let t = Tensor::new("n", DataType::Int64, [1], vec![0; 8]).expect("int64");
    let err = t.to_f32().expect_err("INT64");
    assert_eq!(
        err.to_string(),
        "tensor \"n\" is INT64; expected FP32 or FP16"
    );
}

#[test]
fn empty_and_scalar_tensors_work() {
    let empty = Tensor::from_f32("e", [0, 5], &[]).expect("empty");
    assert_eq!(empty.data.len(), 0);
    assert_eq!(empty.to_f32(), Ok(vec![]));
    let scalar = Tensor::from_f32("s", Vec::<i64>::new(), &[4.5]).expect("scalar");
    let response = infer_response("m", vec![empty.clone(), scalar.clone()]).expect("response");
    assert_eq!(response_tensors(response), Ok(vec![empty, scalar]));
}
