//! The case studies of `examples/case_studies/`, end to end through real processes.
//!
//! For each one: its data is prepared as its README says (the default generated season; NCL's
//! analyses of the January 1996 blizzard, fetched from Debian's `libncarg-data` and converted by
//! `scripts/case-studies/fetch-blizzard-1996.sh`), `frames.toml` is run with `isotach run`, and
//! `replay.toml` is played twice, each time on a fresh `isotach serve` with four headless
//! `isotach wall` nodes on the shipped wall's 2 × 2 layout (smaller screens, so that the test draws
//! quickly). The walls present every step of the window in lock-step; the two replays write
//! byte-identical tiles; the tiles stitched together are, pixel for pixel, the frame `isotach run`
//! draws on the wall's canvas with the bezels cut out; and what each README tells the viewer to
//! notice is checked in the data and on the frames.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use isotach_connectors::{Source, StoreOptions, TileRequest, open_source};
use isotach_core::{PipelineSpec, SinkSpec};
use isotach_tests::{isotach_bin, isotach_ok, workspace_root};
use isotach_viz::{Canvas, PRESENT_LOG, Presented, RgbaImage, WallSpec, layout};

const TOKEN: &str = "case-study-token-0123456789";
const PATIENCE: Duration = Duration::from_secs(120);
/// Playback rate of the test replays, steps per second.
const RATE: &str = "10";
/// Screens of the test wall (the shipped walls have 1920 × 1080).
const TILE: (u32, u32) = (320, 180);
const BEZEL: (u32, u32) = (12, 8);

/// One case study: its folder under `examples/case_studies/` and what its specs promise.
struct CaseStudy {
    folder: &'static str,
    channel: &'static str,
    /// The first layer's variable: the frames are `<variable>_<step>.png`.
    variable: &'static str,
    /// Dataset steps of the time window.
    steps: Range<u64>,
}

fn case_dir(case: &CaseStudy) -> PathBuf {
    workspace_root()
        .join("examples/case_studies")
        .join(case.folder)
        .canonicalize()
        .expect("case-study folder")
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
    _proc: Proc,
    url: String,
}

/// `isotach serve` on a free port, its only data root `data_root` (so relative paths of the specs
/// resolve there), started in `data_root` as the READMEs start it in the repository root with
/// examples/case_studies/service.toml. (Starting a replay validates the spec against its store
/// before the job's paths are resolved against the data roots, so a relative `source.uri` must
/// also resolve from the server's working folder.)
fn start_server(dir: &Path, data_root: &Path) -> Server {
    std::fs::create_dir_all(dir).expect("server folder");
    let config = dir.join("service.toml");
    std::fs::write(
        &config,
        format!(
            "data_roots = [{:?}]\nworkers_per_job = 1\n[[token]]\nname = \"case-studies\"\nsecret = \"{TOKEN}\"\n",
            data_root.display().to_string(),
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join("serve.log")).expect("log");
    let mut child = Command::new(isotach_bin())
        .current_dir(data_root)
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
        _proc: Proc(child),
        url: format!("http://{address}"),
    }
}

fn client(server: &Server, dir: &Path) -> Command {
    let mut command = Command::new(isotach_bin());
    command
        .current_dir(dir)
        .env("ISOTACH_SERVER", &server.url)
        .env("ISOTACH_TOKEN", TOKEN);
    command
}

fn client_ok(server: &Server, dir: &Path, args: &[&str]) -> String {
    let out = client(server, dir)
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

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(proc: &mut Proc, what: &str) {
    let start = Instant::now();
    loop {
        if let Some(status) = proc.0.try_wait().expect("wait") {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        assert!(start.elapsed() < PATIENCE, "{what} did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A headless wall node writing into `out` until it has presented `frames` frames; returns once it
/// has subscribed.
fn start_node(
    server: &Server,
    dir: &Path,
    wall: &Path,
    node: &str,
    channel: &str,
    out: &Path,
    frames: usize,
) -> Proc {
    std::fs::create_dir_all(out).expect("node folder");
    let log_path = out.join("node.log");
    let log = std::fs::File::create(&log_path).expect("node log");
    let proc = Proc(
        client(server, dir)
            .args(["wall", "--wall"])
            .arg(wall)
            .args(["--node", node, "--channel", channel, "--headless"])
            .arg(out)
            .args(["--frames", &frames.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start isotach wall"),
    );
    wait_for(&format!("node {node} to subscribe"), || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("subscribed")
    });
    proc
}

/// The shipped wall's rows, columns and nodes on screens of [`TILE`] pixels.
fn test_wall(shipped: &WallSpec, path: &Path) -> WallSpec {
    let mut text = format!(
        "name = \"case-study-test\"\nrows = {}\ncolumns = {}\ntile_width_px = {}\n\
         tile_height_px = {}\nbezel_x_px = {}\nbezel_y_px = {}\npresent_timeout_ms = 10000\n",
        shipped.rows, shipped.columns, TILE.0, TILE.1, BEZEL.0, BEZEL.1
    );
    for node in &shipped.nodes {
        let tiles: Vec<String> = node
            .tiles
            .iter()
            .map(|[r, c]| format!("[{r}, {c}]"))
            .collect();
        text += &format!(
            "[[node]]\nname = \"{}\"\ntiles = [{}]\n",
            node.name,
            tiles.join(", ")
        );
    }
    std::fs::write(path, &text).expect("write the test wall");
    WallSpec::from_toml_str(&text).expect("test wall")
}

/// The case study's two specs: the replay's (frames on a channel) and the run's (frames into a
/// folder) are the same pipeline; each validates against the data in `data_root`, and its window
/// is `case.steps`. Returns the run spec's frames folder.
fn check_specs(case: &CaseStudy, data_root: &Path) -> String {
    let dir = case_dir(case);
    let read = |name: &str| {
        let text = std::fs::read_to_string(dir.join(name)).expect("spec");
        PipelineSpec::from_toml_str(&text).unwrap_or_else(|e| panic!("{}: {e}", name))
    };
    let (replay, run) = (read("replay.toml"), read("frames.toml"));
    assert_eq!(replay.name, run.name);
    assert_eq!(replay.source, run.source, "replay.toml and frames.toml");
    assert_eq!(replay.steps, run.steps, "replay.toml and frames.toml");
    let frames = |spec: &PipelineSpec| -> Vec<isotach_core::FramesSink> {
        spec.sinks
            .iter()
            .filter_map(|s| match s {
                SinkSpec::Frames(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    };
    let (replay_frames, run_frames) = (frames(&replay), frames(&run));
    assert_eq!(replay_frames.len(), 1, "one frames sink in replay.toml");
    assert_eq!(run_frames.len(), 1, "one frames sink in frames.toml");
    assert_eq!(replay_frames[0].channel.as_deref(), Some(case.channel));
    assert_eq!(replay_frames[0].path, None);
    assert_eq!(run_frames[0].channel, None);
    assert_eq!(replay_frames[0].layers, run_frames[0].layers);
    assert_eq!(run_frames[0].layers[0].variable, case.variable);
    for spec in [&replay, &run] {
        let uri = data_root.join(&spec.source.uri);
        let source = open_source(
            uri.to_str().expect("utf-8"),
            &StoreOptions::default(),
            spec.source.region,
        )
        .expect("open the case study's store");
        let pipeline = spec
            .validate(source.describe())
            .unwrap_or_else(|e| panic!("{}: {e}", case.folder));
        assert_eq!(
            pipeline.steps.start as u64..pipeline.steps.end as u64,
            case.steps
        );
    }
    run_frames[0].path.clone().expect("frames.toml has a path")
}

/// One variable at one step of `source`, row-major over its grid.
fn read_field(source: &dyn Source, variable: &str, step: u64) -> Vec<f32> {
    let nlon = source.describe().grid.lon.len();
    let mut values = vec![f32::NAN; source.describe().grid.len()];
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
            .expect("read a tile");
        let v = tile.values.as_slice();
        for r in 0..window.rows {
            let start = (window.row0 + r) * nlon + window.col0;
            values[start..start + window.cols]
                .copy_from_slice(&v[r * window.cols..][..window.cols]);
        }
    }
    values
}

fn magnitude(source: &dyn Source, u: &str, v: &str, step: u64) -> Vec<f32> {
    let (u, v) = (read_field(source, u, step), read_field(source, v, step));
    u.iter().zip(&v).map(|(a, b)| a.hypot(*b)).collect()
}

/// The largest value of `field` at cells where `keep(lat, lon)`, with that cell's (lat, lon).
fn peak(source: &dyn Source, field: &[f32], keep: impl Fn(f64, f64) -> bool) -> (f32, f64, f64) {
    let grid = &source.describe().grid;
    let mut best = (f32::NEG_INFINITY, f64::NAN, f64::NAN);
    for (i, lat) in grid.lat.iter().enumerate() {
        for (j, lon) in grid.lon.iter().enumerate() {
            let v = field[i * grid.lon.len() + j];
            if keep(*lat, *lon) && v > best.0 {
                best = (v, *lat, *lon);
            }
        }
    }
    best
}

/// Pixels of object outline ink (the object layer's near-black) within `radius` pixels of the map
/// pixel of (`lon`, `lat`) on a frame of the default projection.
fn ink_near(image: &RgbaImage, lon: f64, lat: f64, radius: u32) -> usize {
    let l = layout(Canvas::new(image.width, image.height));
    let (x, y) = l.lonlat_to_pixel(lon, lat).expect("on the map");
    let mut n = 0;
    for py in y.saturating_sub(radius)..=(y + radius).min(image.height - 1) {
        for px in x.saturating_sub(radius)..=(x + radius).min(image.width - 1) {
            let [r, g, b, _] = image.pixel(px, py);
            if r <= 40 && g <= 40 && b <= 40 {
                n += 1;
            }
        }
    }
    n
}

/// What playing a case study produced.
struct Played {
    /// `isotach run frames.toml` on the test wall's canvas, by step.
    run: BTreeMap<u64, RgbaImage>,
}

/// Runs `frames.toml` with `isotach run`, then plays `replay.toml` twice on fresh servers with a
/// 2 × 2 wall of four node processes, and checks lock-step presentation, byte-identical replays
/// and walls equal to the run's frames.
fn play(case: &CaseStudy, data_root: &Path, work: &Path) -> Played {
    let dir = case_dir(case);
    std::fs::create_dir_all(work).expect("work folder");
    let frames_path = check_specs(case, data_root);
    let shipped = WallSpec::load(&dir.join("wall.toml")).expect("the case study's wall file");
    assert_eq!((shipped.rows, shipped.columns), (2, 2));
    assert_eq!(shipped.nodes.len(), 4, "one node a screen");
    let wall_path = work.join("wall.toml");
    let wall = test_wall(&shipped, &wall_path);
    let canvas = wall.canvas();
    let steps: Vec<u64> = case.steps.clone().collect();

    // The frames the wall must show: frames.toml drawn on the wall's canvas by `isotach run`.
    let run_spec = work.join("frames.toml");
    let text = std::fs::read_to_string(dir.join("frames.toml")).expect("frames.toml");
    assert!(text.contains("width_px = 1280\n") && text.contains("height_px = 720\n"));
    let text = text
        .replace(
            "width_px = 1280\n",
            &format!("width_px = {}\n", canvas.width_px),
        )
        .replace(
            "height_px = 720\n",
            &format!("height_px = {}\n", canvas.height_px),
        );
    std::fs::write(&run_spec, text).expect("write the run spec");
    let started = Instant::now();
    isotach_ok(data_root, &["run", run_spec.to_str().expect("utf-8")]);
    let frames_dir = data_root.join(&frames_path);
    let run: BTreeMap<u64, RgbaImage> = steps
        .iter()
        .map(|&s| {
            let png = frames_dir.join(format!("{}_{s:05}.png", case.variable));
            (
                s,
                RgbaImage::read_png(&png).unwrap_or_else(|e| panic!("{e}")),
            )
        })
        .collect();
    let pngs = std::fs::read_dir(&frames_dir)
        .expect("frames folder")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".png"))
        })
        .count();
    assert_eq!(pngs, steps.len(), "one PNG a step of the window");
    println!(
        "{}: isotach run, {} frames in {:.1} s",
        case.folder,
        steps.len(),
        started.elapsed().as_secs_f64()
    );

    let mut replays: Vec<BTreeMap<String, PathBuf>> = Vec::new();
    for attempt in 0..2 {
        let started = Instant::now();
        let here = work.join(format!("replay-{attempt}"));
        let server = start_server(&here, data_root);
        let mut nodes: Vec<(String, PathBuf, Proc)> = wall
            .nodes
            .iter()
            .map(|n| {
                let out = here.join(&n.name);
                let proc = start_node(
                    &server,
                    &here,
                    &wall_path,
                    &n.name,
                    case.channel,
                    &out,
                    steps.len(),
                );
                (n.name.clone(), out, proc)
            })
            .collect();
        let replay_spec = dir.join("replay.toml");
        let status = client_ok(
            &server,
            &here,
            &[
                "replay",
                "start",
                replay_spec.to_str().expect("utf-8"),
                "--rate",
                RATE,
            ],
        );
        assert!(
            status.contains(&format!(
                "on channel {}: playing, frame 0/{}",
                case.channel,
                steps.len()
            )),
            "{status}"
        );
        for (name, _, proc) in &mut nodes {
            wait_exit(proc, &format!("node {name}"));
        }
        let mut tiles = BTreeMap::new();
        for (name, out, _) in &nodes {
            let log = Presented::read_log(&out.join(PRESENT_LOG)).unwrap_or_else(|e| panic!("{e}"));
            let shown: Vec<u64> = log.iter().map(|p| p.step).collect();
            assert_eq!(shown, steps, "node {name} presents every step in order");
            let numbers: Vec<u64> = log.iter().map(|p| p.number).collect();
            assert_eq!(numbers, (0..steps.len() as u64).collect::<Vec<_>>());
            assert!(
                log.iter().all(|p| p.missing.is_empty()),
                "node {name}: a frame was presented without every node: {log:?}"
            );
            let node = wall.node(name).expect("node");
            for &[row, col] in &node.tiles {
                for &s in &steps {
                    let file = format!("r{row}c{col}_s{s:05}.png");
                    tiles.insert(file.clone(), out.join(&file));
                }
            }
        }
        println!(
            "{}: replay {attempt}, {} frames on 4 wall nodes in {:.1} s",
            case.folder,
            steps.len(),
            started.elapsed().as_secs_f64()
        );
        replays.push(tiles);
    }

    // The same replay twice: byte-identical tiles.
    for (file, first) in &replays[0] {
        let a = std::fs::read(first).unwrap_or_else(|e| panic!("{}: {e}", first.display()));
        let b = std::fs::read(&replays[1][file]).expect("second replay's tile");
        assert!(a == b, "{file} differs between two replays");
    }
    // The wall shows what `isotach run` draws: the tiles side by side are the run's frame with
    // the bezel strips cut out, pixel for pixel.
    for &s in &steps {
        let tiles: Vec<RgbaImage> = (0..wall.rows)
            .flat_map(|r| (0..wall.columns).map(move |c| (r, c)))
            .map(|(r, c)| {
                let path = &replays[0][&format!("r{r}c{c}_s{s:05}.png")];
                RgbaImage::read_png(path).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let stitched = wall.stitch(&tiles).expect("stitch");
        let expected = wall.without_bezels(&run[&s]).expect("cut the bezels");
        let differ = stitched
            .pixels
            .chunks(4)
            .zip(expected.pixels.chunks(4))
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differ, 0,
            "step {s}: the wall's tiles and `isotach run`'s frame differ in {differ} pixels"
        );
    }
    Played { run }
}

/// A scratch folder for a case study's data and outputs: in memory (/dev/shm) where there is one,
/// since the default season is 224 MB of small chunk files that a loaded disk takes many seconds
/// to write and to delete.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let in_memory = shm.is_dir().then(|| {
        tempfile::Builder::new()
            .prefix("isotach-case-study-")
            .tempdir_in(shm)
    });
    match in_memory {
        Some(Ok(dir)) => dir,
        _ => tempfile::tempdir().expect("tempdir"),
    }
}

fn landfall_step(times: &[DateTime<Utc>], at: DateTime<Utc>) -> Option<u64> {
    let first = *times.first()?;
    let hours = (at - first).num_minutes() as f64 / 60.0;
    let step = (hours / 6.0).round();
    (0.0..times.len() as f64)
        .contains(&step)
        .then_some(step as u64)
}

#[test]
fn the_strongest_generated_landfall_replays_on_a_wall() {
    let case = CaseStudy {
        folder: "ar-landfall-iberia",
        channel: "ar-landfall",
        variable: "ivt",
        steps: 0..20,
    };
    let started = Instant::now();
    let root = scratch();
    let data_root = root.path().canonicalize().expect("canonical");
    std::fs::create_dir_all(data_root.join("data")).expect("data folder");
    // The README's store: `isotach generate` with every default (seed 42, 1°, 40 steps of 6 h).
    isotach_ok(&data_root, &["generate", "--out", "data/ar-season.zarr"]);
    let store = data_root.join("data/ar-season.zarr");
    let source = open_source(
        store.to_str().expect("utf-8"),
        &StoreOptions::default(),
        None,
    )
    .expect("open the season");
    let info = source.describe();
    assert_eq!(info.time.len(), 40);

    // The strongest landfall, as the landfalls example measures it: each catalogued river's peak
    // IVT within 8° of latitude and 10° of longitude west of its landfall point, at the step
    // nearest its landfall.
    let events: Vec<serde_json::Value> = info.attributes["isotach_ar_events"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .expect("the river catalogue, JSON text");
    let mut landfalls: Vec<(f32, String, String, f64, u64)> = Vec::new();
    for event in &events {
        let at: DateTime<Utc> = event["landfall"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .expect("landfall time")
            .to_utc();
        let Some(step) = landfall_step(&info.time.times, at) else {
            continue;
        };
        let (lat, lon) = (
            event["landfall_lat"].as_f64().expect("lat"),
            event["landfall_lon"].as_f64().expect("lon"),
        );
        let ivt = magnitude(source.as_ref(), "ivt_u", "ivt_v", step);
        let (peak, _, _) = peak(source.as_ref(), &ivt, |la, lo| {
            (la - lat).abs() <= 8.0 && (0.0..=10.0).contains(&(lon - lo))
        });
        let basin = event["basin"].as_str().expect("basin").to_owned();
        landfalls.push((peak, basin, at.to_rfc3339(), lat, step));
    }
    landfalls.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("landfalls of the season, strongest first:");
    for (peak, basin, at, lat, step) in &landfalls {
        println!("  {peak:7.1} kg m-1 s-1  {basin:<15} {at}  lat {lat:5.1}  step {step}");
    }
    assert_eq!(landfalls.len(), 12, "landfalls within the 40 steps");
    let (peak_ivt, basin, at, lat, step) = landfalls[0].clone();
    assert_eq!(
        (basin.as_str(), at.as_str(), step),
        ("north-atlantic", "2017-01-03T16:38:00+00:00", 11),
        "the README's strongest landfall"
    );
    assert!((lat - 40.09).abs() < 0.01 && (peak_ivt - 1097.1).abs() < 1.0);
    // Its twin (landfall 8 h earlier, 2.3° farther north) comes second; the next is far weaker.
    assert_eq!(
        (landfalls[1].1.as_str(), landfalls[1].2.as_str()),
        ("north-atlantic", "2017-01-03T08:20:00+00:00")
    );
    assert!(landfalls[2].0 < 800.0, "{:?}", landfalls[2]);
    // The spec frames it: the window runs from 11 steps before to 8 after, the region holds the
    // landfall point and the box the peak is measured in.
    let spec = PipelineSpec::from_toml_str(
        &std::fs::read_to_string(case_dir(&case).join("replay.toml")).expect("spec"),
    )
    .expect("spec");
    let region = spec.source.region.expect("a region");
    assert!(region.lat[0] <= lat - 8.0 && lat + 8.0 <= region.lat[1]);
    assert!(region.lon[0] <= 351.0 - 360.0 - 10.0 && 351.0 - 360.0 < region.lon[1]);

    // What the README tells the viewer to notice, in the data of the window and region.
    let boxed = open_source(
        store.to_str().expect("utf-8"),
        &StoreOptions::default(),
        Some(region),
    )
    .expect("open the region");
    // The box runs eastward from its west edge: longitudes -70 .. -1 here.
    let coast = -9.0;
    let mut strongest = (0.0f32, 0u64, 0.0, 0.0);
    let mut ashore = Vec::new();
    for s in case.steps.clone() {
        let ivt = magnitude(boxed.as_ref(), "ivt_u", "ivt_v", s);
        let (v, la, lo) = peak(boxed.as_ref(), &ivt, |_, _| true);
        if v > strongest.0 {
            strongest = (v, s, la, lo);
        }
        // IVT >= 250 at or east of 10°W (the coast is at 9°W).
        let (v, _, _) = peak(boxed.as_ref(), &ivt, |_, lo| lo >= coast - 1.0);
        if v >= 250.0 {
            ashore.push(s);
        }
    }
    assert_eq!(strongest.1, 5, "IVT peaks at step 5: {strongest:?}");
    assert!((strongest.0 - 1300.2).abs() < 1.0, "{strongest:?}");
    assert_eq!((strongest.2, strongest.3), (33.0, -37.0), "near 33°N 37°W");
    assert_eq!(ashore, (10..=15).collect::<Vec<u64>>(), "the river ashore");

    let played = play(&case, &data_root, &data_root.join("work"));
    // On the frames: the outline is far from the coast at step 3 and at the coast at step 11.
    let near_coast = |s: u64| ink_near(&played.run[&s], -9.0, 40.0, 4);
    assert_eq!(near_coast(3), 0, "no outline at the coast at step 3");
    assert!(
        near_coast(11) > 0,
        "the river's outline at the coast at step 11"
    );
    println!(
        "ar-landfall-iberia: case study checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_january_1996_blizzard_replays_on_a_wall() {
    let case = CaseStudy {
        folder: "blizzard-1996",
        channel: "blizzard-1996",
        variable: "slp_hpa",
        steps: 4..21,
    };
    let started = Instant::now();
    let root = scratch();
    let data_root = root.path().canonicalize().expect("canonical");
    let store = data_root.join("data/blizzard-1996.zarr");
    let fetch = workspace_root().join("scripts/case-studies/fetch-blizzard-1996.sh");
    let out = Command::new("bash")
        .arg(&fetch)
        .arg(&store)
        .output()
        .expect("run the fetch script");
    assert!(
        out.status.success(),
        "the blizzard case study needs NCL's analyses of the storm, from Debian's package \
         libncarg-data, converted to Zarr with the test environment .venv: {} failed ({}). \
         Install the package (apt-get install libncarg-data) or make `apt-get download \
         libncarg-data` work (apt-get update), and build .venv with scripts/test.sh.\n{}{}",
        fetch.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "blizzard-1996: data ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The converted store: 64 six-hourly analyses from 1996-01-05 00 UTC, 20–60°N, 140–52.5°W.
    let source = open_source(
        store.to_str().expect("utf-8"),
        &StoreOptions::default(),
        None,
    )
    .expect("open the blizzard store");
    let info = source.describe();
    assert_eq!(info.time.len(), 64);
    assert_eq!(info.time.times[0].to_rfc3339(), "1996-01-05T00:00:00+00:00");
    assert_eq!(
        info.time.times[63].to_rfc3339(),
        "1996-01-20T18:00:00+00:00"
    );
    assert_eq!((info.grid.lat.len(), info.grid.lon.len()), (33, 36));
    assert_eq!(
        (info.grid.lon[0], info.grid.lon[35], info.grid.lat[0]),
        (-140.0, -52.5, 20.0)
    );
    let units: BTreeMap<&str, &str> = info
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v.units.as_str()))
        .collect();
    assert_eq!(units["slp"], "Pa");
    assert_eq!(units["u500"], "m s-1");

    // What the README tells the viewer to notice: the coastal low (the deepest pressure within
    // 30–47.5°N, 85–57.5°W) drops below 1000 hPa off North Carolina at step 12 and deepens to
    // 977 hPa off Nova Scotia at step 18, moving north-east every step; the Arctic high peaks at
    // 1043.5 hPa over Minnesota at step 7.
    let mut track = Vec::new();
    let mut high = (0.0f32, 0u64, 0.0, 0.0);
    for s in case.steps.clone() {
        let slp = read_field(source.as_ref(), "slp", s);
        let hpa: Vec<f32> = slp.iter().map(|p| -p / 100.0).collect();
        let (v, la, lo) = peak(source.as_ref(), &hpa, |la, lo| {
            (30.0..=47.5).contains(&la) && (-85.0..=-57.5).contains(&lo)
        });
        track.push((s, -v, la, lo));
        let (v, la, lo) = peak(source.as_ref(), &slp, |_, _| true);
        if v / 100.0 > high.0 {
            high = (v / 100.0, s, la, lo);
        }
    }
    let first_below = track
        .iter()
        .find(|(s, p, _, _)| *s >= 10 && *p < 1000.0)
        .expect("the low");
    assert_eq!(
        (first_below.0, first_below.2, first_below.3),
        (12, 35.0, -77.5),
        "{track:?}"
    );
    let deepest = track
        .iter()
        .filter(|(s, ..)| *s >= 10)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("deepest");
    assert_eq!(
        (deepest.0, deepest.2, deepest.3),
        (18, 42.5, -60.0),
        "{track:?}"
    );
    assert!((deepest.1 - 977.3).abs() < 0.1, "{deepest:?}");
    for w in track.windows(2).filter(|w| (12..18).contains(&w[0].0)) {
        assert!(w[1].2 >= w[0].2 && w[1].3 > w[0].3, "north-east: {w:?}");
    }
    assert_eq!((high.1, high.2, high.3), (7, 48.75, -95.0), "{high:?}");
    assert!((high.0 - 1043.5).abs() < 0.1, "{high:?}");

    let played = play(&case, &data_root, &data_root.join("work"));
    // On the frames: no outline off Cape Hatteras at step 11, the low's outline there at step 12.
    let hatteras = |s: u64| ink_near(&played.run[&s], -78.75, 35.0, 4);
    assert_eq!(hatteras(11), 0, "no outline off North Carolina at step 11");
    assert!(
        hatteras(12) > 0,
        "the low's outline off North Carolina at step 12"
    );
    println!(
        "blizzard-1996: case study checked in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
