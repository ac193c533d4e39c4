//! Display walls as real processes: one `isotach serve`, four `isotach wall` tile processes
//! (headless) on a 2 × 2 wall, and `isotach replay` driving a display channel. Frames are presented
//! in lock-step; a tile killed with SIGKILL leaves the others running and, restarted, rejoins on
//! the current frame; a replay paused, seeked and played gives byte-identical tiles each time; a
//! node reaches a TLS server through the CA it is given, and stops at once on one it does not trust.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use isotach_tests::generate;
use isotach_tests::wall::{
    Proc, Server, node_command, presented, replay_spec, start_node, start_server,
    start_server_with, wait_exit, wait_for,
};
use isotach_viz::Presented;

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

/// A replay of the generated season on display channel `channel`.
fn season_spec(dir: &Path, channel: &str) -> PathBuf {
    replay_spec(dir, &store_root().join("season.zarr"), channel, None)
}

fn serve(dir: &Path) -> Server {
    start_server(dir, store_root())
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

#[test]
fn four_tile_processes_present_100_frames_in_lock_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let server = serve(dir);
    let wall = write_wall(dir, 5_000);
    let mut nodes: Vec<(String, PathBuf, Proc)> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|n| {
            let out = dir.join(format!("node-{n}"));
            let proc = start_node(&server, dir, &wall, n, "lobby", &out, Some(100));
            (n.to_owned(), out, proc)
        })
        .collect();
    let spec = season_spec(dir, "lobby");
    let started = server.ok(
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
    let server = serve(dir);
    let wall = write_wall(dir, 500);
    let out = |n: &str| dir.join(format!("node-{n}"));
    let mut others: Vec<Proc> = ["a", "b", "c"]
        .into_iter()
        .map(|n| start_node(&server, dir, &wall, n, "hall", &out(n), None))
        .collect();
    let d = start_node(&server, dir, &wall, "d", "hall", &out("d"), None);
    let spec = season_spec(dir, "hall");
    server.ok(
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
    let server = serve(dir);
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
        let spec = season_spec(dir, channel);
        let mut node = start_node(&server, dir, &wall, "solo", channel, &out, Some(23));
        let started = server.ok(
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
        let sought = server.ok(dir, &["replay", "seek", &id, "2"]);
        assert!(sought.contains("frame 2/25"), "{sought}");
        server.ok(dir, &["replay", "play", &id]);
        wait_exit(&mut node, "the solo node", &out);
        let log = presented(&out);
        let steps: Vec<u64> = log.iter().map(|p| p.step).collect();
        assert_eq!(steps, (2..25).collect::<Vec<u64>>());
        wait_for("the replay to finish", || {
            server
                .ok(dir, &["replay", "status", &id])
                .contains("finished")
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
    let out = server
        .command(dir)
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
    let spec = std::fs::read_to_string(season_spec(dir, "third")).expect("spec");
    let season = store_root().join("season.zarr");
    std::fs::write(
        &outside,
        spec.replace(&season.display().to_string(), "/etc/season.zarr"),
    )
    .expect("write spec");
    let out = server
        .command(dir)
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

#[test]
fn a_tile_process_plays_a_replay_over_tls_and_refuses_a_server_it_does_not_trust() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let certs = isotach_tests::make_test_certs(dir);
    let mut server = start_server_with(
        dir,
        store_root(),
        &format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            certs.join("server.pem").display().to_string(),
            certs.join("server.key").display().to_string()
        ),
    );
    let port = server.url.rsplit(':').next().expect("port").to_owned();
    server.url = format!("https://localhost:{port}");
    server.ca = Some(certs.join("ca.pem"));
    let wall = dir.join("solo.toml");
    std::fs::write(
        &wall,
        "name = \"solo\"\nrows = 1\ncolumns = 1\ntile_width_px = 320\ntile_height_px = 180\n\
         [[node]]\nname = \"solo\"\ntiles = [[0, 0]]\n",
    )
    .expect("wall file");

    // A node that trusts another CA stops at once, naming the server: no retrying a certificate.
    let refused = node_command(&server, dir, &wall, "solo", "tls")
        .env("ISOTACH_CA", certs.join("other-ca.pem"))
        .arg("--headless")
        .arg(dir.join("refused"))
        .output()
        .expect("run isotach wall");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        message.contains(&server.url) && message.contains("is not trusted"),
        "{message}"
    );

    let out = dir.join("node-solo");
    let mut node = start_node(&server, dir, &wall, "solo", "tls", &out, Some(5));
    let spec = season_spec(dir, "tls");
    let started = server.ok(
        dir,
        &[
            "replay",
            "start",
            spec.to_str().expect("utf-8"),
            "--rate",
            "8",
        ],
    );
    assert!(started.contains("on channel tls"), "{started}");
    wait_exit(&mut node, "node solo", &out);
    let numbers: Vec<u64> = presented(&out).iter().map(|p| p.number).collect();
    assert_eq!(numbers, [0, 1, 2, 3, 4]);
}
