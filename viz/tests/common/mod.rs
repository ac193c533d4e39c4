//! Helpers shared by the GPU test files: the renderer, analytic fields, colour and golden checks.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use isotach_core::{Field, LatLonGrid};
use isotach_viz::{Renderer, RgbaImage};

/// Per-channel tolerance for colours sampled from the map: the GPU may round the table index of a
/// value on a boundary the other way (neighbouring entries differ by a few units).
pub const COLOUR_TOL: u8 = 3;
pub const MAGENTA: [u8; 4] = [255, 0, 255, 255];
pub const WHITE: [u8; 4] = [255, 255, 255, 255];
pub const INK: [u8; 4] = [32, 32, 32, 255];

pub fn renderer() -> Renderer {
    match Renderer::new_headless() {
        Ok(r) => r,
        Err(e) => panic!("these tests need a wgpu adapter and none was found: {e}"),
    }
}

/// A field named `variable` on a regular global grid of `res` degrees, with `value(lon, lat)`.
pub fn analytic(variable: &str, res: f64, value: impl Fn(f64, f64) -> f32) -> Field {
    let grid = LatLonGrid::regular(res);
    let values = grid
        .lat
        .iter()
        .flat_map(|&lat| grid.lon.iter().map(move |&lon| (lon, lat)))
        .map(|(lon, lat)| value(lon, lat))
        .collect();
    Field {
        variable: variable.into(),
        units: "K".into(),
        long_name: "2 metre temperature".into(),
        step: 6,
        time: Utc
            .with_ymd_and_hms(2024, 1, 15, 12, 0, 0)
            .single()
            .unwrap_or_default(),
        grid: Arc::new(grid),
        values,
    }
}

/// A smooth temperature-like pattern (no missing cells).
pub fn temperature() -> Field {
    analytic("t2m", 1.0, |lon, lat| {
        let (phi, lam) = (lat.to_radians(), lon.to_radians());
        (250.0
            + 40.0 * phi.cos()
            + 12.0 * (2.0 * lam).sin() * phi.cos().powi(2)
            + 4.0 * (5.0 * phi).sin()) as f32
    })
}

pub fn assert_close(got: [u8; 4], want: [u8; 3], tol: u8, what: &str) {
    let ok = (0..3).all(|c| got[c].abs_diff(want[c]) <= tol) && got[3] == 255;
    assert!(ok, "{what}: got {got:?}, expected {want:?} ±{tol}");
}

/// True when `got` is `want` within ±2 per channel.
pub fn same_colour(got: [u8; 4], want: [u8; 4]) -> bool {
    (0..4).all(|c| got[c].abs_diff(want[c]) <= 2)
}

/// Pixels of colour `rgba` (±2) in the rectangle x0..x1 × y0..y1 (clipped to the image).
pub fn count_colour(img: &RgbaImage, rgba: [u8; 4], x0: i64, y0: i64, x1: i64, y1: i64) -> usize {
    let (w, h) = (i64::from(img.width), i64::from(img.height));
    let mut n = 0;
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            n += usize::from(same_colour(img.pixel(x as u32, y as u32), rgba));
        }
    }
    n
}

/// Golden comparison tolerance (as for the analytic golden in render.rs): at least 99.5 % of
/// pixels within ±2 per channel, and at most 0.05 % off by more than 32 — room for another GPU
/// rounding a table index, or another libm moving a line pixel, none for a moved label, a missing
/// layer or a flipped map.
pub const GOLDEN_WITHIN_2: f64 = 0.995;
pub const GOLDEN_MAX_BEYOND_32: f64 = 0.0005;

/// Compares `img` with `tests/golden/{name}`, or writes it there when `ISOTACH_BLESS=1`. On a
/// mismatch the actual image and a diff are written to the target's tmp directory.
pub fn check_golden(img: &RgbaImage, name: &str, adapter: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("ISOTACH_BLESS").is_ok_and(|v| v == "1") {
        img.write_png(&path)
            .unwrap_or_else(|e| panic!("blessing {}: {e}", path.display()));
        eprintln!("blessed {}", path.display());
        return;
    }
    let golden = RgbaImage::read_png(&path).unwrap_or_else(|e| {
        panic!("{e} (create it with ISOTACH_BLESS=1 cargo test -p isotach-viz)")
    });
    assert_eq!(
        (golden.width, golden.height),
        (img.width, img.height),
        "golden size of {name}"
    );
    let mut within_2 = 0usize;
    let mut beyond_32 = 0usize;
    let mut diff = Vec::with_capacity(img.pixels.len());
    for (a, b) in img
        .pixels
        .chunks_exact(4)
        .zip(golden.pixels.chunks_exact(4))
    {
        let d = (0..4).map(|c| a[c].abs_diff(b[c])).max().unwrap_or(0);
        within_2 += usize::from(d <= 2);
        beyond_32 += usize::from(d > 32);
        let v = 255 - d.saturating_mul(4);
        diff.extend_from_slice(&[255, v, v, 255]);
    }
    let n = f64::from(img.width * img.height);
    let ok = within_2 as f64 / n >= GOLDEN_WITHIN_2 && beyond_32 as f64 / n <= GOLDEN_MAX_BEYOND_32;
    if !ok {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let stem = name.trim_end_matches(".png");
        let actual = out.join(format!("{stem}.actual.png"));
        let diff_path = out.join(format!("{stem}.diff.png"));
        let _ = img.write_png(&actual);
        if let Ok(d) = RgbaImage::new(img.width, img.height, diff) {
            let _ = d.write_png(&diff_path);
        }
        panic!(
            "golden mismatch on {adapter} for {name}: {:.3}% of pixels within ±2 (need {:.1}%), \
             {beyond_32} beyond ±32 (allowed {:.0}); actual: {}, diff: {}",
            100.0 * within_2 as f64 / n,
            100.0 * GOLDEN_WITHIN_2,
            GOLDEN_MAX_BEYOND_32 * n,
            actual.display(),
            diff_path.display()
        );
    }
}
