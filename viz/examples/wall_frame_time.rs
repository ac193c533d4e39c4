//! Frame time of one display-wall tile: a 3840 × 2160 screen of a 2 × 2 wall of 4K screens
//! (bezels 40 px), drawing a 0.25° field (1440 × 721, like ERA5) with object outlines over it, as
//! a wall node does for each frame: the layers rasterised for the tile's viewport, the field and
//! overlay uploaded, the frame drawn and read back. Each frame is a new time step (new values,
//! new time line), so nothing is reused that a stream would not reuse.
//!
//! Baseline, measured in the same run on the same adapter: the same tile with the field alone
//! (no layers), so the ratio shows what the object layer costs; and the goal of 16.7 ms (60 Hz).
//!
//! `cargo run --release -p isotach-viz --example wall_frame_time -- [FRAMES]`

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use isotach_core::{Colormap, Field, LatLonGrid};
use isotach_viz::{Layer, ObjectLayer, Renderer, ScalarStyle, Scene, VizError, WallSpec};

const WALL: &str = r#"
name = "bench"
rows = 2
columns = 2
tile_width_px = 3840
tile_height_px = 2160
bezel_x_px = 40
bezel_y_px = 40
[[node]]
name = "n"
tiles = [[0, 0], [0, 1], [1, 0], [1, 1]]
"#;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn field(variable: &str, value: impl Fn(f64, f64) -> f32) -> Field {
    let grid = LatLonGrid::regular(0.25);
    let mut values = Vec::with_capacity(grid.len());
    for &lat in &grid.lat {
        for &lon in &grid.lon {
            values.push(value(lon, lat));
        }
    }
    Field {
        variable: variable.into(),
        units: "kg m**-1 s**-1".into(),
        long_name: "Integrated vapour transport".into(),
        step: 0,
        time: Utc
            .with_ymd_and_hms(2017, 2, 7, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        grid: Arc::new(grid),
        values,
    }
}

/// Median and 95th percentile of `times_ms`.
fn summary(times_ms: &mut [f64]) -> (f64, f64) {
    times_ms.sort_by(f64::total_cmp);
    let at = |q: f64| times_ms[((times_ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

fn run() -> Result<(), VizError> {
    let frames: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .max(2);
    let wall = WallSpec::from_toml_str(WALL)?;
    let canvas = wall.canvas();
    // The lower-right tile: the map, the colorbar and the objects all cross it.
    let viewport = wall.viewport([1, 1]);
    let mut ivt = field("ivt", |lon, lat| {
        let (phi, lam) = (lat.to_radians(), lon.to_radians());
        (300.0 + 250.0 * (3.0 * lam).sin() * phi.cos() + 100.0 * (4.0 * phi).cos()) as f32
    });
    let mut ids = field("ar_id", |lon, lat| {
        let river =
            (lat - 35.0 - 10.0 * (lon / 30.0).sin()).abs() < 4.0 && (150.0..240.0).contains(&lon);
        let south =
            (lat + 30.0 - 8.0 * (lon / 25.0).cos()).abs() < 3.0 && (280.0..350.0).contains(&lon);
        if river {
            1.0
        } else if south {
            2.0
        } else {
            0.0
        }
    });

    let opened = Instant::now();
    let mut renderer = Renderer::new_headless()?;
    println!(
        "adapter: {} (opened in {:.0} ms)",
        renderer.adapter_summary(),
        opened.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "tile {}×{} at ({}, {}) of a {}×{} wall canvas; 0.25° field ({} cells); {frames} frames each",
        viewport.width,
        viewport.height,
        viewport.x,
        viewport.y,
        canvas.width_px,
        canvas.height_px,
        ivt.values.len()
    );
    let style = ScalarStyle {
        range: Some([0.0, 800.0]),
        ..ScalarStyle::new(Colormap::Magma)
    };
    let mut measure = |with_objects: bool| -> Result<Vec<f64>, VizError> {
        let mut times = Vec::with_capacity(frames);
        // Two untimed frames: pipeline creation, texture allocation.
        for step in 0..frames + 2 {
            ivt.step = step as u64;
            ids.step = step as u64;
            ivt.time += chrono::Duration::hours(6);
            for v in ivt.values.iter_mut().step_by(89) {
                *v += 0.5;
            }
            for v in ids.values.iter_mut().step_by(1013) {
                *v = if *v == 0.0 { 3.0 } else { 0.0 };
            }
            let mut scene = Scene::new(&ivt, style.clone());
            if with_objects {
                scene = scene.with_layer(Layer::Objects(ObjectLayer::new(&ids)));
            }
            let started = Instant::now();
            let image = renderer.render_viewport(&scene, canvas, viewport)?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            assert_eq!(image.pixels.len(), 3840 * 2160 * 4);
            if step >= 2 {
                times.push(ms);
            }
        }
        Ok(times)
    };
    let (field_med, field_p95) = summary(&mut measure(false)?);
    let (layer_med, layer_p95) = summary(&mut measure(true)?);
    println!("| tile 3840 × 2160 | median ms | p95 ms | fps (median) |");
    println!("|---|---|---|---|");
    println!(
        "| field only (baseline) | {field_med:.1} | {field_p95:.1} | {:.1} |",
        1e3 / field_med
    );
    println!(
        "| field + object outlines | {layer_med:.1} | {layer_p95:.1} | {:.1} |",
        1e3 / layer_med
    );
    println!(
        "ratio with objects / field only: {:.2}; median against the 16.7 ms goal: {:.2}×",
        layer_med / field_med,
        layer_med / 16.7
    );
    Ok(())
}
