//! Templated experiments as real processes: `isotach serve` on a free port and `isotach sweep`
//! against it. A 2 × 2 grid (objects threshold × region) runs one job per point through a server
//! that holds one job at a time (so the sweep must wait on RESOURCE_EXHAUSTED), and its results
//! table agrees with what the jobs wrote: the recorded specs and their hashes, object counts and
//! areas recomputed from each point's label field, IoU recomputed from its fields. An invalid point
//! stops the sweep before any job exists, and rerunning a point rewrites its outputs byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use isotach_connectors::{Source, StoreOptions, TileRequest};
use isotach_core::{PipelineSpec, SinkSpec, StepSpec};
use isotach_tests::{generate, isotach_bin};

const TOKEN: &str = "sweep-e2e-token-0123456789";

/// The shared store: 4°, 4 steps, generated once per run into cargo's scratch folder for tests.
fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sweep_end_to_end");
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("remove the previous run's store");
        }
        std::fs::create_dir_all(&root).expect("store folder");
        let root = root.canonicalize().expect("canonical");
        generate(&root, "small.zarr", 4, 4);
        root.join("small.zarr")
    })
}

/// Objects of IVT above the swept threshold in the swept region; `ivt_300` (IVT ≥ 300) is the
/// reference the objects are compared with.
fn template(thresholds: &str, regions: &str) -> String {
    format!(
        r#"
[sweep]
name = "e2e"

[parameters]
threshold = {thresholds}

[parameters.region]
{regions}

[metrics]
iou = [{{ prediction = "ar_id", labels = "ivt_300" }}]

[spec]
name = "sweep-{{{{sweep}}}}"
[spec.source]
uri = "{store}"
variables = ["ivt_u", "ivt_v"]
region = "{{{{region}}}}"

[[spec.step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"

[[spec.step]]
op = "threshold"
input = "ivt"
output = "ivt_300"
value = 300.0

[[spec.step]]
op = "objects"
input = "ivt"
output = "ar_id"
threshold = "{{{{threshold}}}}"

[[spec.sink]]
kind = "zarr"
path = "out/{{{{point}}}}/fields.zarr"
variables = ["ivt", "ivt_300", "ar_id"]

[[spec.sink]]
kind = "catalog"
objects = "ar_id"
path = "out/{{{{point}}}}/catalog.parquet"
"#,
        store = store().display()
    )
}

const PACIFIC: &str = "pacific = { lat = [20.0, 60.0], lon = [150.0, -110.0] }";
const ATLANTIC: &str = "atlantic = { lat = [20.0, 60.0], lon = [-80.0, -10.0] }";

/// A running `isotach serve`, killed when dropped.
struct Server {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Server {
    /// A server with its database in `dir/db` and `dir` as its first data root (the store's
    /// folder second), running one job at a time and queueing none.
    fn start(dir: &Path) -> Self {
        let config = dir.join("service.toml");
        std::fs::write(
            &config,
            format!(
                "data_roots = [{:?}, {:?}]\nmax_concurrent_jobs = 1\nmax_queued_jobs = 0\n\
                 workers_per_job = 1\nprogress_interval_ms = 100\n\
                 [[token]]\nname = \"e2e\"\nsecret = \"{TOKEN}\"\n",
                dir.display().to_string(),
                store()
                    .parent()
                    .expect("store folder")
                    .display()
                    .to_string(),
            ),
        )
        .expect("write config");
        let log = std::fs::File::create(dir.join("serve.log")).expect("server log");
        let mut child = Command::new(isotach_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("db"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start isotach serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "isotach serve printed no address; its log:\n{}",
                    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
                )
            });
        let address = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(address.contains(':'), "unexpected first line {line:?}");
        Self {
            child,
            url: format!("http://{address}"),
            dir: dir.to_owned(),
        }
    }

    /// `isotach ARGS` against this server, in its first data root.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(isotach_bin())
            .args(args)
            .current_dir(&self.dir)
            .env("ISOTACH_SERVER", &self.url)
            .env("ISOTACH_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run isotach")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "isotach {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
        );
        out
    }

    /// The job ids the server lists.
    fn jobs(&self) -> Vec<String> {
        let out = self.ok(&["jobs"]);
        text(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().canonicalize().expect("canonical");
    (dir, path)
}

/// Rows of a CSV file (RFC 4180 quoting) as header → cell maps.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let content = std::fs::read_to_string(path).expect("results.csv");
    let mut records: Vec<Vec<String>> = Vec::new();
    let (mut record, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (c, _) => field.push(c),
        }
    }
    let header = records.remove(0);
    records
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "ragged row {r:?}");
            header.iter().cloned().zip(r).collect()
        })
        .collect()
}

fn number(row: &BTreeMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} is not a number", row[column]))
}

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Every field of `variable` in `store`, one row-major vector per step.
fn fields(source: &dyn Source, variable: &str) -> Vec<Vec<f32>> {
    let info = source.describe();
    let (rows, cols) = info.grid.shape();
    (0..info.time.len() as u64)
        .map(|step| {
            let mut field = vec![f32::NAN; rows * cols];
            for (region, window) in source.regions(variable).expect("regions") {
                let tile = source
                    .read_tile(
                        variable,
                        &TileRequest {
                            step,
                            region,
                            window,
                        },
                    )
                    .expect("tile");
                for r in 0..window.rows {
                    let at = (window.row0 + r) * cols + window.col0;
                    field[at..at + window.cols].copy_from_slice(
                        &tile.values.as_slice()[r * window.cols..(r + 1) * window.cols],
                    );
                }
            }
            field
        })
        .collect()
}

/// 8-connected components of the labelled (finite) cells of one field on a regional grid.
fn components(field: &[f32], rows: usize, cols: usize) -> usize {
    let mut seen = vec![false; field.len()];
    let mut count = 0;
    for start in 0..field.len() {
        if seen[start] || !field[start].is_finite() {
            continue;
        }
        count += 1;
        seen[start] = true;
        let mut stack = vec![start];
        while let Some(cell) = stack.pop() {
            let (r, c) = ((cell / cols) as i64, (cell % cols) as i64);
            for (dr, dc) in [
                (-1, -1),
                (-1, 0),
                (-1, 1),
                (0, -1),
                (0, 1),
                (1, -1),
                (1, 0),
                (1, 1),
            ] {
                let (nr, nc) = (r + dr, c + dc);
                if nr < 0 || nc < 0 || nr >= rows as i64 || nc >= cols as i64 {
                    continue;
                }
                let next = nr as usize * cols + nc as usize;
                if !seen[next] && field[next].is_finite() {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
    }
    count
}

/// What a point's Zarr store says, computed here: object-steps (components of the label field,
/// step by step), their total area (cells on a sphere of radius 6371 km), and the IoU of the
/// labelled cells with `ivt_300`.
fn recomputed(store: &Path) -> (u64, f64, f64) {
    let source = isotach_connectors::open_source(
        store.to_str().expect("utf-8"),
        &StoreOptions::default(),
        None,
    )
    .expect("open the point's store");
    let grid = source.describe().grid.clone();
    assert!(!grid.is_global_in_lon(), "the regions are not global");
    let (rows, cols) = grid.shape();
    let (dlat, dlon) = (
        (grid.lat[0] - grid.lat[1]).abs().to_radians(),
        (grid.lon[1] - grid.lon[0]).abs().to_radians(),
    );
    let row_area: Vec<f64> = grid
        .lat
        .iter()
        .map(|lat| {
            let lat = lat.to_radians();
            let north = (lat + dlat / 2.0).min(std::f64::consts::FRAC_PI_2);
            let south = (lat - dlat / 2.0).max(-std::f64::consts::FRAC_PI_2);
            6371.0 * 6371.0 * dlon * (north.sin() - south.sin())
        })
        .collect();
    let labels = fields(source.as_ref(), "ar_id");
    let reference = fields(source.as_ref(), "ivt_300");
    let (mut steps, mut area, mut both, mut either) = (0u64, 0.0, 0u64, 0u64);
    for (ids, high) in labels.iter().zip(&reference) {
        steps += components(ids, rows, cols) as u64;
        for (cell, (id, h)) in ids.iter().zip(high).enumerate() {
            let inside = id.is_finite();
            let above = h.is_finite() && *h != 0.0;
            if inside {
                area += row_area[cell / cols];
            }
            both += u64::from(inside && above);
            either += u64::from(inside || above);
        }
    }
    (steps, area, both as f64 / either as f64)
}

#[test]
fn a_sweep_runs_one_job_per_point_and_its_results_agree_with_the_outputs() {
    let (_keep, d) = workdir();
    let server = Server::start(&d);
    std::fs::write(
        d.join("sweep.toml"),
        template("[250.0, 300.0]", &format!("{PACIFIC}\n{ATLANTIC}")),
    )
    .expect("template");

    let out = server.ok(&["sweep", "sweep.toml", "--out", "results"]);
    // One job at a time and no queue: the sweep waited for room instead of dropping points.
    assert!(
        text(&out.stderr).contains("the server is full"),
        "{}",
        text(&out.stderr)
    );
    let rows = read_csv(&d.join("results/results.csv"));
    let ids: Vec<&str> = rows.iter().map(|r| r["point"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "threshold-250_region-pacific",
            "threshold-250_region-atlantic",
            "threshold-300_region-pacific",
            "threshold-300_region-atlantic",
        ]
    );
    // The Parquet table holds the same rows and columns as the CSV.
    let parquet = isotach_connectors::read_table(&d.join("results/results.parquet"))
        .expect("results.parquet");
    assert_eq!(
        parquet.iter().map(|b| b.num_rows()).sum::<usize>(),
        rows.len()
    );
    let schema = parquet[0].schema();
    for column in rows[0].keys() {
        assert!(
            schema.field_with_name(column).is_ok(),
            "results.parquet lacks {column}: {schema:?}"
        );
    }
    assert!(d.join("results/sweep.json").is_file());

    let mut jobs = BTreeSet::new();
    let mut hashes = BTreeSet::new();
    let mut total_area = BTreeMap::new();
    for row in &rows {
        let point = row["point"].as_str();
        assert_eq!(row["status"], "succeeded", "{row:?}");
        assert_eq!(row["error"], "");
        assert_eq!(row["time_steps"], "4");
        assert!(jobs.insert(row["job_id"].clone()), "one job per point");
        for column in ["submitted_at", "started_at", "finished_at"] {
            assert!(row[column].ends_with('Z'), "{column}: {row:?}");
        }
        assert!(number(row, "total_s") >= number(row, "run_s"));
        assert!(number(row, "queue_s") >= 0.0);

        // The recorded spec is the point's spec, and its SHA-256 is the spec hash.
        let spec_file = d.join("results").join(&row["spec_file"]);
        assert_eq!(row["spec_file"], format!("points/{point}.toml"));
        assert_eq!(sha256sum(&spec_file), row["spec_hash"]);
        assert!(hashes.insert(row["spec_hash"].clone()), "distinct hashes");
        let spec = PipelineSpec::from_toml_str(&std::fs::read_to_string(&spec_file).expect("spec"))
            .expect("the recorded spec parses");
        let threshold = spec
            .steps
            .iter()
            .find_map(|s| match s {
                StepSpec::Objects { threshold, .. } => Some(*threshold),
                _ => None,
            })
            .expect("objects step");
        assert_eq!(f64::from(threshold), number(row, "threshold"));
        let region = spec.source.region.expect("region");
        let (lon, name) = if row["region"] == "pacific" {
            ([150.0, -110.0], "pacific")
        } else {
            ([-80.0, -10.0], "atlantic")
        };
        assert_eq!((region.lon, row["region"].as_str()), (lon, name));
        let SinkSpec::Zarr(zarr) = &spec.sinks[0] else {
            panic!("zarr sink first")
        };
        assert_eq!(zarr.path, format!("out/{point}/fields.zarr"));

        // The metrics agree with the job's own outputs.
        let (object_steps, area, iou) = recomputed(&d.join("out").join(point).join("fields.zarr"));
        assert!(object_steps > 0, "{point} found no object");
        assert_eq!(
            number(row, "ar_id_object_steps"),
            object_steps as f64,
            "{point}"
        );
        assert!(number(row, "ar_id_objects") >= 1.0);
        assert!(number(row, "ar_id_objects") <= object_steps as f64);
        let reported = number(row, "ar_id_area_km2_total");
        assert!(
            (reported - area).abs() <= 1e-9 * area,
            "{point}: area {reported} reported, {area} from the label field"
        );
        assert!(
            (number(row, "ar_id_area_km2_mean") - area / object_steps as f64).abs() <= 1e-9 * area
        );
        assert!(number(row, "ar_id_area_km2_max") <= reported);
        assert_eq!(row["ar_id_ar_objects"], "", "no AR criterion, no verdict");
        let reported_iou = number(row, "iou_ar_id_vs_ivt_300");
        assert!(
            (reported_iou - iou).abs() < 1e-12,
            "{point}: {reported_iou} vs {iou}"
        );
        if row["threshold"] == "300" {
            assert_eq!(
                reported_iou, 1.0,
                "objects of IVT ≥ 300 are the IVT ≥ 300 cells"
            );
        } else {
            assert!(reported_iou < 1.0);
        }
        assert_eq!(row["metrics_note"], "");
        assert_eq!(row["outputs_sha256"].len(), 64);
        assert_eq!(row["reproduced"], "", "a first run reproduces nothing");
        total_area.insert((row["region"].clone(), row["threshold"].clone()), reported);
    }
    // A higher threshold never finds more area.
    for region in ["pacific", "atlantic"] {
        let at = |t: &str| total_area[&(region.to_owned(), t.to_owned())];
        assert!(
            at("300") <= at("250"),
            "{region}: {} > {}",
            at("300"),
            at("250")
        );
    }
    // Every job the server knows is one of the sweep's, and it succeeded.
    let listed: BTreeSet<String> = server.jobs().into_iter().collect();
    assert_eq!(listed, jobs);
}

#[test]
fn an_invalid_point_is_refused_before_any_job_is_submitted() {
    let (_keep, d) = workdir();
    let server = Server::start(&d);
    let cases = [
        (
            // A value that makes the spec invalid: named with its point.
            template("[250.0, \"high\"]", PACIFIC),
            vec![
                "1 of 2 points cannot run",
                "point threshold-high_region-pacific (threshold = \"high\", region = pacific)",
                "expected f32",
            ],
        ),
        (
            // A value the data cannot satisfy: a box between two grid rows.
            template(
                "[250.0]",
                &format!("{PACIFIC}\nsliver = {{ lat = [40.5, 41.5], lon = [150.0, -110.0] }}"),
            ),
            vec![
                "1 of 2 points cannot run",
                "point threshold-250_region-sliver (threshold = 250, region = sliver)",
                "holds no grid row",
            ],
        ),
        (
            template("[250.0]", PACIFIC).replace("{{threshold}}", "{{treshold}}"),
            vec!["spec.step[2].threshold", "{{treshold}} names no parameter"],
        ),
        (
            template("[]", PACIFIC),
            vec!["parameters.threshold: has no values"],
        ),
        (
            template("[250.0, 300.0]", PACIFIC).replace("out/{{point}}/", "out/"),
            vec![
                "is also written by point threshold-250_region-pacific",
                "{{point}}",
            ],
        ),
    ];
    for (i, (template, expected)) in cases.iter().enumerate() {
        let name = format!("bad{i}.toml");
        std::fs::write(d.join(&name), template).expect("template");
        let out = server.run(&["sweep", &name, "--out", "results"]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "case {i} must fail");
        for wanted in expected {
            assert!(
                stderr.contains(wanted),
                "case {i}: {wanted:?} not in:\n{stderr}"
            );
        }
    }
    assert!(server.jobs().is_empty(), "nothing was submitted");
    assert!(!d.join("results").exists(), "nothing was written");
    assert!(!d.join("out").exists(), "no job ran");

    // A dry run checks and writes the specs, and submits nothing either.
    std::fs::write(d.join("ok.toml"), template("[250.0, 300.0]", PACIFIC)).expect("template");
    let out = server.ok(&["sweep", "ok.toml", "--out", "dry", "--dry-run"]);
    assert!(text(&out.stdout).contains("dry run: nothing submitted"));
    assert!(
        d.join("dry/points/threshold-300_region-pacific.toml")
            .is_file()
    );
    assert!(server.jobs().is_empty());
}

/// Every file under `dir`, relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("under root").to_owned();
                out.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

#[test]
fn rerunning_one_point_reproduces_its_outputs_byte_for_byte() {
    let (_keep, d) = workdir();
    let server = Server::start(&d);
    std::fs::write(d.join("sweep.toml"), template("[250.0, 300.0]", ATLANTIC)).expect("template");
    server.ok(&["sweep", "sweep.toml", "--out", "results"]);
    let first = read_csv(&d.join("results/results.csv"));
    let point = "threshold-250_region-atlantic";
    let before = snapshot(&d.join("out").join(point));
    assert!(
        before.len() > 5,
        "a store and a catalog: {:?}",
        before.keys()
    );
    let untouched = snapshot(&d.join("out/threshold-300_region-atlantic"));

    // The whole sweep again into the same folder would collide with its own outputs.
    let again = server.run(&["sweep", "sweep.toml", "--out", "results"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("holds an earlier sweep")
            && text(&again.stderr).contains("--only"),
        "{}",
        text(&again.stderr)
    );

    let out = server.ok(&["sweep", "sweep.toml", "--out", "results", "--only", point]);
    assert!(
        text(&out.stdout).contains(&format!("point {point}: outputs identical to job")),
        "{}",
        text(&out.stdout)
    );
    let after = snapshot(&d.join("out").join(point));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &before {
        assert!(after[path] == *bytes, "{} changed", path.display());
    }
    assert_eq!(
        snapshot(&d.join("out/threshold-300_region-atlantic")),
        untouched
    );

    let rows = read_csv(&d.join("results/results.csv"));
    assert_eq!(rows.len(), 2, "the rerun replaced its row");
    let find = |rows: &[BTreeMap<String, String>], id: &str| {
        rows.iter()
            .find(|r| r["point"] == id)
            .cloned()
            .expect("row")
    };
    let (earlier, rerun) = (find(&first, point), find(&rows, point));
    assert_eq!(rerun["status"], "succeeded");
    assert_eq!(rerun["rerun_of"], earlier["job_id"]);
    assert_ne!(rerun["job_id"], earlier["job_id"]);
    assert_eq!(rerun["reproduced"], "true");
    assert_eq!(rerun["spec_hash"], earlier["spec_hash"]);
    assert_eq!(rerun["outputs_sha256"], earlier["outputs_sha256"]);
    for column in [
        "ar_id_object_steps",
        "ar_id_area_km2_total",
        "iou_ar_id_vs_ivt_300",
    ] {
        assert_eq!(rerun[column], earlier[column], "{column}");
    }
    let other = "threshold-300_region-atlantic";
    assert_eq!(
        find(&rows, other),
        find(&first, other),
        "the other point is as it was"
    );
    assert_eq!(server.jobs().len(), 3);

    // A point whose spec changed since it ran is not rerun as if it were the same.
    let changed = template("[250.0, 300.0]", ATLANTIC).replace("value = 300.0", "value = 301.0");
    std::fs::write(d.join("sweep.toml"), changed).expect("template");
    let out = server.run(&["sweep", "sweep.toml", "--out", "results", "--only", point]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("its spec changed since job"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.jobs().len(), 3);
}
