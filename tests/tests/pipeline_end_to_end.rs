//! `isotach generate` then `isotach run`, as real processes: the frames are the right pixels.

use std::path::Path;

use isotach_connectors::{Source, ZarrSource};
use isotach_core::Colormap;
use isotach_tests::{generate, isotach, isotach_ok};
use isotach_viz::{Canvas, RgbaImage, colormap_rgb, layout};

const SPEC: &str = r#"
name = "e2e"
[source]
uri = "s.zarr"
variables = ["ivt_u", "ivt_v"]
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[sink]]
kind = "frames"
path = "FRAMES"
width_px = 480
height_px = 270
layers = [{ variable = "ivt", colormap = "viridis", range = [0, 1000] }]
"#;

fn run_spec(dir: &Path, frames: &str, workers: &str) {
    std::fs::write(
        dir.join(format!("{frames}.toml")),
        SPEC.replace("FRAMES", frames),
    )
    .expect("write spec");
    isotach_ok(
        dir,
        &["run", &format!("{frames}.toml"), "--workers", workers],
    );
}

#[test]
fn frames_show_the_computed_ivt_and_match_the_golden_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    generate(d, "s.zarr", 4, 3);
    run_spec(d, "two", "2");
    run_spec(d, "one", "1");
    for step in 0..3 {
        let name = format!("ivt_{step:05}.png");
        let a = std::fs::read(d.join("two").join(&name)).expect("frame from 2 workers");
        let b = std::fs::read(d.join("one").join(&name)).expect("frame from 1 worker");
        assert!(
            a == b,
            "{name}: 1 and 2 workers must give byte-identical frames"
        );
    }

    // Golden image. Tolerance: at least 99.5% of pixels within 3 per channel and none off by more
    // than 48 (software and hardware rasterisers differ slightly at glyph and line edges).
    let frame = RgbaImage::read_png(&d.join("two/ivt_00001.png")).expect("frame");
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/ivt_00001_480x270.png");
    if std::env::var_os("ISOTACH_BLESS").is_some() {
        frame.write_png(&golden_path).expect("bless golden");
    }
    let golden =
        RgbaImage::read_png(&golden_path).expect("golden image (bless with ISOTACH_BLESS=1)");
    assert_eq!((frame.width, frame.height), (golden.width, golden.height));
    let (mut close, mut worst) = (0usize, 0u8);
    for (p, q) in frame
        .pixels
        .chunks_exact(4)
        .zip(golden.pixels.chunks_exact(4))
    {
        let diff = p
            .iter()
            .zip(q)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        close += usize::from(diff <= 3);
        worst = worst.max(diff);
    }
    let fraction = close as f64 / (frame.pixels.len() / 4) as f64;
    assert!(
        fraction >= 0.995 && worst <= 48,
        "frame vs golden: {:.4} of pixels within 3, worst {worst}",
        fraction
    );

    // The pixel over a grid cell shows that cell's IVT through viridis: between the colours of the
    // neighbouring cells' values (the renderer interpolates bilinearly).
    let source = ZarrSource::open(d.join("s.zarr").to_str().expect("utf-8")).expect("open");
    let (nlat, nlon) = source.describe().grid.shape();
    let u = source
        .read_subset("ivt_u", &[1..2, 0..nlat as u64, 0..nlon as u64])
        .expect("u");
    let v = source
        .read_subset("ivt_v", &[1..2, 0..nlat as u64, 0..nlon as u64])
        .expect("v");
    let ivt: Vec<f32> = u.iter().zip(&v).map(|(a, b)| a.hypot(*b)).collect();
    let map = layout(Canvas {
        width_px: 480,
        height_px: 270,
    });
    let mut checked = 0;
    for (i, j) in [(10, 20), (12, 60), (20, 45), (30, 80), (35, 10), (25, 30)] {
        let (lat, lon) = (90.0 - 4.0 * i as f64, 4.0 * j as f64);
        let (x, y) = map.lonlat_to_pixel(lon, lat).expect("inside the map");
        let neighbours: Vec<f32> = [
            (i - 1, j - 1),
            (i - 1, j + 1),
            (i + 1, j - 1),
            (i + 1, j + 1),
            (i, j),
        ]
        .iter()
        .map(|(a, b)| ivt[a * nlon + b])
        .collect();
        let (lo, hi) = neighbours
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        let pixel = frame.pixel(x, y);
        let matches = (0..=64).any(|k| {
            let value = lo + (hi - lo) * k as f32 / 64.0;
            let rgb = colormap_rgb(Colormap::Viridis, (value / 1000.0).clamp(0.0, 1.0));
            rgb.iter().zip(&pixel).all(|(c, p)| c.abs_diff(*p) <= 4)
        });
        assert!(
            matches,
            "pixel ({x},{y}) at {lat}N {lon}E is {pixel:?}, IVT there is {lo:.0}..{hi:.0}"
        );
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn a_bad_spec_fails_before_any_work_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    generate(d, "s.zarr", 10, 2);
    std::fs::write(
        d.join("bad.toml"),
        SPEC.replace(r#"["ivt_u", "ivt_v"]"#, r#"["ivt_u", "ivtv"]"#)
            .replace("FRAMES", "f"),
    )
    .expect("spec");
    let out = isotach(d, &["run", "bad.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(r#"variable "ivtv" not found in store s.zarr (have: ivt_u, ivt_v, iwv, mslp, q, u, u850, v, v850)"#), "{stderr}");
    assert!(
        !d.join("f").exists(),
        "no output may be created for a refused spec"
    );
}
