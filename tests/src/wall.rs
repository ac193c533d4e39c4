//! Display walls as real processes: an `isotach serve` with a token, `isotach wall` nodes and
//! `isotach replay` commands against it, and waiting on what the nodes present.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use isotach_viz::{PRESENT_LOG, Presented};

use crate::isotach_bin;

/// The bearer token of the servers started here.
pub const TOKEN: &str = "wall-token-0123456789";
/// How long to wait for a node to subscribe or present.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A process killed (SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `isotach serve`.
pub struct Server {
    /// The process.
    pub proc: Proc,
    /// Its address, `http://127.0.0.1:PORT` (`https://localhost:PORT` on TLS).
    pub url: String,
    /// The CA its clients trust, for a server on TLS.
    pub ca: Option<PathBuf>,
}

impl Server {
    /// `isotach` in `dir`, pointed at this server with its token.
    pub fn command(&self, dir: &Path) -> Command {
        let mut command = Command::new(isotach_bin());
        command
            .current_dir(dir)
            .env("ISOTACH_SERVER", &self.url)
            .env("ISOTACH_TOKEN", TOKEN);
        match &self.ca {
            Some(ca) => command.env("ISOTACH_CA", ca),
            None => command.env_remove("ISOTACH_CA"),
        };
        command
    }

    /// Runs `isotach ARGS` against this server and fails the test, showing stderr, unless it
    /// succeeds; returns stdout.
    pub fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.command(dir).args(args).output().expect("run isotach");
        assert!(
            out.status.success(),
            "isotach {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Starts `isotach serve` on a free port of 127.0.0.1 with its database in `dir`, reading
/// specs from `dir` and stores from `store_root`.
pub fn start_server(dir: &Path, store_root: &Path) -> Server {
    start_server_with(dir, store_root, "")
}

/// [`start_server`] with `extra` at the end of its config (a `[tls]` table, say).
pub fn start_server_with(dir: &Path, store_root: &Path, extra: &str) -> Server {
    let config = dir.join("service.toml");
    std::fs::write(
        &config,
        format!(
            "data_roots = [{:?}, {:?}]\nworkers_per_job = 1\n[[token]]\nname = \"wall\"\nsecret = \"{TOKEN}\"\n{extra}",
            dir.display().to_string(),
            store_root.display().to_string(),
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
        ca: None,
    }
}

/// Writes `{channel}.toml` in `dir`: a replay of IVT magnitude from the store `store` (made by
/// `generate`) on display channel `channel`, over `time` (first and last instant, RFC 3339)
/// or every step.
pub fn replay_spec(dir: &Path, store: &Path, channel: &str, time: Option<[&str; 2]>) -> PathBuf {
    let path = dir.join(format!("{channel}.toml"));
    let time = time
        .map(|[start, end]| format!("time = {{ start = \"{start}\", end = \"{end}\" }}\n"))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            r#"
name = "wall-e2e"
[source]
uri = "{}"
variables = ["ivt_u", "ivt_v"]
{time}
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[sink]]
kind = "frames"
channel = "{channel}"
layers = [{{ variable = "ivt", colormap = "magma" }}]
"#,
            store.display()
        ),
    )
    .expect("write spec");
    path
}

/// `isotach wall` for node `node` of the wall file `wall` on `channel`, before the options that
/// say where it presents.
pub fn node_command(
    server: &Server,
    dir: &Path,
    wall: &Path,
    node: &str,
    channel: &str,
) -> Command {
    let mut command = server.command(dir);
    command
        .args(["wall", "--wall"])
        .arg(wall)
        .args(["--node", node, "--channel", channel]);
    command
}

/// Spawns a node's `command` with stderr into `log_path`, and waits until it has subscribed.
pub fn spawn_node(mut command: Command, log_path: &Path, what: &str) -> Proc {
    let log = std::fs::File::create(log_path).expect("node log");
    let proc = Proc(
        command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start isotach wall"),
    );
    wait_for(&format!("{what} to subscribe"), || {
        std::fs::read_to_string(log_path)
            .unwrap_or_default()
            .contains("subscribed")
    });
    proc
}

/// Starts a headless node writing into `out` (tiles, present log and `node.log`), and waits
/// until it has subscribed.
pub fn start_node(
    server: &Server,
    dir: &Path,
    wall: &Path,
    node: &str,
    channel: &str,
    out: &Path,
    frames: Option<u64>,
) -> Proc {
    std::fs::create_dir_all(out).expect("node folder");
    let mut command = node_command(server, dir, wall, node, channel);
    command.arg("--headless").arg(out);
    if let Some(n) = frames {
        command.args(["--frames", &n.to_string()]);
    }
    spawn_node(command, &out.join("node.log"), &format!("node {node}"))
}

/// Polls `done` every 50 ms; fails the test after [`PATIENCE`].
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The present log in `out` so far (empty before the node writes it).
pub fn presented(out: &Path) -> Vec<Presented> {
    let path = out.join(PRESENT_LOG);
    if !path.exists() {
        return Vec::new();
    }
    Presented::read_log(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for a node that will exit by itself (`--frames`, a signal) and checks that it
/// succeeded; on failure, says what it presented (log in `out`) and logged (`node.log` in `out`).
pub fn wait_exit(proc: &mut Proc, what: &str, out: &Path) {
    let start = Instant::now();
    loop {
        if let Some(status) = proc.0.try_wait().expect("wait") {
            let log = std::fs::read_to_string(out.join("node.log")).unwrap_or_default();
            assert!(
                status.success(),
                "{what} exited with {status}; its log:\n{log}"
            );
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
