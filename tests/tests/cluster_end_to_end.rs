//! The same pipeline as 1 process × 1 worker and as 2 real processes × 2 workers (timely's cluster
//! over TCP on loopback) writes bit-identical outputs: Zarr stores, the object catalog, frames.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isotach_tests::{generate, isotach_bin, isotach_ok};

const SPEC: &str = r#"
name = "cluster"
[source]
uri = "../s.zarr"
variables = ["ivt_u", "ivt_v"]
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[step]]
op = "anomaly"
input = "ivt"
output = "ivt_anom"
[[step]]
op = "coarsen"
input = "ivt"
output = "ivt_c"
factor = [2, 2]
[[step]]
op = "threshold"
input = "ivt_c"
output = "high"
value = 250.0
[[step]]
op = "objects"
input = "high"
output = "ar_id"
threshold = 0.5
[[sink]]
kind = "zarr"
path = "fields.zarr"
variables = ["ivt", "ivt_anom"]
[[sink]]
kind = "zarr"
path = "objects.zarr"
variables = ["ivt_c", "ar_id"]
[[sink]]
kind = "catalog"
objects = "ar_id"
path = "catalog.parquet"
[[sink]]
kind = "frames"
path = "frames"
width_px = 320
height_px = 180
layers = [{ variable = "ivt", range = [0, 1000] }]
"#;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Every file under `root`, by relative path, with its bytes.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("prefix")
                    .display()
                    .to_string();
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

#[test]
fn two_processes_of_two_workers_write_what_one_worker_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    generate(d, "s.zarr", 3, 6);
    for run in ["single", "cluster"] {
        std::fs::create_dir_all(d.join(run)).expect("run folder");
        std::fs::write(d.join(run).join("spec.toml"), SPEC).expect("spec");
    }
    isotach_ok(&d.join("single"), &["run", "spec.toml", "--workers", "1"]);

    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    let mut children: Vec<_> = (0..2)
        .map(|process| {
            Command::new(isotach_bin())
                .args(["run", "spec.toml", "--workers", "2", "--processes", "2"])
                .args(["--process", &process.to_string(), "--hosts", &hosts])
                .current_dir(d.join("cluster"))
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(d.join(format!("process-{process}.log"))).expect("log"),
                )
                .spawn()
                .expect("start a cluster process")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (process, child) in children.iter_mut().enumerate() {
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let log = std::fs::read_to_string(d.join(format!("process-{process}.log")))
                    .unwrap_or_default();
                assert!(
                    status.success(),
                    "process {process} failed ({status}):\n{log}"
                );
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("a cluster process did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let single = files(&d.join("single"));
    let cluster = files(&d.join("cluster"));
    assert_eq!(
        single.keys().collect::<Vec<_>>(),
        cluster.keys().collect::<Vec<_>>(),
        "both runs write the same files"
    );
    assert!(
        single
            .keys()
            .any(|k| k.starts_with("objects.zarr/ar_id/c/"))
    );
    assert!(single.keys().any(|k| k.starts_with("frames/ivt_00005.png")));
    for (name, bytes) in &single {
        assert!(
            cluster[name] == *bytes,
            "{name} differs between 1×1 and 2×2 runs"
        );
    }
}
