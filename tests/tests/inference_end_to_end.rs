//! Inference across real processes: `isotach run` sends patches to two `isotach worker`
//! processes serving the shipped atmospheric-river model; killing one worker in the middle of the
//! job loses nothing (the output equals a run without the kill), and a run whose only worker is
//! killed fails with a clear error instead of hanging.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isotach_tests::{generate, isotach, isotach_bin, isotach_ok, workspace_root};

/// A worker process, killed when dropped.
struct Worker {
    child: Child,
    url: String,
}

impl Worker {
    fn start(dir: &Path, name: &str) -> Self {
        let model = workspace_root().join("examples/models/ar_unet.onnx");
        let mut child = Command::new(isotach_bin())
            .args(["worker", "--listen", "127.0.0.1:0", "--model"])
            .arg(format!("ar_unet={}", model.display()))
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).expect("log"))
            .spawn()
            .expect("start a worker");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    panic!(
                        "worker {name} exited before listening:\n{}",
                        std::fs::read_to_string(dir.join(format!("{name}.log")))
                            .unwrap_or_default()
                    )
                })
                .expect("read stdout");
            if let Some(addr) = line.strip_prefix("listening on ") {
                break format!("http://{}", addr.trim());
            }
        };
        // Keep draining stdout so the worker never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, url }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spec(workers: &[&str]) -> String {
    let workers: Vec<String> = workers.iter().map(|w| format!("{w:?}")).collect();
    format!(
        r#"
name = "infer-e2e"
[source]
uri = "../s.zarr"
variables = ["ivt_u", "ivt_v"]
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[step]]
op = "infer"
model = "ar_unet"
inputs = ["ivt"]
output = "ar_prob"
workers = [{}]
patch_size = 64
halo = 8
batch_size = 1
max_batches_in_flight = 2
timeout_ms = 5000
[[sink]]
kind = "zarr"
path = "out.zarr"
variables = ["ar_prob"]
"#,
        workers.join(", ")
    )
}

/// The chunk files of the output variable, by name, with their bytes.
fn chunks(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![store.join("ar_prob/c")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(store)
                    .expect("prefix")
                    .display()
                    .to_string();
                out.push((name, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn killing_a_worker_mid_job_changes_nothing_in_the_output() {
    const STEPS: usize = 36;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    generate(d, "s.zarr", 3, STEPS);
    let workers = [Worker::start(d, "a"), Worker::start(d, "b")];
    let urls: Vec<&str> = workers.iter().map(|w| w.url.as_str()).collect();

    std::fs::create_dir_all(d.join("calm")).expect("dir");
    std::fs::write(d.join("calm/spec.toml"), spec(&urls)).expect("spec");
    isotach_ok(&d.join("calm"), &["run", "spec.toml", "--workers", "2"]);
    let calm = chunks(&d.join("calm/out.zarr"));
    assert_eq!(calm.len(), STEPS, "one chunk per step");

    std::fs::create_dir_all(d.join("killed")).expect("dir");
    std::fs::write(d.join("killed/spec.toml"), spec(&urls)).expect("spec");
    let mut run = Command::new(isotach_bin())
        .args(["run", "spec.toml", "--workers", "2"])
        .current_dir(d.join("killed"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("killed.log")).expect("log"))
        .spawn()
        .expect("start the run");
    // Kill worker a once the job has written its first steps, long before its last.
    let mut workers = workers;
    let deadline = Instant::now() + Duration::from_secs(300);
    let written_at_kill = loop {
        let written = chunks(&d.join("killed/out.zarr")).len();
        if written >= 2 {
            workers[0].kill();
            break written;
        }
        assert!(
            run.try_wait().expect("wait").is_none(),
            "the run ended before the kill"
        );
        assert!(Instant::now() < deadline, "the run wrote nothing in 300 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    // On a loaded machine the poll may come late; what matters is that steps remained.
    assert!(
        written_at_kill + 4 <= STEPS,
        "the kill came mid-job ({written_at_kill} of {STEPS} steps written)"
    );
    let status = run.wait().expect("wait");
    let log = std::fs::read_to_string(d.join("killed.log")).unwrap_or_default();
    assert!(status.success(), "the run failed after the kill:\n{log}");
    assert!(
        log.contains("retrying"),
        "the client saw the kill and retried:\n{log}"
    );
    let killed = chunks(&d.join("killed/out.zarr"));
    assert_eq!(killed.len(), STEPS, "every step written");
    for ((name, a), (other, b)) in calm.iter().zip(&killed) {
        assert_eq!(name, other);
        assert!(a == b, "{name} differs after the kill");
    }
}

#[test]
fn a_job_whose_only_worker_dies_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    generate(d, "s.zarr", 3, 24);
    let mut worker = Worker::start(d, "only");
    std::fs::create_dir_all(d.join("run")).expect("dir");
    std::fs::write(d.join("run/spec.toml"), spec(&[&worker.url])).expect("spec");
    let run = Command::new(isotach_bin())
        .args(["run", "spec.toml"])
        .current_dir(d.join("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the run");
    let deadline = Instant::now() + Duration::from_secs(300);
    while chunks(&d.join("run/out.zarr")).is_empty() {
        assert!(Instant::now() < deadline, "the run wrote nothing in 300 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    worker.kill();
    let started = Instant::now();
    let out = run.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run cannot succeed:\n{stderr}");
    assert!(
        stderr.contains("failed on every worker") && stderr.contains(&worker.url),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "it failed promptly instead of hanging"
    );
}

#[test]
fn a_spec_naming_a_model_no_worker_serves_is_refused_before_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    generate(d, "s.zarr", 3, 2);
    let worker = Worker::start(d, "w");
    std::fs::create_dir_all(d.join("run")).expect("dir");
    std::fs::write(
        d.join("run/spec.toml"),
        spec(&[&worker.url]).replace("model = \"ar_unet\"", "model = \"cloud_mask\""),
    )
    .expect("spec");
    let out = isotach(&d.join("run"), &["run", "spec.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("\"cloud_mask\"") && stderr.contains("ar_unet"),
        "names the model asked for and the one served:\n{stderr}"
    );
    assert!(!d.join("run/out.zarr").exists(), "nothing was written");
}
