//! The job service and the display side, measured across real processes: one `isotach serve`,
//! four headless `isotach wall` nodes on a 2 × 2 wall, and clients in this process.
//!
//! 1. **Submission to first frame**: a job (IVT magnitude and objects on a generated store, a
//!    frames sink on display channel `live`) is submitted; the time to its first frame at a
//!    `FrameService` subscriber and to its first present on the wall. Baseline: the job's own
//!    time per step (its total run time over its steps), so the ratio says how many steps' worth
//!    the start costs.
//! 2. **Step complete to presented**: for every frame of that job, the time from the engine
//!    completing the step to each wall node presenting it (median, p95), and the spread of the
//!    four nodes' present times. Baseline: the nodes' own drawing time per frame.
//! 3. **Sustained replay rate**: a replay of the store at 1000 steps/s (faster than anything can
//!    go), looping; frames received per second by a subscriber over 5 s, and frames presented per
//!    second by the wall in lock-step. Baseline: the rate asked for.
//! 4. **100 concurrent Watch streams** on one job: the time from the job's last event being
//!    recorded to the slowest of 100 watchers receiving it. Baseline: the same with 1 watcher.
//!
//! ```text
//! cargo build --release -p isotach
//! cargo run --release -p isotach-examples --example service_benchmark -- \
//!     [--isotach target/release/isotach] [--work target/bench-service] [--steps 40]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use isotach_core::PipelineSpec;
use isotach_proto::v1;
use isotach_proto::v1::frame_service_client::FrameServiceClient;
use isotach_service::client::{JobClient, ReplayClient, ServerAddress};
use isotach_service::{EventKind, JobState};
use isotach_viz::{PRESENT_LOG, Presented};
use tokio_stream::StreamExt;

const TOKEN: &str = "bench-token-0123456789";
const NODES: [&str; 4] = ["a", "b", "c", "d"];

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn median_p95(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

fn spec(store: &Path, channel: &str, name: &str) -> Result<PipelineSpec> {
    Ok(PipelineSpec::from_toml_str(&format!(
        r#"
name = "{name}"
[source]
uri = "{}"
variables = ["ivt_u", "ivt_v"]
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[step]]
op = "objects"
input = "ivt"
threshold = 250.0
output = "ar_id"
[[sink]]
kind = "frames"
channel = "{channel}"
layers = [{{ variable = "ivt", colormap = "magma", range = [0, 800] }}, {{ variable = "ar_id", style = "objects" }}]
"#,
        store.display()
    ))?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let root = workspace();
    let isotach = arg("--isotach").map_or_else(
        || {
            let release = root.join("target/release/isotach");
            if release.exists() {
                release
            } else {
                root.join("target/debug/isotach")
            }
        },
        PathBuf::from,
    );
    if !isotach.exists() {
        bail!(
            "{} is missing: cargo build --release -p isotach",
            isotach.display()
        );
    }
    let work = arg("--work").map_or_else(|| root.join("target/bench-service"), PathBuf::from);
    let steps: usize = arg("--steps").map_or(Ok(40), |s| s.parse())?;
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let work = work.canonicalize()?;
    let store = work.join("season.zarr");
    let ok = Command::new(&isotach)
        .args([
            "generate",
            "--resolution-deg",
            "1",
            "--steps",
            &steps.to_string(),
            "--out",
        ])
        .arg(&store)
        .status()?;
    if !ok.success() {
        bail!("isotach generate failed");
    }

    // The server.
    let config = work.join("service.toml");
    std::fs::write(
        &config,
        format!(
            "data_roots = [{:?}]\nworkers_per_job = 2\nprogress_interval_ms = 200\n[[token]]\nname = \"bench\"\nsecret = \"{TOKEN}\"\n",
            work.display().to_string()
        ),
    )?;
    let mut serve = Command::new(&isotach)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(work.join("db"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(work.join("serve.log"))?)
        .spawn()?;
    let stdout = serve
        .stdout
        .take()
        .ok_or_else(|| anyhow!("server stdout"))?;
    let serve = Proc(serve);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let line = lines
        .next()
        .ok_or_else(|| anyhow!("the server printed nothing"))??;
    std::thread::spawn(move || for _ in lines {});
    let url = format!(
        "http://{}",
        line.trim().rsplit(' ').next().unwrap_or_default()
    );
    let server = ServerAddress::new(url.clone()).with_token(TOKEN);

    // The wall: 2 × 2 tiles of 960 × 540, one node each.
    let wall = work.join("wall.toml");
    std::fs::write(
        &wall,
        "name = \"bench\"\nrows = 2\ncolumns = 2\ntile_width_px = 960\ntile_height_px = 540\nbezel_x_px = 20\nbezel_y_px = 20\npresent_timeout_ms = 2000\n\
         [[node]]\nname = \"a\"\ntiles = [[0, 0]]\n[[node]]\nname = \"b\"\ntiles = [[0, 1]]\n\
         [[node]]\nname = \"c\"\ntiles = [[1, 0]]\n[[node]]\nname = \"d\"\ntiles = [[1, 1]]\n",
    )?;
    let start_nodes = |channel: &str| -> Result<Vec<(PathBuf, Proc)>> {
        let mut nodes = Vec::new();
        for node in NODES {
            let out = work.join(format!("{channel}-{node}"));
            std::fs::create_dir_all(&out)?;
            let log = out.join("node.log");
            let child = Command::new(&isotach)
                .args(["wall", "--wall"])
                .arg(&wall)
                .args(["--node", node, "--channel", channel, "--headless"])
                .arg(&out)
                .env("ISOTACH_SERVER", &url)
                .env("ISOTACH_TOKEN", TOKEN)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()?;
            nodes.push((out, Proc(child)));
        }
        let started = Instant::now();
        for (out, _) in &nodes {
            while !std::fs::read_to_string(out.join("node.log"))
                .unwrap_or_default()
                .contains("subscribed")
            {
                if started.elapsed() > Duration::from_secs(60) {
                    bail!("wall node in {} did not subscribe", out.display());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(nodes)
    };

    let mut jobs = JobClient::connect(&server).await?;
    let (channel, bearer) = server.connect().await?;
    let mut frames =
        FrameServiceClient::with_interceptor(channel, bearer).max_decoding_message_size(256 << 20);
    let subscribe = |channel: &str| v1::FrameRequest {
        target: Some(v1::frame_request::Target::Channel(channel.to_owned())),
        ..Default::default()
    };

    // 1 and 2: a live job on the wall.
    let nodes = start_nodes("live")?;
    let mut viewer = frames.subscribe(subscribe("live")).await?.into_inner();
    let submitted = Instant::now();
    let job = jobs.submit(&spec(&store, "live", "bench-live")?).await?;
    let first = viewer.message().await?.ok_or_else(|| anyhow!("no frame"))?;
    let to_first_frame = submitted.elapsed().as_secs_f64();
    let mut events = jobs.watch(&job.id, 0).await?;
    let mut run_seconds = None;
    let mut started_at = None;
    while let Some(event) = events.next().await {
        let event = event?;
        match event.kind {
            EventKind::Validated { .. } => started_at = Some(event.time),
            EventKind::Succeeded { .. } => {
                run_seconds = started_at.map(|s| (event.time - s).as_seconds_f64());
            }
            EventKind::Failed { reason, .. } => bail!("the live job failed: {reason}"),
            _ => {}
        }
    }
    let per_step = run_seconds.unwrap_or(f64::NAN) / steps as f64;
    // Wait for the wall to present the last frame.
    let last = (steps - 1) as u64;
    let wait = Instant::now();
    let logs = loop {
        let logs: Vec<Vec<Presented>> = nodes
            .iter()
            .map(|(out, _)| Presented::read_log(&out.join(PRESENT_LOG)).unwrap_or_default())
            .collect();
        if logs
            .iter()
            .all(|l| l.last().is_some_and(|p| p.number >= last))
        {
            break logs;
        }
        if wait.elapsed() > Duration::from_secs(120) {
            bail!("the wall did not present frame {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(nodes);
    let first_present = logs
        .iter()
        .filter_map(|l| l.first())
        .map(|p| p.presented_at)
        .max()
        .ok_or_else(|| anyhow!("no presents"))?;
    let created = job.created.ok_or_else(|| anyhow!("no creation time"))?;
    let to_first_present = (first_present - created).as_seconds_f64();
    let mut latency = Vec::new();
    let mut render = Vec::new();
    let mut by_frame: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for log in &logs {
        for p in log {
            latency.push((p.presented_at - p.completed_at).as_seconds_f64() * 1e3);
            render.push(p.render_ms);
            by_frame
                .entry(p.number)
                .or_default()
                .push(p.presented_at.timestamp_nanos_opt().unwrap_or_default());
        }
    }
    let spreads: Vec<f64> = by_frame
        .values()
        .filter(|t| t.len() == NODES.len())
        .map(|t| (t.iter().max().unwrap_or(&0) - t.iter().min().unwrap_or(&0)) as f64 / 1e6)
        .collect();
    let (lat_med, lat_p95) = median_p95(latency);
    let (render_med, _) = median_p95(render);
    let (spread_med, spread_p95) = median_p95(spreads.clone());
    let spread_max = spreads.iter().copied().fold(0.0, f64::max);

    // 3: replay at full speed.
    let nodes = start_nodes("replay")?;
    let mut replays = ReplayClient::connect(&server).await?;
    let mut viewer = frames.subscribe(subscribe("replay")).await?.into_inner();
    let replay = replays
        .start(
            &spec(&store, "replay", "bench-replay")?,
            1000.0,
            true,
            false,
        )
        .await?;
    // Let it compute every frame first, so the rate measured is playback's, not the engine's.
    let computed = Instant::now();
    while replays.get(&replay.id).await?.ready < steps as u64 {
        if computed.elapsed() > Duration::from_secs(300) {
            bail!("the replay did not compute its frames");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let presented_before: Vec<usize> = nodes
        .iter()
        .map(|(out, _)| Presented::read_log(&out.join(PRESENT_LOG)).map_or(0, |l| l.len()))
        .collect();
    let window = Duration::from_secs(5);
    let t0 = Instant::now();
    let mut received = 0u64;
    while t0.elapsed() < window {
        match tokio::time::timeout(window.saturating_sub(t0.elapsed()), viewer.message()).await {
            Ok(Ok(Some(_))) => received += 1,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => break,
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let presented_after: Vec<usize> = nodes
        .iter()
        .map(|(out, _)| Presented::read_log(&out.join(PRESENT_LOG)).map_or(0, |l| l.len()))
        .collect();
    let wall_rate = presented_after
        .iter()
        .zip(&presented_before)
        .map(|(a, b)| (a - b) as f64)
        .fold(f64::INFINITY, f64::min)
        / secs;
    let replay_status = replays.get(&replay.id).await?;
    replays.stop(&replay.id).await?;
    drop(nodes);
    drop(viewer);

    // 4: watchers.
    let watch_lag = |watchers: usize| {
        let server = server.clone();
        let store = store.clone();
        async move {
            let mut client = JobClient::connect(&server).await?;
            let job = client
                .submit(&spec(&store, "nobody", &format!("bench-watch-{watchers}"))?)
                .await?;
            let mut tasks = Vec::new();
            for _ in 0..watchers {
                let server = server.clone();
                let id = job.id.clone();
                tasks.push(tokio::spawn(async move {
                    let mut client = JobClient::connect(&server).await?;
                    let mut events = client.watch(&id, 0).await?;
                    let mut n = 0u64;
                    let mut end = None;
                    while let Some(event) = events.next().await {
                        let event = event?;
                        n += 1;
                        if event.kind.is_final() {
                            end = Some((event.time, chrono::Utc::now()));
                        }
                    }
                    Ok::<_, anyhow::Error>((n, end))
                }));
            }
            let mut lags = Vec::new();
            let mut counts = Vec::new();
            for task in tasks {
                let (n, end) = task.await??;
                counts.push(n);
                let (recorded, received) = end.ok_or_else(|| anyhow!("a watcher saw no end"))?;
                lags.push((received - recorded).as_seconds_f64() * 1e3);
            }
            if counts.iter().any(|&n| n != counts[0]) {
                bail!("watchers saw different event counts: {counts:?}");
            }
            let state = client.get(&job.id).await?.state;
            if state != Some(JobState::Succeeded) {
                bail!("the watched job ended {state:?}");
            }
            Ok::<_, anyhow::Error>((lags.iter().copied().fold(0.0, f64::max), counts[0]))
        }
    };
    let (one_lag, events_one) = watch_lag(1).await?;
    let (hundred_lag, events_hundred) = watch_lag(100).await?;

    println!(
        "service benchmark: {steps} steps of a 1° store (360 × 181), 2 timely workers per job, a 2 × 2 wall of 960 × 540 tiles"
    );
    println!("| what | figure | baseline (same run) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| submission → first frame at a subscriber | {:.0} ms | time per step {:.0} ms | {:.1} |",
        to_first_frame * 1e3,
        per_step * 1e3,
        to_first_frame / per_step
    );
    println!(
        "| submission → first frame presented on the wall | {:.0} ms | time per step {:.0} ms | {:.1} |",
        to_first_present * 1e3,
        per_step * 1e3,
        to_first_present / per_step
    );
    println!(
        "| step complete → presented (4 nodes, {} frames), median / p95 | {lat_med:.0} / {lat_p95:.0} ms | node drawing per frame {render_med:.0} ms | {:.1} |",
        by_frame.len(),
        lat_med / render_med
    );
    println!(
        "| present spread across the 4 nodes, median / p95 / max | {spread_med:.2} / {spread_p95:.2} / {spread_max:.2} ms | | |"
    );
    println!(
        "| replay at 1000 steps/s asked: frames/s at a subscriber | {:.0} | 1000 asked | {:.2} |",
        received as f64 / secs,
        received as f64 / secs / 1000.0
    );
    println!(
        "| replay: frames/s presented by the wall in lock-step | {wall_rate:.1} | 1000 asked | {:.3} |",
        wall_rate / 1000.0
    );
    println!(
        "| 100 Watch streams: last event to the slowest watcher | {hundred_lag:.1} ms ({events_hundred} events each) | 1 watcher {one_lag:.1} ms ({events_one} events) | {:.1} |",
        hundred_lag / one_lag.max(0.001)
    );
    println!(
        "(replay state after the window: position {}, {} late; first frame was number {})",
        replay_status.position, replay_status.late, first.number
    );
    drop(serve);
    Ok(())
}
