//! Shared by the engine's tests: run a pipeline and collect its fields; run a snippet of Python
//! (numpy, xarray, scipy from the test command's `.venv`) on arrays handed over from Rust, and read
//! its arrays back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use isotach_connectors::Source;
use isotach_core::{Field, PipelineSpec};
use isotach_engine::{RunConfig, RunReport, run_pipeline};

/// Runs `spec` (which must validate against `source`) with `config`, and returns the report and
/// every field delivered, sorted by (variable, step).
pub fn run_collecting(
    source: Arc<dyn Source>,
    spec: &PipelineSpec,
    config: RunConfig,
) -> (isotach_engine::Result<RunReport>, Vec<Field>) {
    let pipeline = spec.validate(source.describe()).expect("valid spec");
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let collector = std::thread::spawn(move || {
        let mut fields = Vec::new();
        while let Some(f) = rx.blocking_recv() {
            fields.push(f);
        }
        fields
    });
    let report = run_pipeline(&pipeline, source, config, tx);
    let mut fields = collector.join().expect("collector");
    fields.sort_by(|a, b| (&a.variable, a.step).cmp(&(&b.variable, b.step)));
    (report, fields)
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The interpreter of the test command's Python environment (`ISOTACH_PYTHON` overrides it).
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("ISOTACH_PYTHON") {
        return path.into();
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run ./scripts/test.sh once (it builds the Python environment of the \
         interop tests), or set ISOTACH_PYTHON",
        venv.display()
    );
    venv
}

/// An array handed to or returned from Python: values (float32, row-major) and shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Row-major values.
    pub values: Vec<f32>,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
}

impl Array {
    /// An array of `shape` holding `values`.
    pub fn new(values: Vec<f32>, shape: &[usize]) -> Self {
        assert_eq!(
            values.len(),
            shape.iter().product::<usize>(),
            "values do not fill shape {shape:?}"
        );
        Self {
            values,
            shape: shape.to_vec(),
        }
    }
}

const PRELUDE: &str = r#"
import json, sys, pathlib
import numpy as np
_dir = pathlib.Path(sys.argv[1])
_manifest = json.loads((_dir / "inputs.json").read_text())
inputs = {name: np.fromfile(_dir / f"in_{name}.f32", dtype="<f4").reshape(shape)
          for name, shape in _manifest.items()}
outputs = {}
"#;

const EPILOGUE: &str = r#"
_out = {}
for _name, _value in outputs.items():
    _a = np.ascontiguousarray(np.asarray(_value, dtype="<f4"))
    _a.tofile(_dir / f"out_{_name}.f32")
    _out[_name] = list(_a.shape)
(_dir / "outputs.json").write_text(json.dumps(_out))
"#;

/// Runs `script` with `inputs` (a dict of numpy float32 arrays) in scope; the script fills the
/// dict `outputs` with arrays, which come back as float32. Panics with Python's stderr on failure.
///
/// ```ignore
/// let out = python_arrays("outputs['y'] = inputs['x'] * 2", &[("x", Array::new(vec![1.0], &[1]))]);
/// ```
pub fn python_arrays(script: &str, inputs: &[(&str, Array)]) -> BTreeMap<String, Array> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut manifest = serde_json::Map::new();
    for (name, array) in inputs {
        let bytes: Vec<u8> = array.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join(format!("in_{name}.f32")), bytes).expect("write input");
        manifest.insert((*name).to_owned(), serde_json::json!(array.shape));
    }
    std::fs::write(
        dir.path().join("inputs.json"),
        serde_json::Value::Object(manifest).to_string(),
    )
    .expect("write manifest");
    let program = format!("{PRELUDE}\n{script}\n{EPILOGUE}");
    let output = Command::new(python())
        .arg("-c")
        .arg(&program)
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python().display()));
    assert!(
        output.status.success(),
        "python failed ({}):\n{}\n--- script ---\n{script}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let shapes: BTreeMap<String, Vec<usize>> = serde_json::from_slice(
        &std::fs::read(dir.path().join("outputs.json")).expect("outputs.json"),
    )
    .expect("outputs manifest");
    shapes
        .into_iter()
        .map(|(name, shape)| {
            let bytes = std::fs::read(dir.path().join(format!("out_{name}.f32"))).expect("output");
            let values = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, Array { values, shape })
        })
        .collect()
}

/// Asserts `a` and `b` agree: NaN exactly where the other is NaN, elsewhere within
/// `abs + rel × |b|`. Names the first cell that differs.
pub fn assert_close(what: &str, a: &[f32], b: &[f32], abs: f32, rel: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x.is_nan() || y.is_nan() {
            assert!(
                x.is_nan() && y.is_nan(),
                "{what}[{i}]: {x} vs {y} (NaN on one side only)"
            );
            continue;
        }
        assert!(
            (x - y).abs() <= abs + rel * y.abs(),
            "{what}[{i}]: {x} vs {y} (tolerance {abs} + {rel}×|y|)"
        );
    }
}
