//! Display walls as real processes: one `isotach serve`, four `isotach wall` tile processes
//! (headless) on a 2 × 2 wall, and `isotach replay` driving a display channel. Frames are presented
//! in lock-step; a tile killed with SIGKILL leaves the others running and, restarted, rejoins on
//! the current frame; a replay paused, seeked and played gives byte-identical tiles each time.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use isotach_tests::{generate, isotach_bin};
use isotach_viz::{PRESENT_LOG, Presented};

const TOKEN: &str = "wall-token-0123456789";
const PATIENCE: Duration = Duration::from_secs(90);

fn store_root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wall_end_to_end");
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("remove the previous run's stores");
        }
        std::fs::create_dir_all(&root).expect("stores folder");
        let root = root.canonicalize().expect("canonical");
        generate(&root, "season.zarr", 4, 25);
        root
    })
}

/// A replay spec: IVT magnitude of the generated season on display channel `channel`.
fn replay_spec(dir: &Path, channel: &str) -> PathBuf {
    let path = dir.join(format!("{channel}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
name = "wall-e2e"
[source]
uri = "{}"
variables = ["ivt_u", "ivt_v"]
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[sink]]
kind = "frames"
channel = "{channel}"
layers = [{{ variable = "ivt", colormap = "magma" }}]
"#,
            store_root().join("season.zarr").display()
        ),
    )
    .expect("write spec");
    path
}

fn write_wall(dir: &Path, timeout_ms: u32) -> PathBuf {
    let path = dir.join("wall.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "e2e-wall"
rows = 2
columns = 2
tile_width_px = 320
tile_height_px = 180
bezel_x_px = 12
bezel_y_px = 8
present_timeout_ms = {timeout_ms}
[[node]]
name = "a"
tiles = [[0, 0]]
[[node]]
name = "b"
tiles = [[0, 1]]
[[node]]
name = "c"
tiles = [[1, 0]]
[[node]]
name = "d"
tiles = [[1, 1]]
"#
        ),
    )
    .expect("write wall");
    path
}

/// A process killed (SIGKILL) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Server {
    proc: Proc,
    url: String,
}

fn start_server(dir: &Path) -> Server {
    let config = dir.join("service.toml");
    std::fs::write(
        &config,
        format!(
            "data_roots = [{:?}, {:?}]\nworkers_per_job = 1\n[[token]]\nname = \"wall\"\nsecret = \"{TOKEN}\"\n",
            dir.display().to_string(),
            store_root().display().to_string(),
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join("serve.log")).expect("log");
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
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("isotach serve printed no address"));
    std::thread::spawn(move || for _ in lines {});
    let address = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    Server {
        proc: Proc(child),
        url: format!("http://{address}"),
    }
}

fn isotach_cmd(server: &Server, dir: &Path) -> Command {
    let mut command = Command::new(isotach_bin());
    command
        .current_dir(dir)
        .env("ISOTACH_SERVER", &server.url)
        .env("ISOTACH_TOKEN", TOKEN);
    command
}

fn isotach_ok(server: &Server, dir: &Path, args: &[&str]) -> String {
    let out = isotach_cmd(server, dir)
        .args(args)
        .output()
        .expect("run isotach");
    assert!(
        out.status.success(),
        "isotach {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts a wall node writing into `out`, and waits until it has subscribed.
fn start_node(
    server: &Server,
    dir: &Path,
    wall: &Path,
    node: &str,
    channel: &str,
    out: &Path,
    frames: Option<u64>,
) -> Proc {
    std::fs::create_dir_all(out).expect("node folder");
    let log_path = out.join("node.log");
    let log = std::fs::File::create(&log_path).expect("node log");
    let mut command = isotach_cmd(server, dir);
    command
        .args(["wall", "--wall"])
        .arg(wall)
        .args(["--node", node, "--channel", channel, "--headless"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(n) = frames {
        command.args(["--frames", &n.to_string()]);
    }
    let proc = Proc(command.spawn().expect("start isotach wall"));
    wait_for(&format!("node {node} to subscribe"), || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("subscribed")
    });
    proc
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn presented(out: &Path) -> Vec<Presented> {
    let path = out.join(PRESENT_LOG);
    if !path.exists() {
        return Vec::new();
    }
    Presented::read_log(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for a node started with `--frames` to exit; on failure, says what it presented and logged.
fn wait_exit(proc: &mut Proc, what: &str, out: &Path) {
    let start = Instant::now();
    loop {
        if let Some(status) = proc.0.try_wait().expect("wait") {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        if start.elapsed() > PATIENCE * 2 {
            let steps: Vec<u64> = presented(out).iter().map(|p| p.step).collect();
            let log = std::fs::read_to_string(out.join("node.log")).unwrap_or_default();
            panic!("{what} did not finish; it presented steps {steps:?}; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn four_tile_processes_present_100_frames_in_lock_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let server = start_server(dir);
    let wall = write_wall(dir, 5_000);
    let mut nodes: Vec<(String, PathBuf, Proc)> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|n| {
            let out = dir.join(format!("node-{n}"));
            let proc = start_node(&server, dir, &wall, n, "lobby", &out, Some(100));
            (n.to_owned(), out, proc)
        })
        .collect();
    let spec = replay_spec(dir, "lobby");
    let started = isotach_ok(
        &server,
        dir,
        &[
            "replay",
            "start",
            spec.to_str().expect("utf-8"),
            "--rate",
            "8",
            "--loop",
        ],
    );
    assert!(started.contains("on channel lobby"), "{started}");
    for (name, out, proc) in &mut nodes {
        wait_exit(proc, &format!("node {name}"), out);
    }
    let logs: BTreeMap<String, Vec<Presented>> = nodes
        .iter()
        .map(|(name, out, _)| (name.clone(), presented(out)))
        .collect();
    for (name, log) in &logs {
        let numbers: Vec<u64> = log.iter().map(|p| p.number).collect();
        assert_eq!(numbers, (0..100).collect::<Vec<u64>>(), "node {name}");
        assert!(
            log.iter().all(|p| p.missing.is_empty()),
            "node {name}: {log:?}"
        );
        // The replay loops over 25 steps.
        assert_eq!(log[30].step, 5, "node {name}");
    }
    let mut spreads: Vec<f64> = (0..100)
        .map(|i| {
            let times: Vec<i64> = logs
                .values()
                .map(|log| {
                    log[i]
                        .presented_at
                        .timestamp_nanos_opt()
                        .unwrap_or_default()
                })
                .collect();
            let (min, max) = (times.iter().min().copied(), times.iter().max().copied());
            (max.unwrap_or(0) - min.unwrap_or(0)) as f64 / 1e6
        })
        .collect();
    spreads.sort_by(f64::total_cmp);
    println!(
        "present spread across 4 tile processes over 100 frames: median {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        spreads[50], spreads[95], spreads[99]
    );
    assert!(spreads[99] < 1_000.0, "spread {} ms", spreads[99]);
    // Every tile was written for every step shown.
    for (name, out, _) in &nodes {
        let tiles = std::fs::read_dir(out)
            .expect("node folder")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".png"))
            })
            .count();
        assert_eq!(tiles, 25, "node {name}");
    }
    drop(server.proc);
}

#[test]
fn a_killed_tile_process_leaves_the_others_running_and_rejoins_on_the_current_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let server = start_server(dir);
    let wall = write_wall(dir, 500);
    let out = |n: &str| dir.join(format!("node-{n}"));
    let mut others: Vec<Proc> = ["a", "b", "c"]
        .into_iter()
        .map(|n| start_node(&server, dir, &wall, n, "hall", &out(n), None))
        .collect();
    let d = start_node(&server, dir, &wall, "d", "hall", &out("d"), None);
    let spec = replay_spec(dir, "hall");
    isotach_ok(
        &server,
        dir,
        &[
            "replay",
            "start",
            spec.to_str().expect("utf-8"),
            "--rate",
            "10",
            "--loop",
        ],
    );
    wait_for("node d to present 10 frames", || {
        presented(&out("d")).len() >= 10
    });
    // SIGKILL, as a crash or a pulled cable would.
    drop(d);
    let killed_at = presented(&out("a")).last().map_or(0, |p| p.number);
    std::thread::sleep(Duration::from_secs(2));
    for n in ["a", "b", "c"] {
        let last = presented(&out(n)).last().map_or(0, |p| p.number);
        assert!(
            last >= killed_at + 5,
            "node {n} stalled after d was killed: frame {killed_at} then {last}"
        );
    }
    // Restarted: it joins on the channel's current frame and is in lock-step again.
    let before_restart = presented(&out("a")).last().map_or(0, |p| p.number);
    let restarted_out = dir.join("node-d-restarted");
    let _d = start_node(&server, dir, &wall, "d", "hall", &restarted_out, None);
    wait_for("the restarted d to present 10 frames", || {
        presented(&restarted_out).len() >= 10
    });
    let rejoined = presented(&restarted_out);
    let first = rejoined[0].number;
    assert!(
        first >= before_restart,
        "restarted d began on frame {first}, behind the wall's frame {before_restart}"
    );
    // After its first frame, every frame d presents is one the others present too, in order.
    std::thread::sleep(Duration::from_millis(500));
    let a_numbers: BTreeSet<u64> = presented(&out("a")).iter().map(|p| p.number).collect();
    let d_numbers: Vec<u64> = rejoined.iter().map(|p| p.number).collect();
    assert!(
        d_numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "{d_numbers:?}"
    );
    for n in &d_numbers[1..] {
        assert!(a_numbers.contains(n), "d presented {n}, a did not");
    }
    // While d was gone the others presented without it.
    let a_log = presented(&out("a"));
    assert!(
        a_log.iter().all(|p| p.missing.iter().all(|m| m == "d")),
        "{a_log:?}"
    );
    others.clear();
    drop(server.proc);
}

#[test]
fn a_replay_pauses_seeks_plays_and_draws_the_same_pixels_every_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let server = start_server(dir);
    let wall = dir.join("single.toml");
    std::fs::write(
        &wall,
        "name = \"one\"\nrows = 1\ncolumns = 1\ntile_width_px = 480\ntile_height_px = 270\n\
         [[node]]\nname = \"solo\"\ntiles = [[0, 0]]\n",
    )
    .expect("wall");
    let mut runs = Vec::new();
    for (run, channel) in ["first", "second"].into_iter().enumerate() {
        let out = dir.join(format!("run-{run}"));
        let spec = replay_spec(dir, channel);
        let mut node = start_node(&server, dir, &wall, "solo", channel, &out, Some(23));
        let started = isotach_ok(
            &server,
            dir,
            &[
                "replay",
                "start",
                spec.to_str().expect("utf-8"),
                "--rate",
                "40",
                "--paused",
            ],
        );
        let id = started
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no replay id in {started:?}"))
            .to_owned();
        assert!(started.contains(": paused, frame 0/25"), "{started}");
        // Paused: nothing is shown.
        std::thread::sleep(Duration::from_millis(500));
        assert!(presented(&out).is_empty());
        let sought = isotach_ok(&server, dir, &["replay", "seek", &id, "2"]);
        assert!(sought.contains("frame 2/25"), "{sought}");
        isotach_ok(&server, dir, &["replay", "play", &id]);
        wait_exit(&mut node, "the solo node", &out);
        let log = presented(&out);
        let steps: Vec<u64> = log.iter().map(|p| p.step).collect();
        assert_eq!(steps, (2..25).collect::<Vec<u64>>());
        wait_for("the replay to finish", || {
            isotach_ok(&server, dir, &["replay", "status", &id]).contains("finished")
        });
        runs.push(out);
    }
    for step in 2..25 {
        let name = format!("r0c0_s{step:05}.png");
        let a = std::fs::read(runs[0].join(&name)).expect("first run tile");
        let b = std::fs::read(runs[1].join(&name)).expect("second run tile");
        assert!(a == b, "{name} differs between two replays");
    }
    // Bad commands are refused with the value named.
    let out = isotach_cmd(&server, dir)
        .args(["replay", "speed", "r1", "5000"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("steps_per_second 5000 is outside 0.01..=1000"),
        "{stderr}"
    );
    // A replay of a store outside the data roots is refused before the store is opened.
    let outside = dir.join("outside.toml");
    let spec = std::fs::read_to_string(replay_spec(dir, "third")).expect("spec");
    let season = store_root().join("season.zarr");
    std::fs::write(
        &outside,
        spec.replace(&season.display().to_string(), "/etc/season.zarr"),
    )
    .expect("write spec");
    let out = isotach_cmd(&server, dir)
        .args(["replay", "start", outside.to_str().expect("utf-8")])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("source.uri \"/etc/season.zarr\"")
            && stderr.contains("outside the data roots"),
        "{stderr}"
    );
    drop(server.proc);
}
