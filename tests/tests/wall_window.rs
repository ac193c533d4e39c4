//! `isotach wall` with windows, as real processes: `isotach serve`, a one-step replay, a headless
//! node drawing the reference, and windowed nodes on private Xvfb servers (lavapipe presenting
//! through Vulkan's X11 surface). The screen, read back with `xwd`, shows the headless node's
//! pixels, in a window of the tile's size or fullscreen; Ctrl-C, or closing its window, stops a
//! windowed node cleanly; and without a display a windowed node refuses to start before it
//! connects.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use isotach_tests::wall::{
    PATIENCE, Proc, Server, node_command, presented, replay_spec, spawn_node, start_node,
    start_server, wait_exit, wait_for,
};
use isotach_tests::x11::Xvfb;
use isotach_tests::{generate, isotach_bin};
use isotach_viz::{PixelRect, RgbaImage};

const TILE: (u32, u32) = (320, 180);
/// The one step replayed: the generated season's step 4 (6-hourly from 2017-01-01).
const INSTANT: &str = "2017-01-02T00:00:00Z";
const STEP: u64 = 4;
/// The most a window pixel may differ from the headless render, per channel. The window samples
/// the rendered tile at texel centres, one to one, so it should be equal; 2 leaves room for an
/// adapter that rounds its filtering differently, and none for a tile that is shifted, scaled,
/// swizzled (BGRA read as RGBA) or sRGB-encoded (those change values by tens to hundreds).
const TOLERANCE: u8 = 2;

fn store_root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wall_window");
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("remove the previous run's stores");
        }
        std::fs::create_dir_all(&root).expect("stores folder");
        let root = root.canonicalize().expect("canonical");
        generate(&root, "season.zarr", 4, 8);
        root
    })
}

/// A wall of one tile, driven by node "solo".
fn single_tile_wall(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nrows = 1\ncolumns = 1\ntile_width_px = {}\ntile_height_px = {}\n\
             [[node]]\nname = \"solo\"\ntiles = [[0, 0]]\n",
            TILE.0, TILE.1
        ),
    )
    .expect("wall");
    path
}

/// Starts a windowed node of `wall` on `xvfb`, its present log and `node.log` in `out`.
fn start_window_node(
    server: &Server,
    dir: &Path,
    wall: &Path,
    xvfb: &Xvfb,
    out: &Path,
    extra: &[&str],
) -> Proc {
    std::fs::create_dir_all(out).expect("node folder");
    let mut command = node_command(server, dir, wall, "solo", "shown");
    command
        .env("DISPLAY", &xvfb.display)
        .env_remove("WAYLAND_DISPLAY")
        .arg("--log")
        .arg(out)
        .args(extra);
    spawn_node(
        command,
        &out.join("node.log"),
        &format!("the node of {}", wall.display()),
    )
}

/// Pixels of `actual` whose channels differ from `expected` by more than [`TOLERANCE`], and the
/// largest difference.
fn mismatch(actual: &RgbaImage, expected: &RgbaImage) -> (usize, u8) {
    assert_eq!(
        (actual.width, actual.height),
        (expected.width, expected.height)
    );
    let mut off = 0;
    let mut worst = 0;
    for (a, e) in actual
        .pixels
        .chunks_exact(4)
        .zip(expected.pixels.chunks_exact(4))
    {
        let diff = (0..3).map(|c| a[c].abs_diff(e[c])).max().unwrap_or(0);
        worst = worst.max(diff);
        off += usize::from(diff > TOLERANCE);
    }
    (off, worst)
}

/// Waits until `region` of `xvfb`'s screen shows `expected` (the X server gets the image a moment
/// after the node presents), and fails with the closest screen seen otherwise.
fn assert_screen_shows(
    xvfb: &Xvfb,
    region: PixelRect,
    expected: &RgbaImage,
    what: &str,
) -> RgbaImage {
    let start = Instant::now();
    loop {
        let screen = xvfb.screenshot();
        let shown = screen.crop(region).expect("crop the window");
        let (off, worst) = mismatch(&shown, expected);
        if off == 0 {
            return screen;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let path =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("wall_window_{what}.png"));
            let _ = screen.write_png(&path);
            panic!(
                "{what}: {off} of {} pixels differ from the headless render by more than \
                 {TOLERANCE} (worst {worst}); the screen is in {}",
                region.width * region.height,
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `xvfb`'s screen, twice the tile's size, shows `expected` scaled up 2×. Scaling
/// filters, so only where the tile is flat (a pixel and its eight neighbours alike) is the
/// screen's colour known exactly: there, the 2 × 2 screen pixels over it must be that colour
/// within [`TOLERANCE`]. Flat places cover most of a frame (background, map interior), so a tile
/// not covering the whole screen, or placed or scaled otherwise, fails.
fn assert_fullscreen_shows(xvfb: &Xvfb, expected: &RgbaImage) {
    let (w, h) = (expected.width, expected.height);
    let flat: Vec<(u32, u32)> = (1..h - 1)
        .flat_map(|y| (1..w - 1).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let centre = expected.pixel(x, y);
            (y - 1..=y + 1).all(|v| (x - 1..=x + 1).all(|u| expected.pixel(u, v) == centre))
        })
        .collect();
    assert!(
        flat.len() > (w * h / 2) as usize,
        "only {} flat pixels in the reference",
        flat.len()
    );
    let start = Instant::now();
    loop {
        let screen = xvfb.screenshot();
        assert_eq!((screen.width, screen.height), (2 * w, 2 * h));
        let off = flat
            .iter()
            .filter(|&&(x, y)| {
                let e = expected.pixel(x, y);
                [(0, 0), (1, 0), (0, 1), (1, 1)].iter().any(|&(dx, dy)| {
                    let s = screen.pixel(2 * x + dx, 2 * y + dy);
                    (0..3).any(|c| s[c].abs_diff(e[c]) > TOLERANCE)
                })
            })
            .count();
        if off == 0 {
            return;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wall_window_fullscreen.png");
            let _ = screen.write_png(&path);
            panic!(
                "fullscreen: {off} of {} flat tile pixels are not shown 2× on the screen; the \
                 screen is in {}",
                flat.len(),
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for a node told to stop to exit by itself, successfully, and returns what it printed.
fn stopped(node: &mut Proc, what: &str, out: &Path) -> String {
    wait_exit(node, what, out);
    let mut stdout = String::new();
    node.0
        .stdout
        .take()
        .expect("node stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    stdout
}

#[test]
fn windowed_nodes_show_the_headless_pixels_and_stop_on_ctrl_c_or_a_closed_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let server = start_server(dir, store_root());
    // A screen larger than the tile: the window must be exactly the tile's size at (0, 0).
    let desktop = Xvfb::start(640, 400);
    // A monitor twice the tile's size: fullscreen covers it with the tile scaled up.
    let monitor = Xvfb::start(2 * TILE.0, 2 * TILE.1);

    let window_out = dir.join("window");
    let mut window_node = start_window_node(
        &server,
        dir,
        &single_tile_wall(dir, "window-wall"),
        &desktop,
        &window_out,
        &[],
    );
    let fullscreen_out = dir.join("fullscreen");
    let mut fullscreen_node = start_window_node(
        &server,
        dir,
        &single_tile_wall(dir, "fullscreen-wall"),
        &monitor,
        &fullscreen_out,
        &["--fullscreen"],
    );
    let reference_out = dir.join("reference");
    let mut reference = start_node(
        &server,
        dir,
        &single_tile_wall(dir, "reference-wall"),
        "solo",
        "shown",
        &reference_out,
        Some(1),
    );

    // One step: once played, the channel keeps it as its current frame.
    let spec = replay_spec(
        dir,
        &store_root().join("season.zarr"),
        "shown",
        Some([INSTANT, INSTANT]),
    );
    server.ok(dir, &["replay", "start", spec.to_str().expect("utf-8")]);
    wait_exit(&mut reference, "the reference node", &reference_out);
    let expected = RgbaImage::read_png(&reference_out.join(format!("r0c0_s{STEP:05}.png")))
        .expect("the reference tile");
    assert_eq!((expected.width, expected.height), TILE);
    for out in [&window_out, &fullscreen_out] {
        wait_for(&format!("a present in {}", out.display()), || {
            !presented(out).is_empty()
        });
        let log = presented(out);
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!((log[0].number, log[0].step), (0, STEP));
        assert!(log[0].missing.is_empty(), "{log:?}");
    }

    let tile = PixelRect {
        x: 0,
        y: 0,
        width: TILE.0,
        height: TILE.1,
    };
    let screen = assert_screen_shows(&desktop, tile, &expected, "window");
    // Around the window the root stays black (Xvfb -br): the window is the tile's size.
    for (x, y) in [(TILE.0 + 2, 10), (10, TILE.1 + 2), (TILE.0 + 2, TILE.1 + 2)] {
        assert_eq!(
            screen.pixel(x, y),
            [0, 0, 0, 255],
            "screen pixel ({x}, {y})"
        );
    }
    assert_fullscreen_shows(&monitor, &expected);

    // Ctrl-C stops one node, closing its window the other; both report and exit 0.
    let status = Command::new("kill")
        .args(["-INT", &window_node.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT the windowed node");
    let said = stopped(&mut window_node, "the windowed node", &window_out);
    assert!(said.contains("node solo presented 1 frames"), "{said:?}");
    monitor.close_windows("fullscreen-wall");
    let said = stopped(&mut fullscreen_node, "the fullscreen node", &fullscreen_out);
    assert!(said.contains("node solo presented 1 frames"), "{said:?}");
    let log = std::fs::read_to_string(fullscreen_out.join("node.log")).expect("node log");
    assert!(
        log.contains("a window was closed; stopping the node"),
        "{log}"
    );
    drop(server.proc);
}

#[test]
fn without_a_display_a_windowed_node_refuses_to_start_and_names_the_way_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let wall = single_tile_wall(dir, "window-wall");
    // Port 9 (discard) on loopback has no server: a node that tried to connect would retry
    // forever, so an exit shows it stopped before connecting.
    let run = |extra: &[&str]| {
        Command::new(isotach_bin())
            .current_dir(dir)
            .args(["wall", "--wall"])
            .arg(&wall)
            .args(["--node", "solo", "--server", "http://127.0.0.1:9"])
            .args(extra)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .expect("run isotach wall")
    };
    let started = Instant::now();
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("isotach wall --node solo: windows need a display, and DISPLAY is not set")
            && stderr.contains("pass --headless DIR"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < PATIENCE,
        "it took {:?}",
        started.elapsed()
    );
    assert!(
        !dir.join("presented.csv").exists(),
        "it wrote a present log"
    );

    // Headless and fullscreen at once is refused, naming both.
    let out = run(&["--fullscreen", "--headless", "tiles"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("'--fullscreen' cannot be used with '--headless <HEADLESS>'"),
        "{stderr}"
    );
}
