//! Renders a synthetic 0.25° field (1440×721, like ERA5) repeatedly and prints the time per frame.
//!
//! `cargo run -p isotach-viz --example frame_time -- [WIDTH HEIGHT [FRAMES [OUT.png]]]`

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use isotach_core::{Colormap, Field, LatLonGrid};
use isotach_viz::{Canvas, Renderer, ScalarStyle, VizError};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), VizError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u32| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let canvas = Canvas::new(arg(0, 1280), arg(1, 720));
    let frames = arg(2, 20).max(1);

    let grid = LatLonGrid::regular(0.25);
    let mut values = Vec::with_capacity(grid.len());
    for &lat in &grid.lat {
        for &lon in &grid.lon {
            let (phi, lam) = (lat.to_radians(), lon.to_radians());
            values.push((15.0 * (3.0 * lam).sin() * phi.cos() + 10.0 * (4.0 * phi).cos()) as f32);
        }
    }
    let mut field = Field {
        variable: "u10".into(),
        units: "m s**-1".into(),
        long_name: "10 metre U wind component".into(),
        step: 0,
        time: Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        grid: Arc::new(grid),
        values,
    };
    let style = ScalarStyle {
        range: Some([-25.0, 25.0]),
        ..ScalarStyle::new(Colormap::Coolwarm)
    };

    let start = Instant::now();
    let mut renderer = Renderer::new_headless()?;
    println!(
        "adapter: {} (opened in {:.0} ms)",
        renderer.adapter_summary(),
        start.elapsed().as_secs_f64() * 1e3
    );

    let t = Instant::now();
    let mut image = renderer.render(&field, &style, canvas)?;
    println!(
        "first frame {}×{}: {:.1} ms",
        canvas.width_px,
        canvas.height_px,
        t.elapsed().as_secs_f64() * 1e3
    );

    let t = Instant::now();
    for step in 1..=u64::from(frames) {
        // A new step each frame, as a stream would deliver: new values, new time line.
        field.step = step;
        field.time += chrono::Duration::hours(1);
        for v in field.values.iter_mut().step_by(97) {
            *v += 0.01;
        }
        image = renderer.render(&field, &style, canvas)?;
    }
    let per_frame = t.elapsed().as_secs_f64() * 1e3 / f64::from(frames);
    println!(
        "{frames} frames: {per_frame:.1} ms per frame ({:.1} fps)",
        1e3 / per_frame
    );

    if let Some(out) = args.get(3) {
        image.write_png(std::path::Path::new(out))?;
        println!("wrote {out}");
    }
    Ok(())
}
