//! Renders one synthetic scene with every layer (contours, wind arrows, objects, graticule,
//! coastlines) in each projection, and prints the time each frame took.
//!
//! `cargo run -p isotach-viz --example layers -- [WIDTH HEIGHT [OUT_DIR]]` (coastline data:
//! `viz/scripts/fetch-coastlines.sh`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use isotach_core::{Colormap, Field, LatLonGrid};
use isotach_viz::{
    AutoRange, Canvas, CoastlineLayer, CoastlineResolution, Coastlines, ContourLayer,
    GraticuleLayer, Layer, MapView, ObjectLayer, Pole, Projection, Renderer, ScalarStyle, Scene,
    VectorLayer, VizError,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn field(variable: &str, units: &str, value: impl Fn(f64, f64) -> f64) -> Field {
    let grid = LatLonGrid::regular(1.0);
    let values = grid
        .lat
        .iter()
        .flat_map(|&lat| grid.lon.iter().map(move |&lon| (lon, lat)))
        .map(|(lon, lat)| value(lon.to_radians(), lat.to_radians()) as f32)
        .collect();
    Field {
        variable: variable.into(),
        units: units.into(),
        long_name: "synthetic mean sea level pressure".into(),
        step: 3,
        time: Utc
            .with_ymd_and_hms(2017, 2, 7, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        grid: Arc::new(grid),
        values,
    }
}

fn run() -> Result<(), VizError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u32| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let canvas = Canvas::new(arg(0, 1280), arg(1, 720));
    let out = PathBuf::from(args.get(2).map_or("target/layers", String::as_str));
    std::fs::create_dir_all(&out).map_err(|source| VizError::Io {
        path: out.clone(),
        source,
    })?;

    // Pressure with waves along the mid-latitudes; geostrophic-like wind along its isobars.
    let msl = field("msl", "hPa", |lam, phi| {
        1013.0 - 25.0 * (4.0 * lam).sin() * (2.0 * phi).sin().powi(2) + 8.0 * phi.cos()
    });
    let u = field("u", "m s**-1", |lam, phi| {
        20.0 * (2.0 * phi).sin() * (4.0 * lam).sin()
    });
    let v = field("v", "m s**-1", |lam, phi| {
        20.0 * (4.0 * lam).cos() * (2.0 * phi).sin().powi(2)
    });
    let ids = field("ar_id", "1", |lam, phi| {
        let (lon, lat) = (lam.to_degrees(), phi.to_degrees());
        if (200.0..235.0).contains(&lon)
            && (25.0..45.0).contains(&lat)
            && lon - 200.0 > (lat - 25.0) * 0.8
        {
            1.0
        } else if (300.0..340.0).contains(&lon) && (-50.0..-35.0).contains(&lat) {
            2.0
        } else {
            0.0
        }
    });
    let style = ScalarStyle {
        colormap: Colormap::Coolwarm,
        auto_range: AutoRange::Percentile {
            low: 2.0,
            high: 98.0,
        },
        ..ScalarStyle::default()
    };
    let mut renderer = Renderer::new_headless()?;
    let projections = [
        (
            "equirectangular",
            Projection::Equirectangular { central_lon: 200.0 },
        ),
        (
            "orthographic",
            Projection::Orthographic {
                centre_lon: -140.0,
                centre_lat: 35.0,
            },
        ),
        (
            "polar_north",
            Projection::PolarStereographic {
                pole: Pole::North,
                central_lon: -45.0,
                boundary_lat: 20.0,
            },
        ),
        (
            "polar_south",
            Projection::PolarStereographic {
                pole: Pole::South,
                central_lon: 0.0,
                boundary_lat: -30.0,
            },
        ),
    ];
    for (name, projection) in projections {
        let view = MapView::new(canvas, projection)?;
        let coast = Coastlines::load(CoastlineResolution::for_view(&view))?;
        let levels = (0..12).map(|k| 985.0 + 5.0 * f64::from(k)).collect();
        let scene = Scene::new(&msl, style.clone())
            .with_projection(projection)
            .with_layer(Layer::Objects(ObjectLayer::new(&ids)))
            .with_layer(Layer::Graticule(GraticuleLayer::default()))
            .with_layer(Layer::Coastlines(CoastlineLayer {
                land_rgba: Some([90, 90, 90, 70]),
                ..CoastlineLayer::new(&coast)
            }))
            .with_layer(Layer::Contours(ContourLayer::new(&msl, levels)))
            .with_layer(Layer::Vectors(VectorLayer::new(
                &u,
                &v,
                28 * view.layout.scale,
            )));
        let start = Instant::now();
        let image = renderer.render_scene(&scene, canvas)?;
        let took = start.elapsed();
        let path = out.join(format!("{name}.png"));
        image.write_png(&path)?;
        println!(
            "{name}: {:.1} ms ({} coastline points) → {}",
            took.as_secs_f64() * 1e3,
            coast.point_count(),
            path.display()
        );
    }
    Ok(())
}
