//! The job service as real processes: `isotach serve` on a free port, driven by `isotach submit`,
//! `watch`, `jobs` and `cancel`. Events and outputs, authentication, spec validation, data roots,
//! the running and queue limits, cancellation, and a restart after SIGKILL (the running job is
//! marked interrupted, finished ones keep their records, and the interrupted one reruns to
//! success).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use isotach_tests::{generate, isotach_bin};
use serde_json::Value;

const TOKEN: &str = "e2e-token-0123456789";

/// How long a test waits for something that normally takes a second or two.
const PATIENCE: Duration = Duration::from_secs(60);

/// Stores shared by every test of this file, generated once per run into cargo's scratch folder
/// for tests (replaced on the next run, so nothing piles up): 3 steps, and 40 steps for jobs that
/// must still be running while a test acts on them.
struct Stores {
    root: PathBuf,
}

fn stores() -> &'static Stores {
    static STORES: OnceLock<Stores> = OnceLock::new();
    STORES.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("job_service_end_to_end");
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("remove the previous run's stores");
        }
        std::fs::create_dir_all(&root).expect("stores folder");
        let root = root.canonicalize().expect("canonical");
        for (name, steps) in [("small.zarr", 3), ("long.zarr", 40)] {
            generate(&root, name, 4, steps);
        }
        Stores { root }
    })
}

/// A spec reading `store` (in the shared stores' folder), writing frames to `frames/` and a Zarr
/// store to `out.zarr` under the server's first data root.
fn spec(store: &str, frames: &str, size: [u32; 2]) -> String {
    format!(
        r#"
name = "service-e2e"
[source]
uri = "{store}"
variables = ["ivt_u", "ivt_v"]
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[sink]]
kind = "frames"
path = "{frames}"
width_px = {}
height_px = {}
layers = [{{ variable = "ivt", range = [0, 1000] }}]
[[sink]]
kind = "zarr"
path = "{frames}.zarr"
variables = ["ivt"]
"#,
        size[0],
        size[1],
        store = stores().root.join(store).display(),
    )
}

fn small_spec(frames: &str) -> String {
    spec("small.zarr", frames, [320, 180])
}

/// About 3 s of rendering on one worker: long enough to act on while it runs.
fn long_spec(frames: &str) -> String {
    spec("long.zarr", frames, [960, 540])
}

/// A running `isotach serve`, killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    url: String,
    /// The lines the server prints on stdout after its address.
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts a server with its database in `dir/db`, `dir` as first data root and the shared
    /// stores as second, and waits for its listen address.
    fn start(dir: &Path, limits: &str) -> Self {
        let config = dir.join("service.toml");
        std::fs::write(
            &config,
            format!(
                "data_roots = [{:?}, {:?}]\nworkers_per_job = 1\nprogress_interval_ms = 100\n{limits}\n\
                 [[token]]\nname = \"e2e\"\nsecret = \"{TOKEN}\"\n",
                dir.display().to_string(),
                stores().root.display().to_string(),
            ),
        )
        .expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))
            .expect("server log");
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
        let (tx, rx) = mpsc::channel();
        // Read every line, so the server never writes into a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!(
                "isotach serve printed no address; its log:\n{}",
                std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
            )
        });
        let address = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|a| a.contains(':'))
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line from isotach serve: {line:?}; its log:\n{}",
                    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
                )
            })
            .to_owned();
        Self {
            child,
            url: format!("http://{address}"),
            lines: rx,
        }
    }

    /// `isotach ARGS` against this server, with `token` (or none), in `dir`.
    fn command(&self, dir: &Path, token: Option<&str>, args: &[&str]) -> Command {
        let mut command = Command::new(isotach_bin());
        command
            .args(args)
            .current_dir(dir)
            .env("ISOTACH_SERVER", &self.url)
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0")
            .env_remove("ISOTACH_TOKEN");
        if let Some(token) = token {
            command.env("ISOTACH_TOKEN", token);
        }
        command
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir, Some(TOKEN), args)
            .output()
            .expect("run isotach")
    }

    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(
            out.status.success(),
            "isotach {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON event lines of `--json` output.
fn parse_events(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event {l:?}: {e}")))
        .collect()
}

fn kind(event: &Value) -> &str {
    event["kind"].as_str().unwrap_or_default()
}

/// The id in `job N submitted (STATE)`.
fn submitted_id(stdout: &str) -> (String, String) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("job "))
        .unwrap_or_else(|| panic!("no `job N submitted` line in {stdout:?}"));
    let mut words = line.split_whitespace();
    let id = words.nth(1).unwrap_or_default().to_owned();
    let state = line
        .rsplit('(')
        .next()
        .unwrap_or_default()
        .trim_end_matches(')')
        .to_owned();
    (id, state)
}

/// `isotach watch ID --json` as a child, and a channel of its event lines.
fn watch_child(server: &Server, dir: &Path, id: &str) -> (Child, mpsc::Receiver<Value>) {
    let mut child = server
        .command(dir, Some(TOKEN), &["watch", id, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start isotach watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line)
                && tx.send(event).is_err()
            {
                return;
            }
        }
    });
    (child, rx)
}

/// Waits for an event of `wanted` kind on a watcher's channel.
fn wait_for(events: &mpsc::Receiver<Value>, wanted: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if kind(&event) == wanted => return event,
            Ok(_) => {}
            Err(e) => panic!("no {wanted} event came ({e})"),
        }
    }
}

fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().canonicalize().expect("canonical");
    (dir, path)
}

#[test]
fn a_submitted_job_streams_its_events_and_writes_its_outputs() {
    let (_keep, d) = workdir();
    let server = Server::start(&d, "max_concurrent_jobs = 1\nmax_queued_jobs = 4");
    std::fs::write(d.join("ok.toml"), small_spec("frames")).expect("spec");

    let out = server.ok(&d, &["submit", "ok.toml", "--watch", "--json"]);
    let (id, _) = submitted_id(&out);
    let events = parse_events(&out);
    let kinds: Vec<&str> = events.iter().map(kind).collect();
    assert_eq!(&kinds[..2], ["accepted", "validated"], "{kinds:?}");
    assert_eq!(events[1]["time_steps"], 3);
    assert_eq!(kinds.last(), Some(&"succeeded"), "{kinds:?}");
    assert_eq!(
        events.last().map(|e| e["time_steps"].clone()),
        Some(3.into())
    );
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "gapless"
    );
    assert!(
        events
            .iter()
            .any(|e| kind(e) == "progress" && e["stage"] == "read" && e["done"].as_u64() > Some(0)),
        "a progress event of the read stage: {kinds:?}"
    );
    let mut completed: Vec<u64> = events
        .iter()
        .filter(|e| kind(e) == "step_completed")
        .filter_map(|e| e["step"].as_u64())
        .collect();
    completed.sort_unstable();
    assert_eq!(completed, [0, 1, 2]);
    let frames: Vec<&Value> = events
        .iter()
        .filter(|e| kind(e) == "frame_published")
        .collect();
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|e| e["variable"] == "ivt"
        && e["channel"].as_str() == Some(d.join("frames").to_str().expect("utf-8"))));

    // The outputs, under the server's first data root.
    for step in 0..3 {
        assert!(d.join(format!("frames/ivt_{step:05}.png")).is_file());
    }
    assert!(d.join("frames/ivt_stats.parquet").is_file());
    assert!(isotach_connectors::is_zarr_store(&d.join("frames.zarr")));

    // Watch replays the recorded log after a given seq.
    let replay = parse_events(&server.ok(&d, &["watch", &id, "--after", "2", "--json"]));
    assert_eq!(replay.first().and_then(|e| e["seq"].as_u64()), Some(3));
    assert_eq!(replay.len(), events.len() - 2);

    let jobs = server.ok(&d, &["jobs"]);
    assert!(
        jobs.lines()
            .any(|l| l.starts_with(&format!("{id} ")) && l.contains("succeeded")),
        "{jobs}"
    );
    // Cancelling an ended job changes nothing and is no error.
    assert!(server.ok(&d, &["cancel", &id]).contains("succeeded"));
    let missing = server.run(&d, &["cancel", "999"]);
    assert!(!missing.status.success() && stderr(&missing).contains("NOT_FOUND"));
}

#[test]
fn calls_without_a_valid_token_bad_specs_and_paths_outside_the_roots_are_refused() {
    let (_keep, d) = workdir();
    let server = Server::start(&d, "");
    std::fs::write(d.join("ok.toml"), small_spec("frames")).expect("spec");

    for token in [None, Some("not-the-token-at-all")] {
        for args in [&["submit", "ok.toml"][..], &["jobs"], &["cancel", "1"]] {
            let out = server.command(&d, token, args).output().expect("run");
            assert!(!out.status.success(), "{args:?} with {token:?} must fail");
            assert!(
                stderr(&out).contains("UNAUTHENTICATED"),
                "{args:?} with {token:?}: {}",
                stderr(&out)
            );
        }
    }
    assert!(
        !d.join("frames").exists(),
        "nothing ran without authentication"
    );

    let unknown = small_spec("frames").replace(
        r#"variables = ["ivt_u", "ivt_v"]"#,
        r#"variables = ["ivt_u", "no_such_var"]"#,
    );
    std::fs::write(d.join("unknown.toml"), unknown).expect("spec");
    let out = server.run(&d, &["submit", "unknown.toml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("INVALID_ARGUMENT") && stderr(&out).contains("no_such_var"),
        "{}",
        stderr(&out)
    );

    std::fs::write(d.join("outside.toml"), small_spec("../escaped")).expect("spec");
    let out = server.run(&d, &["submit", "outside.toml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("PERMISSION_DENIED")
            && stderr(&out).contains("outside the data roots"),
        "{}",
        stderr(&out)
    );
    assert!(!d.join("../escaped").exists());

    // None of the refused submissions became a job.
    let jobs = server.ok(&d, &["jobs"]);
    assert_eq!(jobs.lines().count(), 1, "only the header: {jobs}");
}

#[test]
fn over_the_limit_is_resource_exhausted_and_cancel_stops_queued_and_running_jobs() {
    let (_keep, d) = workdir();
    let server = Server::start(&d, "max_concurrent_jobs = 1\nmax_queued_jobs = 1");
    std::fs::write(d.join("long.toml"), long_spec("frames")).expect("spec");

    let (running, state) = submitted_id(&server.ok(&d, &["submit", "long.toml"]));
    assert_eq!(state, "running");
    let (mut watcher, watched) = watch_child(&server, &d, &running);
    wait_for(&watched, "step_completed");

    let (queued, state) = submitted_id(&server.ok(&d, &["submit", "long.toml"]));
    assert_eq!(state, "queued");
    let over = server.run(&d, &["submit", "long.toml"]);
    assert!(!over.status.success());
    assert!(
        stderr(&over).contains("RESOURCE_EXHAUSTED")
            && stderr(&over).contains("max_queued_jobs = 1"),
        "{}",
        stderr(&over)
    );

    assert_eq!(
        server.ok(&d, &["cancel", &queued]).trim(),
        format!("job {queued}: cancelled")
    );
    assert_eq!(
        server.ok(&d, &["cancel", &running]).trim(),
        format!("job {running}: cancelled")
    );
    let cancelled = wait_for(&watched, "cancelled");
    assert!(
        cancelled["reason"]
            .as_str()
            .is_some_and(|r| r.contains("e2e")),
        "the reason names who cancelled: {cancelled}"
    );
    let status = watcher.wait().expect("watch exits");
    assert!(!status.success(), "watching a cancelled job exits non-zero");
    let frames = std::fs::read_dir(d.join("frames")).map_or(0, |f| f.count());
    assert!(
        frames < 40,
        "the cancelled job stopped early ({frames} files)"
    );

    let cancelled_jobs = server.ok(&d, &["jobs", "--state", "cancelled"]);
    assert_eq!(cancelled_jobs.lines().count(), 3, "{cancelled_jobs}");
    // The slot is free again.
    std::fs::write(d.join("ok.toml"), small_spec("small")).expect("spec");
    server.ok(&d, &["submit", "ok.toml", "--watch"]);
}

#[test]
fn after_a_kill_the_running_job_is_interrupted_records_survive_and_a_rerun_succeeds() {
    let (_keep, d) = workdir();
    let server = Server::start(&d, "max_concurrent_jobs = 1\nmax_queued_jobs = 4");
    std::fs::write(d.join("ok.toml"), small_spec("small")).expect("spec");
    std::fs::write(d.join("long.toml"), long_spec("frames")).expect("spec");

    let finished = parse_events(&server.ok(&d, &["submit", "ok.toml", "--watch", "--json"]));
    let finished_id = finished[0]["job_id"].to_string();
    let (long, _) = submitted_id(&server.ok(&d, &["submit", "long.toml"]));
    let (mut watcher, watched) = watch_child(&server, &d, &long);
    wait_for(&watched, "step_completed");
    server.kill();
    let _ = watcher.kill();
    let _ = watcher.wait();

    let server = Server::start(&d, "max_concurrent_jobs = 1\nmax_queued_jobs = 4");
    let state_of = |id: &str| {
        let jobs = server.ok(&d, &["jobs"]);
        jobs.lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("job {id} is not listed:\n{jobs}"))
            .to_owned()
    };
    assert_eq!(state_of(&long), "interrupted");
    assert_eq!(state_of(&finished_id), "succeeded");

    // The finished job's log is intact; the interrupted one's ends with the interruption.
    let replay = parse_events(&server.ok(&d, &["watch", &finished_id, "--json"]));
    assert_eq!(replay, finished);
    let out = server.run(&d, &["watch", &long, "--json"]);
    assert!(
        !out.status.success(),
        "watching an interrupted job exits non-zero"
    );
    let log = parse_events(&String::from_utf8_lossy(&out.stdout));
    let last = log.last().expect("events");
    assert_eq!(kind(last), "interrupted");
    assert!(
        last["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("--rerun {long}"))),
        "{last}"
    );
    assert!(
        log.iter().any(|e| kind(e) == "step_completed"),
        "the events recorded before the kill survived"
    );

    let rerun = server.ok(&d, &["submit", "--rerun", &long, "--watch", "--json"]);
    let (rerun_id, _) = submitted_id(&rerun);
    assert_ne!(rerun_id, long);
    let rerun_events = parse_events(&rerun);
    assert_eq!(
        rerun_events
            .last()
            .map(|e| (kind(e).to_owned(), e["time_steps"].clone())),
        Some(("succeeded".to_owned(), 40.into()))
    );
    assert!(
        rerun_events.iter().any(|e| kind(e) == "warning"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("replaced the earlier run's zarr store"))),
        "the rerun says it replaced the interrupted run's Zarr store"
    );
    assert!(d.join("frames/ivt_00039.png").is_file());
    assert!(isotach_connectors::is_zarr_store(&d.join("frames.zarr")));
    assert_eq!(state_of(&rerun_id), "succeeded");
    assert_eq!(
        state_of(&long),
        "interrupted",
        "the old record stays as it was"
    );
    // The list says who submitted each job, what a rerun reran and why a job stopped.
    let jobs = server.ok(&d, &["jobs"]);
    let line = |id: &str| {
        jobs.lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("job {id} is not listed:\n{jobs}"))
            .to_owned()
    };
    assert!(line(&rerun_id).contains(" e2e "), "{jobs}");
    assert!(
        line(&rerun_id).contains(&format!("rerun of {long}")),
        "{jobs}"
    );
    assert!(line(&long).contains(&format!("--rerun {long}")), "{jobs}");
}

/// One `GET path` to `address`, read to the end: (status line, body).
fn http_get(address: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the metrics port");
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {address}\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample `name` (with its labels, as printed) in a Prometheus text body.
fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{body}"))
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn the_metrics_endpoint_counts_jobs_stages_and_frames() {
    let (_keep, d) = workdir();
    let server = Server::start(&d, "metrics_listen = \"127.0.0.1:0\"");
    let line = server
        .lines
        .recv_timeout(PATIENCE)
        .expect("the metrics line");
    let metrics = line
        .strip_prefix("isotach metrics listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .trim()
        .to_owned();
    let (status, body) = http_get(&metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(sample(&body, "isotach_jobs{state=\"succeeded\"}"), 0.0);

    std::fs::write(d.join("ok.toml"), small_spec("frames")).expect("spec");
    server.ok(&d, &["submit", "ok.toml", "--watch"]);
    std::fs::write(d.join("ok2.toml"), small_spec("frames2")).expect("spec");
    server.ok(&d, &["submit", "ok2.toml", "--watch"]);
    let (_, body) = http_get(&metrics, "/metrics");
    assert_eq!(
        sample(&body, "isotach_jobs{state=\"succeeded\"}"),
        2.0,
        "{body}"
    );
    assert_eq!(
        sample(&body, "isotach_jobs_in_memory{state=\"running\"}"),
        0.0
    );
    // 3 steps in each of 2 jobs: every field delivered, every frame timed.
    assert_eq!(
        sample(
            &body,
            "isotach_stage_items_total{stage=\"deliver\",unit=\"fields\"}"
        ),
        2.0 * 3.0,
        "one ivt field per step serves both sinks: {body}"
    );
    assert_eq!(
        sample(&body, "isotach_event_seconds_count{event=\"frame\"}"),
        6.0
    );
    assert!(sample(&body, "isotach_event_seconds_sum{event=\"frame\"}") > 0.0);

    let (status, _) = http_get(&metrics, "/nothing");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn over_tls_clients_that_trust_the_servers_ca_work_and_others_are_refused_by_name() {
    let (_keep, d) = workdir();
    let certs = isotach_tests::make_test_certs(&d);
    let (cert, key, ca, other_ca) = (
        certs.join("server.pem"),
        certs.join("server.key"),
        certs.join("ca.pem"),
        certs.join("other-ca.pem"),
    );

    // A server whose key file is missing does not start, and says which file.
    let broken = d.join("broken.toml");
    std::fs::write(
        &broken,
        format!(
            "data_roots = [{:?}]\n[[token]]\nname = \"e2e\"\nsecret = \"{TOKEN}\"\n\
             [tls]\ncert = {:?}\nkey = \"missing.key\"\n",
            d.display().to_string(),
            cert.display().to_string(),
        ),
    )
    .expect("config");
    let refused = Command::new(isotach_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(d.join("db-broken"))
        .arg("--config")
        .arg(&broken)
        .output()
        .expect("run isotach serve");
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("TLS key")
            && message.contains(&d.join("missing.key").display().to_string()),
        "{message}"
    );

    let mut server = Server::start(
        &d,
        &format!(
            "[tls]\ncert = {:?}\nkey = {:?}",
            cert.display().to_string(),
            key.display().to_string()
        ),
    );
    let port = server.url.rsplit(':').next().expect("port").to_owned();
    server.url = format!("https://localhost:{port}");
    let ca_arg = ca.display().to_string();

    // Submit and watch over TLS, trusting the test CA.
    std::fs::write(d.join("ok.toml"), small_spec("frames")).expect("spec");
    let out = server.ok(
        &d,
        &["submit", "ok.toml", "--watch", "--json", "--ca", &ca_arg],
    );
    let events = parse_events(&out);
    assert_eq!(events.last().map(kind), Some("succeeded"), "{out}");
    assert!(d.join("frames/ivt_00002.png").is_file());
    // The CA also comes from the environment.
    let listed = server
        .command(&d, Some(TOKEN), &["jobs"])
        .env("ISOTACH_CA", &ca)
        .output()
        .expect("run isotach jobs");
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("succeeded"));

    // A client that trusts another CA refuses the server, naming it and the way out.
    let untrusted = server.run(&d, &["jobs", "--ca", &other_ca.display().to_string()]);
    assert!(!untrusted.status.success());
    let message = stderr(&untrusted);
    assert!(
        message.contains(&server.url)
            && message.contains("is not trusted")
            && message.contains("--ca"),
        "{message}"
    );
    // A cleartext client gets no answer from a TLS server, and a CA for http:// is a mistake.
    let cleartext = format!("http://127.0.0.1:{port}");
    let plain = server
        .command(&d, Some(TOKEN), &["jobs"])
        .env("ISOTACH_SERVER", &cleartext)
        .output()
        .expect("run isotach jobs");
    assert!(
        !plain.status.success(),
        "a cleartext call to a TLS server must fail"
    );
    let mixed = server
        .command(&d, Some(TOKEN), &["jobs", "--ca", &ca_arg])
        .env("ISOTACH_SERVER", &cleartext)
        .output()
        .expect("run isotach jobs");
    assert!(
        !mixed.status.success() && stderr(&mixed).contains("is not https://"),
        "{}",
        stderr(&mixed)
    );
}
