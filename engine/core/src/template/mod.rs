//! Templated experiments: one pipeline spec with placeholders, a grid of parameter values, and
//! the metrics that compare the points of the grid.
//!
//! A template is a TOML file:
//!
//! ```toml
//! [sweep]
//! name = "ar-thresholds"          # letters, digits, - and _; {{sweep}} in the spec
//! spec = "ar-objects.toml"        # a spec with placeholders, relative to the template;
//!                                 # or the spec inline under [spec] (not both)
//!
//! [parameters]                    # the grid: every combination of values is one point
//! threshold = [250.0, 300.0]      # a list: each value is its own label
//!
//! [parameters.region]             # a table: label = value (for tables and arrays)
//! pacific = { lat = [20.0, 60.0], lon = [150.0, -110.0] }
//! atlantic = { lat = [20.0, 60.0], lon = [-80.0, -10.0] }
//!
//! [metrics]
//! objects = ["ar_id"]             # catalogs to summarise (default: every catalog sink)
//! iou = [{ prediction = "ar_id", labels = "ivt_high" }]
//! ```
//!
//! In the spec, a string that is exactly one placeholder, `"{{threshold}}"`, becomes the value
//! itself (a number, a table, an array, a string). Inside longer text, `"out/{{region}}/x.zarr"`, a
//! placeholder becomes the value's text when the value is a string, number or boolean, and its
//! label when it is a table or an array. `{{point}}` is the point's id
//! (`threshold-250_region-pacific`: each parameter's name and label, in declaration order) and
//! `{{sweep}}` the sweep's name.
//!
//! [`SweepTemplate::from_toml_str`] checks the template itself: its fields, that there is at least
//! one parameter and none is empty, that every placeholder names a parameter and every parameter
//! is used. [`SweepTemplate::points`] expands the grid (the first parameter varies slowest) and
//! checks each point: its spec must parse, the metrics must name its sinks, and no two points may
//! write the same output path. Checking a point against its data is the caller's part
//! ([`PipelineSpec::validate`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::{PipelineSpec, SinkSpec};

mod metrics;
mod results;

pub use metrics::{CatalogSummary, IouCounts, is_positive};
pub use results::{Column, ColumnValues, ResultsTable};

/// The most points a template may expand to: a typo in a grid should not submit a million jobs.
pub const MAX_POINTS: usize = 10_000;

/// Placeholders every template has besides its parameters.
pub const BUILT_IN_PLACEHOLDERS: [&str; 2] = ["point", "sweep"];

/// Columns of a sweep's results table that are not parameters or metrics; parameters may not take
/// these names.
pub const RESULT_COLUMNS: [&str; 18] = [
    "point",
    "sweep",
    "spec_hash",
    "spec_file",
    "job_id",
    "rerun_of",
    "status",
    "error",
    "submitted_at",
    "started_at",
    "finished_at",
    "queue_s",
    "run_s",
    "total_s",
    "time_steps",
    "outputs_sha256",
    "reproduced",
    "metrics_note",
];

/// Suffixes of the object metric columns, one set per summarised catalog: `{objects}_{suffix}`.
pub const OBJECT_METRICS: [&str; 6] = [
    "object_steps",
    "objects",
    "area_km2_total",
    "area_km2_mean",
    "area_km2_max",
    "ar_objects",
];

/// Why a template or one of its points cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// The template's TOML is malformed or has unknown fields.
    #[error("template could not be parsed: {0}")]
    Parse(String),
    /// The template is inconsistent, named by the field that holds the problem.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field, for example `parameters.threshold` or
        /// `spec.step[2].threshold`.
        field: String,
        /// What is wrong, with the value.
        message: String,
    },
    /// Some points of the grid cannot run.
    #[error("{}", point_errors(.errors, *.points))]
    Points {
        /// One entry per invalid point (a point may appear more than once).
        errors: Vec<PointError>,
        /// How many points the grid has.
        points: usize,
    },
}

impl TemplateError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One point that cannot run: its id, its parameter values, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct PointError {
    /// The point's id.
    pub point: String,
    /// Its parameter values, `threshold = 250, region = pacific`.
    pub assignment: String,
    /// What is wrong, naming the field and the value.
    pub message: String,
}

impl fmt::Display for PointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "point {} ({}): {}",
            self.point, self.assignment, self.message
        )
    }
}

fn point_errors(errors: &[PointError], points: usize) -> PointErrors<'_> {
    PointErrors { errors, points }
}

struct PointErrors<'a> {
    errors: &'a [PointError],
    points: usize,
}

impl fmt::Display for PointErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        let invalid: BTreeSet<&str> = self.errors.iter().map(|e| e.point.as_str()).collect();
        write!(f, "{} of {} points cannot run:", invalid.len(), self.points)?;
        for error in self.errors.iter().take(SHOWN) {
            write!(f, "\n  {error}")?;
        }
        if self.errors.len() > SHOWN {
            write!(f, "\n  … and {} more", self.errors.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// What to measure on each point's outputs.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    /// The `objects` outputs whose catalog sinks are summarised (object counts and areas); default:
    /// every catalog sink of the spec.
    #[serde(default)]
    pub objects: Option<Vec<String>>,
    /// Intersection over union between a prediction and labels written to Zarr sinks.
    #[serde(default)]
    pub iou: Vec<IouSpec>,
}

/// Intersection over union of the cells where a prediction and labels are positive, pooled over
/// every time step. A cell is positive where its value is finite and non-zero (object ids, 0/1
/// masks), or finite and at least the given minimum (probabilities).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IouSpec {
    /// The predicted variable (for example an `objects` or `infer` output), in a Zarr sink.
    pub prediction: String,
    /// The reference variable, in a Zarr sink, on the prediction's grid.
    pub labels: String,
    /// A prediction cell is positive at or above this value (default: finite and non-zero).
    #[serde(default)]
    pub prediction_min: Option<f32>,
    /// A label cell is positive at or above this value (default: finite and non-zero).
    #[serde(default)]
    pub labels_min: Option<f32>,
}

impl IouSpec {
    /// The results column, `iou_{prediction}_vs_{labels}`.
    pub fn column(&self) -> String {
        format!("iou_{}_vs_{}", self.prediction, self.labels)
    }
}

/// One parameter of the grid: its name and its values, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The name, as used in `{{name}}`.
    pub name: String,
    /// The values, each with its label.
    pub values: Vec<ParameterValue>,
}

/// One value of a parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterValue {
    /// Short name of the value, used in point ids: the value's own text for scalars in a list,
    /// the key for values given as a table.
    pub label: String,
    /// The value.
    pub value: Value,
}

impl Parameter {
    /// The value labelled `label`.
    pub fn value(&self, label: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|v| v.label == label)
            .map(|v| &v.value)
    }

    /// A results column for this parameter, one row per label in `rows`: numbers when every value
    /// is a number (integers when all are), booleans when all are, otherwise text (the value of
    /// strings, the label of tables and arrays). A label the parameter does not have (a row of an
    /// earlier template) is written as text, or left empty in a typed column.
    pub fn column<'a>(&self, rows: impl IntoIterator<Item = &'a str>) -> ColumnValues {
        let all = |test: fn(&Value) -> bool| self.values.iter().all(|v| test(&v.value));
        let rows: Vec<Option<&Value>> = rows.into_iter().map(|l| self.value(l)).collect();
        if all(|v| matches!(v, Value::Integer(_))) {
            ColumnValues::Integer(rows.iter().map(|v| v.and_then(Value::as_integer)).collect())
        } else if all(|v| matches!(v, Value::Integer(_) | Value::Float(_))) {
            ColumnValues::Float(
                rows.iter()
                    .map(|v| match v {
                        Some(Value::Integer(i)) => Some(*i as f64),
                        Some(Value::Float(f)) => Some(*f),
                        _ => None,
                    })
                    .collect(),
            )
        } else if all(|v| matches!(v, Value::Boolean(_))) {
            ColumnValues::Flag(rows.iter().map(|v| v.and_then(Value::as_bool)).collect())
        } else {
            let labels: Vec<&ParameterValue> = self.values.iter().collect();
            ColumnValues::Text(
                rows.iter()
                    .map(|v| {
                        v.map(|value| {
                            scalar_text(value).unwrap_or_else(|| {
                                labels
                                    .iter()
                                    .find(|p| &p.value == value)
                                    .map(|p| p.label.clone())
                                    .unwrap_or_default()
                            })
                        })
                    })
                    .collect(),
            )
        }
    }
}

/// A parameter's value in one point.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The parameter's name.
    pub parameter: String,
    /// The value's label.
    pub label: String,
    /// The value.
    pub value: Value,
}

/// One point of the grid: its parameter values and its resolved spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Position in the grid, from 0 (the first parameter varies slowest).
    pub index: usize,
    /// `name-label` of each parameter, joined by `_`: `threshold-250_region-pacific`.
    pub id: String,
    /// The value of each parameter, in declaration order.
    pub assignment: Vec<Assignment>,
    /// The spec with every placeholder replaced.
    pub spec: PipelineSpec,
    /// The spec in canonical form: [`PipelineSpec::to_toml_string`], every default written out, so
    /// that formatting, comments and field order in the template do not change it. This is the
    /// text a sweep records and hashes.
    pub canonical_spec: String,
}

impl Point {
    /// The parameter values as `threshold = 250, region = pacific`.
    pub fn describe(&self) -> String {
        describe(&self.assignment)
    }
}

fn describe(assignment: &[Assignment]) -> String {
    assignment
        .iter()
        .map(|a| match &a.value {
            Value::String(s) => format!("{} = {s:?}", a.parameter),
            value => match scalar_text(value) {
                Some(text) => format!("{} = {text}", a.parameter),
                None => format!("{} = {}", a.parameter, a.label),
            },
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A parsed and checked template.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepTemplate {
    /// The sweep's name (`{{sweep}}`).
    pub name: String,
    /// What the sweep is for, when the template says.
    pub description: Option<String>,
    /// The grid's parameters, in declaration order.
    pub parameters: Vec<Parameter>,
    /// What to measure on each point's outputs.
    pub metrics: MetricsSpec,
    spec: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    sweep: SweepSection,
    #[serde(default)]
    parameters: BTreeMap<String, Spanned<Values>>,
    #[serde(default)]
    metrics: MetricsSpec,
    #[serde(default)]
    spec: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepSection {
    name: String,
    #[serde(default)]
    spec: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// A parameter's values as written: a list, or a table of label = value.
enum Values {
    List(Vec<Value>),
    Labelled(Vec<(String, Spanned<Value>)>),
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of values, or a table of label = value")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Values, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = seq.next_element::<Value>()? {
                    values.push(value);
                }
                Ok(Values::List(values))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Values, A::Error> {
                let mut values = Vec::new();
                while let Some(entry) = map.next_entry::<String, Spanned<Value>>()? {
                    values.push(entry);
                }
                Ok(Values::Labelled(values))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl SweepTemplate {
    /// Parses and checks a template. `read_spec` reads the spec file that `sweep.spec` names (the
    /// caller decides what a relative path is relative to), and is called only when it does.
    pub fn from_toml_str(
        text: &str,
        read_spec: impl FnOnce(&str) -> Result<String, String>,
    ) -> Result<Self, TemplateError> {
        let document: Document = toml::from_str(text)
            .map_err(|e| TemplateError::Parse(e.to_string().trim_end().to_owned()))?;
        let name = document.sweep.name;
        if !is_spec_name(&name) {
            return Err(TemplateError::invalid(
                "sweep.name",
                format!("{name:?} must be 1 to 128 letters, digits, '-' or '_'"),
            ));
        }
        let spec = match (document.sweep.spec, document.spec) {
            (Some(path), None) => {
                let text = read_spec(&path).map_err(|message| {
                    TemplateError::invalid("sweep.spec", format!("{path:?}: {message}"))
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| {
                    TemplateError::invalid(
                        "sweep.spec",
                        format!("{path:?} is not TOML: {}", e.to_string().trim_end()),
                    )
                })?
            }
            (None, Some(table)) => table,
            (Some(path), Some(_)) => {
                return Err(TemplateError::invalid(
                    "sweep.spec",
                    format!(
                        "names the spec file {path:?} and the template also holds a [spec] table; \
                         give the spec once"
                    ),
                ));
            }
            (None, None) => {
                return Err(TemplateError::invalid(
                    "spec",
                    "no spec: name a spec file with sweep.spec = \"…\", or write the spec inline \
                     under [spec]",
                ));
            }
        };
        let parameters = parameters(document.parameters)?;
        grid_size(&parameters)?;
        let template = Self {
            name,
            description: document.sweep.description,
            parameters,
            metrics: document.metrics,
            spec,
        };
        template.check_placeholders()?;
        template.check_metrics_fields()?;
        Ok(template)
    }

    /// How many points the grid has: the product of the parameters' value counts.
    pub fn grid_size(&self) -> usize {
        self.parameters.iter().map(|p| p.values.len()).product()
    }

    /// The parameter named `name`.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// Every placeholder in the spec names a parameter or a built-in, and every parameter is used.
    fn check_placeholders(&self) -> Result<(), TemplateError> {
        let mut uses = Vec::new();
        for (key, value) in &self.spec {
            scan(value, &format!("spec.{key}"), &mut uses)?;
        }
        let known: Vec<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
        for (field, name) in &uses {
            if !known.contains(&name.as_str()) && !BUILT_IN_PLACEHOLDERS.contains(&name.as_str()) {
                return Err(TemplateError::invalid(
                    field,
                    format!(
                        "placeholder {{{{{name}}}}} names no parameter (parameters: {}; built in: \
                         {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        },
                        BUILT_IN_PLACEHOLDERS.join(", ")
                    ),
                ));
            }
        }
        for parameter in &self.parameters {
            if !uses.iter().any(|(_, name)| *name == parameter.name) {
                return Err(TemplateError::invalid(
                    format!("parameters.{}", parameter.name),
                    format!(
                        "is used by no placeholder in the spec, so its {} values would run the \
                         same spec; write {{{{{}}}}} where it belongs, or remove it",
                        parameter.values.len(),
                        parameter.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_metrics_fields(&self) -> Result<(), TemplateError> {
        if let Some(objects) = &self.metrics.objects {
            if objects.is_empty() {
                return Err(TemplateError::invalid(
                    "metrics.objects",
                    "is empty; leave it out to summarise every catalog sink",
                ));
            }
            check_unique("metrics.objects", objects.iter())?;
        }
        check_unique(
            "metrics.iou",
            self.metrics
                .iou
                .iter()
                .map(IouSpec::column)
                .collect::<Vec<_>>()
                .iter(),
        )?;
        for (i, iou) in self.metrics.iou.iter().enumerate() {
            for (field, min) in [
                ("prediction_min", iou.prediction_min),
                ("labels_min", iou.labels_min),
            ] {
                if min.is_some_and(|m| !m.is_finite()) {
                    return Err(TemplateError::invalid(
                        format!("metrics.iou[{i}].{field}"),
                        format!("{min:?} is not a finite number"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every point of the grid, each checked: its resolved spec parses, the metrics name its
    /// sinks, and no two points write the same output path. All invalid points are reported
    /// together.
    pub fn points(&self) -> Result<Vec<Point>, TemplateError> {
        let total = self.grid_size();
        let mut points = Vec::with_capacity(total);
        let mut errors = Vec::new();
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        for index in 0..total {
            let assignment = self.assignment(index);
            let id = assignment
                .iter()
                .map(|a| format!("{}-{}", a.parameter, a.label))
                .collect::<Vec<_>>()
                .join("_");
            if let Some(earlier) = ids.insert(id.clone(), index) {
                return Err(TemplateError::invalid(
                    "parameters",
                    format!(
                        "points {earlier} and {index} both get the id {id:?}; choose labels that \
                         keep them apart"
                    ),
                ));
            }
            let point_error = |message: String| PointError {
                point: id.clone(),
                assignment: describe(&assignment),
                message,
            };
            let env = Env {
                assignment: &assignment,
                point: &id,
                sweep: &self.name,
            };
            let resolved = Value::Table(
                self.spec
                    .iter()
                    .map(|(k, v)| (k.clone(), resolve(v, &env)))
                    .collect(),
            );
            let spec: PipelineSpec = match resolved.try_into() {
                Ok(spec) => spec,
                Err(e) => {
                    errors.push(point_error(format!(
                        "the resolved spec is invalid: {}",
                        serde_message(&e.to_string())
                    )));
                    continue;
                }
            };
            if let Err(message) = self.check_metrics(&spec) {
                errors.push(point_error(message));
                continue;
            }
            let canonical_spec = match spec.to_toml_string() {
                Ok(text) => text,
                Err(e) => {
                    errors.push(point_error(format!(
                        "the resolved spec cannot be written as TOML: {e}"
                    )));
                    continue;
                }
            };
            points.push(Point {
                index,
                id,
                assignment,
                spec,
                canonical_spec,
            });
        }
        errors.extend(shared_outputs(&points));
        if !errors.is_empty() {
            return Err(TemplateError::Points {
                errors,
                points: total,
            });
        }
        let columns = self.metric_columns(&points);
        if let Some(parameter) = self.parameters.iter().find(|p| columns.contains(&p.name)) {
            return Err(TemplateError::invalid(
                format!("parameters.{}", parameter.name),
                format!(
                    "{:?} is also a column of the results table; choose another name",
                    parameter.name
                ),
            ));
        }
        Ok(points)
    }

    /// The parameter values of point `index` (mixed radix, the last parameter fastest).
    fn assignment(&self, index: usize) -> Vec<Assignment> {
        let mut rest = index;
        let mut choices = vec![0; self.parameters.len()];
        for (k, parameter) in self.parameters.iter().enumerate().rev() {
            choices[k] = rest % parameter.values.len();
            rest /= parameter.values.len();
        }
        self.parameters
            .iter()
            .zip(choices)
            .map(|(parameter, choice)| Assignment {
                parameter: parameter.name.clone(),
                label: parameter.values[choice].label.clone(),
                value: parameter.values[choice].value.clone(),
            })
            .collect()
    }

    fn check_metrics(&self, spec: &PipelineSpec) -> Result<(), String> {
        let catalogs: Vec<&str> = catalog_sinks(spec).map(|(objects, _)| objects).collect();
        if let Some(objects) = &self.metrics.objects {
            for (i, name) in objects.iter().enumerate() {
                if !catalogs.contains(&name.as_str()) {
                    return Err(format!(
                        "metrics.objects[{i}] {name:?} has no catalog sink in the spec (catalogs \
                         of: {})",
                        list_or_none(&catalogs)
                    ));
                }
            }
        }
        let stored: Vec<&str> = zarr_variables(spec).collect();
        for (i, iou) in self.metrics.iou.iter().enumerate() {
            for (field, name) in [("prediction", &iou.prediction), ("labels", &iou.labels)] {
                if !stored.contains(&name.as_str()) {
                    return Err(format!(
                        "metrics.iou[{i}].{field} {name:?} is not written by a zarr sink of the \
                         spec (zarr sinks hold: {})",
                        list_or_none(&stored)
                    ));
                }
            }
        }
        Ok(())
    }

    /// The `objects` outputs whose catalogs are summarised: those `metrics.objects` names, or
    /// every catalog sink of the points, in order of first appearance.
    pub fn metric_objects(&self, points: &[Point]) -> Vec<String> {
        if let Some(objects) = &self.metrics.objects {
            return objects.clone();
        }
        let mut names: Vec<String> = Vec::new();
        for point in points {
            for (objects, _) in catalog_sinks(&point.spec) {
                if !names.iter().any(|n| n == objects) {
                    names.push(objects.to_owned());
                }
            }
        }
        names
    }

    /// The metric columns of the results table: [`OBJECT_METRICS`] for each summarised catalog,
    /// then one per IoU.
    pub fn metric_columns(&self, points: &[Point]) -> Vec<String> {
        let mut columns: Vec<String> = self
            .metric_objects(points)
            .iter()
            .flat_map(|objects| OBJECT_METRICS.iter().map(move |m| format!("{objects}_{m}")))
            .collect();
        columns.extend(self.metrics.iou.iter().map(IouSpec::column));
        columns
    }
}

/// The catalog sinks of `spec`: (objects output, path).
pub fn catalog_sinks(spec: &PipelineSpec) -> impl Iterator<Item = (&str, &str)> {
    spec.sinks.iter().filter_map(|sink| match sink {
        SinkSpec::Catalog(c) => Some((c.objects.as_str(), c.path.as_str())),
        _ => None,
    })
}

/// Every variable that a Zarr sink of `spec` writes.
fn zarr_variables(spec: &PipelineSpec) -> impl Iterator<Item = &str> {
    spec.sinks
        .iter()
        .filter_map(|sink| match sink {
            SinkSpec::Zarr(z) => Some(z.variables.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
}

/// Every output path of `spec`: `(field, path)` for each sink that writes files. (The source and
/// climatology stores are inputs, so points may share them.)
pub fn output_paths(spec: &PipelineSpec) -> Vec<(String, String)> {
    spec.sinks
        .iter()
        .enumerate()
        .filter_map(|(i, sink)| {
            // Read through the sink's serialized form: every kind names its files `path` (a frames
            // sink that only publishes to a channel has none).
            let value = Value::try_from(sink).ok()?;
            let path = value.get("path")?.as_str()?.to_owned();
            Some((format!("sink[{i}].path"), path))
        })
        .collect()
}

/// An error for every point that writes a path another point writes too.
fn shared_outputs(points: &[Point]) -> Vec<PointError> {
    let mut writers: BTreeMap<String, (&str, String)> = BTreeMap::new();
    let mut errors = Vec::new();
    for point in points {
        for (field, path) in output_paths(&point.spec) {
            let key = lexical_normal(&path);
            if let Some((other, other_field)) = writers.get(&key) {
                errors.push(PointError {
                    point: point.id.clone(),
                    assignment: point.describe(),
                    message: format!(
                        "{field} {path:?} is also written by point {other} ({other_field}); put \
                         {{{{point}}}} in every output path so that points do not overwrite \
                         each other"
                    ),
                });
            } else {
                writers.insert(key, (&point.id, field));
            }
        }
    }
    errors
}

/// `path` without `.` components, repeated separators or a trailing separator.
fn lexical_normal(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn check_unique<'a>(
    field: &str,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), TemplateError> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(TemplateError::invalid(
                field,
                format!("{name:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// Serde's message with its trailing `in \`field\`` folded into the line.
fn serde_message(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [first, rest @ ..] if !rest.is_empty() => format!("{first} ({})", rest.join("; ")),
        _ => lines.join(" "),
    }
}

/// Parameters in declaration order, each with at least one value and valid, distinct labels.
fn parameters(
    declared: BTreeMap<String, Spanned<Values>>,
) -> Result<Vec<Parameter>, TemplateError> {
    if declared.is_empty() {
        return Err(TemplateError::invalid(
            "parameters",
            "none is given; a sweep needs at least one parameter with at least one value, for \
             example threshold = [250.0, 300.0]",
        ));
    }
    let mut declared: Vec<(String, Spanned<Values>)> = declared.into_iter().collect();
    declared.sort_by_key(|(_, values)| values.span().start);
    let mut parameters = Vec::new();
    for (name, values) in declared {
        let field = format!("parameters.{name}");
        if !is_placeholder_name(&name) {
            return Err(TemplateError::invalid(
                field,
                format!(
                    "{name:?} is not a parameter name: 1 to 64 letters, digits and _, not \
                     starting with a digit"
                ),
            ));
        }
        if BUILT_IN_PLACEHOLDERS.contains(&name.as_str()) {
            return Err(TemplateError::invalid(
                field,
                format!("{{{{{name}}}}} is built in; choose another name"),
            ));
        }
        if RESULT_COLUMNS.contains(&name.as_str()) {
            return Err(TemplateError::invalid(
                field,
                format!("{name:?} is also a column of the results table; choose another name"),
            ));
        }
        let values = match values.into_inner() {
            Values::List(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, value)| {
                    let label = scalar_text(&value).ok_or_else(|| {
                        TemplateError::invalid(
                            format!("{field}[{i}]"),
                            format!(
                                "is a {}; give values that are tables or arrays labels, as a \
                                 table: [parameters.{name}] label = value",
                                value.type_str()
                            ),
                        )
                    })?;
                    if !is_label(&label) {
                        return Err(TemplateError::invalid(
                            format!("{field}[{i}]"),
                            format!(
                                "{label:?} cannot name a point (letters, digits, '.', '-' and \
                                 '_', at most 64); give it a label, as a table: \
                                 [parameters.{name}] label = value"
                            ),
                        ));
                    }
                    Ok(ParameterValue { label, value })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Values::Labelled(mut entries) => {
                entries.sort_by_key(|(_, value)| value.span().start);
                entries
                    .into_iter()
                    .map(|(label, value)| {
                        if !is_label(&label) {
                            return Err(TemplateError::invalid(
                                format!("{field}.{label}"),
                                format!(
                                    "{label:?} cannot name a point: use letters, digits, '.', \
                                     '-' and '_', at most 64"
                                ),
                            ));
                        }
                        Ok(ParameterValue {
                            label,
                            value: value.into_inner(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        if values.is_empty() {
            return Err(TemplateError::invalid(
                field,
                "has no values, so the grid would be empty; give at least one",
            ));
        }
        let mut labels = BTreeSet::new();
        for value in &values {
            if !labels.insert(value.label.as_str()) {
                return Err(TemplateError::invalid(
                    field,
                    format!("the label {:?} appears twice", value.label),
                ));
            }
        }
        parameters.push(Parameter { name, values });
    }
    Ok(parameters)
}

fn grid_size(parameters: &[Parameter]) -> Result<usize, TemplateError> {
    let size = parameters
        .iter()
        .try_fold(1usize, |n, p| n.checked_mul(p.values.len()))
        .filter(|n| *n <= MAX_POINTS);
    size.ok_or_else(|| {
        let counts: Vec<String> = parameters
            .iter()
            .map(|p| format!("{} {}", p.values.len(), p.name))
            .collect();
        TemplateError::invalid(
            "parameters",
            format!(
                "the grid ({}) has more than {MAX_POINTS} points",
                counts.join(" × ")
            ),
        )
    })
}

/// The text of a scalar value (a string as it is, numbers as Rust writes them: `250`, `0.5`);
/// `None` for tables and arrays.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Datetime(d) => Some(d.to_string()),
        Value::Array(_) | Value::Table(_) => None,
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_spec_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A piece of a string: text, or a placeholder's name.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits `s` at its `{{name}}` placeholders.
fn pieces(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{s:?} opens a placeholder with {{{{ and does not close it"))?;
        let name = after[..end].trim();
        if name.is_empty() {
            return Err(format!("{s:?} holds a placeholder with no name"));
        }
        if !is_placeholder_name(name) {
            return Err(format!(
                "{s:?}: {{{{{name}}}}} is not a placeholder name (letters, digits and _, not \
                 starting with a digit)"
            ));
        }
        out.push(Piece::Placeholder(name));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Collects `(field, name)` for every placeholder under `value`.
fn scan(value: &Value, field: &str, uses: &mut Vec<(String, String)>) -> Result<(), TemplateError> {
    match value {
        Value::String(s) => {
            for piece in pieces(s).map_err(|m| TemplateError::invalid(field, m))? {
                if let Piece::Placeholder(name) = piece {
                    uses.push((field.to_owned(), name.to_owned()));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                scan(item, &format!("{field}[{i}]"), uses)?;
            }
        }
        Value::Table(table) => {
            for (key, item) in table {
                if key.contains("{{") {
                    return Err(TemplateError::invalid(
                        format!("{field}.{key}"),
                        "placeholders go in values, not in keys",
                    ));
                }
                scan(item, &format!("{field}.{key}"), uses)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// What placeholders stand for in one point.
struct Env<'a> {
    assignment: &'a [Assignment],
    point: &'a str,
    sweep: &'a str,
}

impl Env<'_> {
    fn value(&self, name: &str) -> Value {
        match name {
            "point" => Value::String(self.point.to_owned()),
            "sweep" => Value::String(self.sweep.to_owned()),
            _ => self
                .assignment
                .iter()
                .find(|a| a.parameter == name)
                .map_or_else(|| Value::String(String::new()), |a| a.value.clone()),
        }
    }

    fn text(&self, name: &str) -> String {
        match name {
            "point" => self.point.to_owned(),
            "sweep" => self.sweep.to_owned(),
            _ => self
                .assignment
                .iter()
                .find(|a| a.parameter == name)
                .map(|a| scalar_text(&a.value).unwrap_or_else(|| a.label.clone()))
                .unwrap_or_default(),
        }
    }
}

fn resolve(value: &Value, env: &Env<'_>) -> Value {
    match value {
        Value::String(s) => match pieces(s) {
            Ok(pieces) => match pieces.as_slice() {
                [Piece::Placeholder(name)] => env.value(name),
                _ => Value::String(
                    pieces
                        .iter()
                        .map(|piece| match piece {
                            Piece::Text(text) => (*text).to_owned(),
                            Piece::Placeholder(name) => env.text(name),
                        })
                        .collect(),
                ),
            },
            // Checked by `scan` before any point is resolved.
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, env)).collect()),
        Value::Table(table) => Value::Table(
            table
                .iter()
                .map(|(k, v)| (k.clone(), resolve(v, env)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;
