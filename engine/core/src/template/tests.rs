use std::sync::Arc;

use arrow::array::{BooleanArray, Float64Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use super::*;
use crate::StepSpec;

/// A template with an inline spec: `threshold` × `region`, objects with a catalog and a Zarr
/// store per point.
const TEMPLATE: &str = r#"
[sweep]
name = "unit"
description = "threshold by region"

[parameters]
threshold = [250.0, 300]

[parameters.region]
pacific = { lat = [20.0, 60.0], lon = [150.0, -110.0] }
atlantic = { lat = [20.0, 60.0], lon = [-80.0, -10.0] }

[metrics]
iou = [{ prediction = "ar_id", labels = "ivt_high" }]

[spec]
name = "{{sweep}}"
[spec.source]
uri = "data/demo.zarr"
variables = ["ivt_u", "ivt_v"]
region = "{{region}}"

[[spec.step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"

[[spec.step]]
op = "threshold"
input = "ivt"
output = "ivt_high"
value = 300.0

[[spec.step]]
op = "objects"
input = "ivt"
output = "ar_id"
threshold = "{{threshold}}"

[[spec.sink]]
kind = "zarr"
path = "out/{{sweep}}/{{point}}/fields.zarr"
variables = ["ivt_high", "ar_id"]

[[spec.sink]]
kind = "catalog"
objects = "ar_id"
path = "out/{{sweep}}/{{point}}/catalog.arrow"
"#;

fn no_file(path: &str) -> Result<String, String> {
    Err(format!("no file {path} in this test"))
}

fn parse(text: &str) -> Result<SweepTemplate, TemplateError> {
    SweepTemplate::from_toml_str(text, no_file)
}

fn message(result: Result<impl std::fmt::Debug, TemplateError>) -> String {
    result.expect_err("must be refused").to_string()
}

fn objects_threshold(spec: &PipelineSpec) -> f32 {
    spec.steps
        .iter()
        .find_map(|s| match s {
            StepSpec::Objects { threshold, .. } => Some(*threshold),
            _ => None,
        })
        .expect("objects step")
}

#[test]
fn parameters_keep_their_declared_order_and_labels() {
    let template = parse(TEMPLATE).expect("valid");
    assert_eq!(template.name, "unit");
    assert_eq!(template.description.as_deref(), Some("threshold by region"));
    let names: Vec<&str> = template
        .parameters
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["threshold", "region"]);
    let labels = |i: usize| -> Vec<&str> {
        template.parameters[i]
            .values
            .iter()
            .map(|v| v.label.as_str())
            .collect()
    };
    assert_eq!(labels(0), ["250", "300"]);
    // Declaration order, not alphabetical.
    assert_eq!(labels(1), ["pacific", "atlantic"]);
    assert_eq!(template.grid_size(), 4);
}

#[test]
fn the_grid_expands_with_the_first_parameter_slowest_and_typed_values() {
    let template = parse(TEMPLATE).expect("valid");
    let points = template.points().expect("every point is valid");
    let ids: Vec<&str> = points.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "threshold-250_region-pacific",
            "threshold-250_region-atlantic",
            "threshold-300_region-pacific",
            "threshold-300_region-atlantic",
        ]
    );
    assert_eq!(
        points.iter().map(|p| p.index).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    let p = &points[3];
    assert_eq!(p.describe(), "threshold = 300, region = atlantic");
    // A whole-string placeholder became a number (an integer in the template, an f32 in the spec)
    // and a table.
    assert_eq!(objects_threshold(&p.spec), 300.0);
    let region = p.spec.source.region.expect("region");
    assert_eq!(region.lat, [20.0, 60.0]);
    assert_eq!(region.lon, [-80.0, -10.0]);
    // Embedded placeholders became text.
    assert_eq!(p.spec.name, "unit");
    let SinkSpec::Zarr(zarr) = &p.spec.sinks[0] else {
        panic!("zarr sink first")
    };
    assert_eq!(
        zarr.path,
        "out/unit/threshold-300_region-atlantic/fields.zarr"
    );
    // The canonical spec is the spec, parsed back.
    assert_eq!(
        PipelineSpec::from_toml_str(&p.canonical_spec).expect("parses"),
        p.spec
    );
}

#[test]
fn the_canonical_spec_ignores_formatting_comments_and_defaults_written_out() {
    let points = parse(TEMPLATE).expect("valid").points().expect("points");
    let reformatted = TEMPLATE
        .replace(
            "threshold = \"{{threshold}}\"",
            "threshold = \"{{ threshold }}\"   # the swept level\nmin_area_km2 = 0.0",
        )
        .replace("[spec]\n", "[spec]\n# a comment\n");
    let again = parse(&reformatted)
        .expect("valid")
        .points()
        .expect("points");
    for (a, b) in points.iter().zip(&again) {
        assert_eq!(a.canonical_spec, b.canonical_spec, "{}", a.id);
    }
    let distinct: BTreeSet<&str> = points.iter().map(|p| p.canonical_spec.as_str()).collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn inside_text_scalars_give_their_value_and_tables_their_label() {
    let text = TEMPLATE
        .replace(
            "[parameters]\nthreshold = [250.0, 300]",
            "[parameters]\nthreshold = { low = 250.0, high = 300.0 }",
        )
        .replace(
            "path = \"out/{{sweep}}/{{point}}/catalog.arrow\"",
            "path = \"out/{{region}}-{{threshold}}/catalog.arrow\"",
        );
    let points = parse(&text).expect("valid").points().expect("points");
    assert_eq!(points[0].id, "threshold-low_region-pacific");
    let SinkSpec::Catalog(catalog) = &points[0].spec.sinks[1] else {
        panic!("catalog second")
    };
    assert_eq!(catalog.path, "out/pacific-250/catalog.arrow");
}

#[test]
fn a_spec_file_is_read_through_the_callback() {
    let spec = TEMPLATE.split("[spec]\n").nth(1).expect("spec part");
    let file = spec
        .replace("[spec.source]", "[source]")
        .replace("[[spec.", "[[");
    let head = TEMPLATE.split("[spec]\n").next().expect("head");
    let text = head.replace(
        "name = \"unit\"",
        "name = \"unit\"\nspec = \"objects.toml\"",
    );
    let template = SweepTemplate::from_toml_str(&text, |path| {
        assert_eq!(path, "objects.toml");
        Ok(file.clone())
    })
    .expect("valid");
    let inline = parse(TEMPLATE).expect("valid").points().expect("points");
    let from_file = template.points().expect("points");
    assert_eq!(inline, from_file);

    let missing = SweepTemplate::from_toml_str(&text, no_file);
    assert!(message(missing).contains("sweep.spec: \"objects.toml\": no file"));
    let both = format!("{text}\n[spec]\nname = \"x\"\n");
    assert!(message(parse(&both)).contains("give the spec once"));
    assert!(message(parse(head)).contains("no spec"));
}

#[test]
fn unknown_and_unused_parameters_and_bad_placeholders_are_refused() {
    let typo = TEMPLATE.replace("\"{{threshold}}\"", "\"{{treshold}}\"");
    let m = message(parse(&typo));
    assert!(
        m.contains("spec.step[2].threshold")
            && m.contains("{{treshold}} names no parameter")
            && m.contains("threshold, region"),
        "{m}"
    );
    // The parameter threshold is now used nowhere.
    let unused = TEMPLATE.replace("\"{{threshold}}\"", "250.0");
    let m = message(parse(&unused));
    assert!(
        m.contains("parameters.threshold") && m.contains("used by no placeholder"),
        "{m}"
    );
    for (bad, expected) in [
        ("\"{{}}\"", "placeholder with no name"),
        ("\"{{ threshold\"", "does not close it"),
        ("\"{{2x}}\"", "is not a placeholder name"),
    ] {
        let text = TEMPLATE.replace("\"{{threshold}}\"", bad);
        let m = message(parse(&text));
        assert!(m.contains(expected), "{bad}: {m}");
        assert!(m.contains("spec.step[2].threshold"), "{bad}: {m}");
    }
}

#[test]
fn an_empty_grid_is_refused() {
    let empty_list = TEMPLATE.replace("threshold = [250.0, 300]", "threshold = []");
    let m = message(parse(&empty_list));
    assert!(
        m.contains("parameters.threshold") && m.contains("no values"),
        "{m}"
    );
    let empty_table = TEMPLATE.replace(
        "[parameters.region]\npacific = { lat = [20.0, 60.0], lon = [150.0, -110.0] }\natlantic = { lat = [20.0, 60.0], lon = [-80.0, -10.0] }",
        "[parameters.region]",
    );
    assert!(message(parse(&empty_table)).contains("parameters.region: has no values"));
    let none = "[sweep]\nname = \"x\"\n[spec]\nname = \"x\"\n";
    assert!(message(parse(none)).contains("parameters: none is given"));
    let scalar = TEMPLATE.replace("threshold = [250.0, 300]", "threshold = 250.0");
    let m = message(parse(&scalar));
    assert!(
        m.contains("a list of values, or a table of label = value"),
        "{m}"
    );
}

#[test]
fn labels_must_name_points_and_parameters_must_not_shadow_columns() {
    let table_in_list =
        TEMPLATE.replace("threshold = [250.0, 300]", "threshold = [250.0, { x = 1 }]");
    let m = message(parse(&table_in_list));
    assert!(
        m.contains("parameters.threshold[1]") && m.contains("label = value"),
        "{m}"
    );
    let odd = TEMPLATE.replace("threshold = [250.0, 300]", "threshold = [\"a b\"]");
    assert!(message(parse(&odd)).contains("\"a b\" cannot name a point"));
    let twice = TEMPLATE.replace("threshold = [250.0, 300]", "threshold = [250, 250]");
    assert!(message(parse(&twice)).contains("the label \"250\" appears twice"));
    let built_in = TEMPLATE
        .replace("threshold = [250.0, 300]", "point = [250.0, 300]")
        .replace("{{threshold}}", "{{point}}");
    assert!(message(parse(&built_in)).contains("{{point}} is built in"));
    let column = TEMPLATE
        .replace("threshold = [250.0, 300]", "status = [250.0, 300]")
        .replace("{{threshold}}", "{{status}}");
    let m = message(parse(&column));
    assert!(
        m.contains("parameters.status") && m.contains("column of the results table"),
        "{m}"
    );
    let metric = TEMPLATE
        .replace("threshold = [250.0, 300]", "ar_id_objects = [250.0, 300]")
        .replace("{{threshold}}", "{{ar_id_objects}}");
    let m = message(parse(&metric).expect("parses").points());
    assert!(
        m.contains("parameters.ar_id_objects") && m.contains("column of the results table"),
        "{m}"
    );
}

#[test]
fn a_value_that_breaks_the_spec_names_the_point_and_the_value() {
    let text = TEMPLATE.replace("threshold = [250.0, 300]", "threshold = [250.0, \"high\"]");
    let template = parse(&text).expect("the template itself is fine");
    let error = template
        .points()
        .expect_err("one value cannot be a threshold");
    let TemplateError::Points { errors, points } = &error else {
        panic!("{error}")
    };
    assert_eq!(*points, 4);
    let failing: Vec<&str> = errors.iter().map(|e| e.point.as_str()).collect();
    assert_eq!(
        failing,
        [
            "threshold-high_region-pacific",
            "threshold-high_region-atlantic"
        ]
    );
    let m = error.to_string();
    assert!(m.starts_with("2 of 4 points cannot run"), "{m}");
    assert!(
        m.contains("point threshold-high_region-pacific (threshold = \"high\", region = pacific)")
            && m.contains("invalid type: string \"high\", expected f32"),
        "{m}"
    );
}

#[test]
fn points_that_write_the_same_path_are_refused() {
    let text = TEMPLATE.replace(
        "out/{{sweep}}/{{point}}/fields.zarr",
        "out/{{region}}/fields.zarr",
    );
    let m = message(parse(&text).expect("parses").points());
    assert!(
        m.contains("point threshold-300_region-pacific")
            && m.contains("sink[0].path \"out/pacific/fields.zarr\" is also written by point threshold-250_region-pacific")
            && m.contains("{{point}}"),
        "{m}"
    );
    // Lexically equal paths count as the same.
    assert_eq!(lexical_normal("out/./a//b/"), "out/a/b");
    assert_eq!(lexical_normal("/x/./y"), "/x/y");
}

#[test]
fn metrics_must_name_the_points_sinks() {
    let wrong = TEMPLATE.replace("labels = \"ivt_high\"", "labels = \"ivt\"");
    let m = message(parse(&wrong).expect("parses").points());
    assert!(
        m.contains("metrics.iou[0].labels \"ivt\" is not written by a zarr sink")
            && m.contains("ivt_high, ar_id"),
        "{m}"
    );
    let objects = TEMPLATE.replace("[metrics]", "[metrics]\nobjects = [\"ivt_high\"]");
    let m = message(parse(&objects).expect("parses").points());
    assert!(
        m.contains("metrics.objects[0] \"ivt_high\" has no catalog sink"),
        "{m}"
    );
    let empty = TEMPLATE.replace("[metrics]", "[metrics]\nobjects = []");
    assert!(message(parse(&empty)).contains("metrics.objects: is empty"));

    let template = parse(TEMPLATE).expect("valid");
    let points = template.points().expect("points");
    assert_eq!(template.metric_objects(&points), ["ar_id"]);
    assert_eq!(
        template.metric_columns(&points),
        [
            "ar_id_object_steps",
            "ar_id_objects",
            "ar_id_area_km2_total",
            "ar_id_area_km2_mean",
            "ar_id_area_km2_max",
            "ar_id_ar_objects",
            "iou_ar_id_vs_ivt_high",
        ]
    );
}

#[test]
fn unknown_fields_and_bad_names_are_refused() {
    let typo = TEMPLATE.replace("[metrics]", "[metric]");
    assert!(message(parse(&typo)).contains("unknown field `metric`"));
    let name = TEMPLATE.replace("name = \"unit\"", "name = \"a b\"");
    assert!(message(parse(&name)).contains("sweep.name: \"a b\" must be"));
}

#[test]
fn a_grid_too_large_is_refused_before_expanding() {
    let values: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let text = format!(
        "[sweep]\nname = \"big\"\n[parameters]\na = [{0}]\nb = [{0}]\n[spec]\nname = \"{{{{a}}}}-{{{{b}}}}\"\n",
        values.join(", ")
    );
    let m = message(parse(&text));
    assert!(
        m.contains("101 a × 101 b") && m.contains("more than 10000"),
        "{m}"
    );
}

#[test]
fn parameter_columns_are_typed() {
    let template = parse(TEMPLATE).expect("valid");
    let threshold = template.parameter("threshold").expect("threshold");
    assert_eq!(
        threshold.column(["300", "250", "gone"]),
        ColumnValues::Float(vec![Some(300.0), Some(250.0), None])
    );
    let region = template.parameter("region").expect("region");
    assert_eq!(
        region.column(["atlantic"]),
        ColumnValues::Text(vec![Some("atlantic".into())])
    );
    let ints = Parameter {
        name: "n".into(),
        values: vec![ParameterValue {
            label: "3".into(),
            value: Value::Integer(3),
        }],
    };
    assert_eq!(ints.column(["3"]), ColumnValues::Integer(vec![Some(3)]));
}

fn catalog(ids: &[u64], areas: &[f64], ar: &[Option<bool>]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("area_km2", DataType::Float64, false),
        Field::new("object_is_ar", DataType::Boolean, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(UInt64Array::from(ids.to_vec())),
            Arc::new(Float64Array::from(areas.to_vec())),
            Arc::new(BooleanArray::from(ar.to_vec())),
        ],
    )
    .expect("batch")
}

#[test]
fn a_catalog_summary_counts_rows_objects_and_areas() {
    let batch = catalog(
        &[1, 1, 4, 9],
        &[100.0, 300.0, 50.0, 50.0],
        &[Some(true), Some(true), Some(false), Some(false)],
    );
    let summary = CatalogSummary::from_batches(&[batch]).expect("summary");
    assert_eq!(
        summary,
        CatalogSummary {
            object_steps: 4,
            objects: 3,
            area_km2_total: 500.0,
            area_km2_mean: Some(125.0),
            area_km2_max: Some(300.0),
            ar_objects: Some(1),
        }
    );
    let no_verdict = catalog(&[2], &[10.0], &[None]);
    assert_eq!(
        CatalogSummary::from_batches(&[no_verdict])
            .expect("summary")
            .ar_objects,
        None
    );
    let empty = CatalogSummary::from_batches(&[]).expect("summary");
    assert_eq!((empty.object_steps, empty.area_km2_mean), (0, None));
}

#[test]
fn iou_pools_cells_over_fields() {
    let nan = f32::NAN;
    let mut counts = IouCounts::default();
    // Object ids (NaN outside) against a 0/1 mask (NaN where missing).
    counts
        .add(&[7.0, 7.0, nan, 3.0], &[1.0, 0.0, 1.0, nan], None, None)
        .expect("same length");
    assert_eq!(
        counts,
        IouCounts {
            intersection: 1,
            union: 4
        }
    );
    counts
        .add(&[0.9, 0.2], &[1.0, 1.0], Some(0.5), None)
        .expect("same length");
    assert_eq!(counts.iou(), Some(2.0 / 6.0));
    assert!(counts.add(&[1.0], &[1.0, 1.0], None, None).is_err());
    assert_eq!(IouCounts::default().iou(), None);
}

#[test]
fn results_become_arrow_and_csv() {
    let mut table = ResultsTable::default();
    table.push(
        "point",
        ColumnValues::Text(vec![Some("a".into()), Some("b,\"c\"".into())]),
    );
    table.push(
        "threshold",
        ColumnValues::Float(vec![Some(250.0), Some(0.5)]),
    );
    table.push("objects", ColumnValues::Count(vec![Some(3), None]));
    table.push("reproduced", ColumnValues::Flag(vec![None, Some(true)]));
    let t = "2017-01-01T06:00:00.250Z".parse().expect("time");
    table.push("finished_at", ColumnValues::Time(vec![Some(t), None]));
    assert_eq!(
        table.to_csv(),
        "point,threshold,objects,reproduced,finished_at\n\
         a,250,3,,2017-01-01T06:00:00.250Z\n\
         \"b,\"\"c\"\"\",0.5,,true,\n"
    );
    let batch = table.to_record_batch().expect("batch");
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(batch.num_columns(), 5);
    assert_eq!(
        batch.schema().field(4).data_type(),
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(batch.column(2).null_count(), 1);

    table.push("point", ColumnValues::Text(vec![None, None]));
    assert!(table.to_record_batch().is_err(), "duplicate names");
    let mut ragged = ResultsTable::default();
    ragged.push("a", ColumnValues::Count(vec![Some(1)]));
    ragged.push("b", ColumnValues::Count(vec![]));
    assert!(ragged.to_record_batch().is_err(), "ragged columns");
}
