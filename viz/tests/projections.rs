//! GPU tests of the projections: the colour at known places matches `colormap_rgb` of the value
//! the CPU mirror (`MapView`) says is shown there; off-globe pixels are background; one golden
//! image per projection. They need a wgpu adapter (lavapipe will do) and fail without one.

mod common;

use common::*;
use isotach_core::{Colormap, Field};
use isotach_viz::{
    AutoRange, Canvas, CoastlineLayer, CoastlineResolution, Coastlines, ContourLayer,
    GraticuleLayer, Layer, MapView, Pole, Projection, Renderer, RgbaImage, ScalarStyle, Scene,
    colormap_rgb,
};

fn style(colormap: Colormap, range: [f32; 2]) -> ScalarStyle {
    ScalarStyle {
        colormap,
        range: Some(range),
        nan_rgba: MAGENTA,
        ..ScalarStyle::default()
    }
}

fn render(r: &mut Renderer, scene: &Scene<'_>, w: u32, h: u32) -> (RgbaImage, MapView) {
    let canvas = Canvas::new(w, h);
    let img = r
        .render_scene(scene, canvas)
        .unwrap_or_else(|e| panic!("render failed: {e}"));
    let view = MapView::new(canvas, scene.projection).unwrap_or_else(|e| panic!("{e}"));
    (img, view)
}

/// Checks value = latitude (magma over −90..90) and value = longitude (viridis over 0..360) at
/// `places`, each through the CPU mirror: pixel of the place → the exact point sampled there.
fn check_places(projection: Projection, places: &[(f64, f64)]) {
    let mut r = renderer();
    let lat_field = analytic("lat", 1.0, |_, lat| lat as f32);
    let lon_field = analytic("lon", 1.0, |lon, _| lon as f32);
    let lat_scene =
        Scene::new(&lat_field, style(Colormap::Magma, [-90.0, 90.0])).with_projection(projection);
    let lon_scene =
        Scene::new(&lon_field, style(Colormap::Viridis, [0.0, 360.0])).with_projection(projection);
    let (lat_img, view) = render(&mut r, &lat_scene, 640, 360);
    let (lon_img, _) = render(&mut r, &lon_scene, 640, 360);
    for &(lon, lat) in places {
        let (x, y) = view
            .lonlat_to_pixel(lon, lat)
            .unwrap_or_else(|| panic!("{projection:?}: ({lon}, {lat}) is not on the map"));
        let (plon, plat) = view
            .pixel_to_lonlat(x, y)
            .unwrap_or_else(|| panic!("{projection:?}: pixel ({x}, {y}) shows nothing"));
        // The pixel centre is within a pixel of the place.
        let dlon = (plon - lon + 180.0).rem_euclid(360.0) - 180.0;
        assert!(
            dlon.abs() * plat.to_radians().cos() < 2.0 && (plat - lat).abs() < 2.0,
            "{projection:?}: ({lon}, {lat}) → ({x}, {y}) → ({plon}, {plat})"
        );
        let what = |v: &str| format!("{projection:?}: {v} at ({lon}, {lat}), pixel ({x}, {y})");
        assert_close(
            lat_img.pixel(x, y),
            colormap_rgb(Colormap::Magma, ((plat + 90.0) / 180.0) as f32),
            COLOUR_TOL,
            &what("latitude"),
        );
        // value = lon interpolates linearly except between 359° and 360° (= column 0 again).
        if plon < 358.9 {
            assert_close(
                lon_img.pixel(x, y),
                colormap_rgb(Colormap::Viridis, (plon / 360.0) as f32),
                COLOUR_TOL,
                &what("longitude"),
            );
        }
    }
    if projection.is_disc() {
        // The corners of the square map are off the disc: background, and a dark rim around it.
        let m = view.layout.map;
        for (x, y) in [(m.x, m.y), (m.right() - 1, m.y), (m.x + 3, m.bottom() - 2)] {
            assert_eq!(view.pixel_to_lonlat(x, y), None);
            assert_eq!(
                lat_img.pixel(x, y),
                WHITE,
                "{projection:?}: corner ({x}, {y})"
            );
        }
        let (cx, cy) = (m.x + m.width / 2, m.y + m.height / 2);
        assert_eq!(lat_img.pixel(cx, m.y - 1), INK, "rim above the disc");
        assert_eq!(lat_img.pixel(m.right(), cy), INK, "rim right of the disc");
        assert_ne!(lat_img.pixel(cx, m.y), WHITE, "disc reaches the top");
    }
}

#[test]
fn equirectangular_with_a_central_longitude() {
    let proj = Projection::Equirectangular { central_lon: 0.0 };
    check_places(
        proj,
        &[
            (0.5, 0.5),
            (-170.0, 60.0),
            (170.0, -60.0),
            (45.0, 89.0),
            (300.0, -89.0),
            (90.0, 10.0),
            (200.0, 33.0),
        ],
    );
    // Longitude 0 is in the middle, −180 at the left edge.
    let view = MapView::new(Canvas::new(640, 360), proj).unwrap_or_else(|e| panic!("{e}"));
    let m = view.layout.map;
    assert_eq!(
        view.lonlat_to_pixel(0.0, 0.0),
        Some((m.x + m.width / 2, m.y + m.height / 2))
    );
    assert_eq!(view.lonlat_to_pixel(-180.0, 90.0), Some((m.x, m.y)));
}

#[test]
fn orthographic_globe() {
    check_places(
        Projection::Orthographic {
            centre_lon: -30.0,
            centre_lat: 40.0,
        },
        &[
            (-30.0, 40.0),
            (0.0, 51.5),
            (-74.0, 40.7),
            (-43.2, -22.9),
            (10.0, 0.0),
            (-100.0, 60.0),
            (-30.0, 85.0),
        ],
    );
    // The far side is not drawn.
    let view = MapView::new(
        Canvas::new(640, 360),
        Projection::Orthographic {
            centre_lon: -30.0,
            centre_lat: 40.0,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(view.lonlat_to_pixel(150.0, -40.0), None);
}

#[test]
fn polar_stereographic_north_and_south() {
    check_places(
        Projection::PolarStereographic {
            pole: Pole::North,
            central_lon: -45.0,
            boundary_lat: 30.0,
        },
        &[
            (10.0, 85.0),
            (0.0, 60.0),
            (-100.0, 45.0),
            (135.0, 35.0),
            (90.0, 70.0),
            (200.0, 31.0),
        ],
    );
    check_places(
        Projection::PolarStereographic {
            pole: Pole::South,
            central_lon: 0.0,
            boundary_lat: -45.0,
        },
        &[
            (10.0, -85.0),
            (0.0, -60.0),
            (-100.0, -50.0),
            (135.0, -46.0),
            (270.0, -70.0),
        ],
    );
}

#[test]
fn robust_range_ignores_a_hot_spot() {
    let mut r = renderer();
    // value = lat everywhere, except one very hot 10°×10° box: min/max would be dominated by it.
    let field = analytic("t", 1.0, |lon, lat| {
        if (100.0..110.0).contains(&lon) && (0.0..10.0).contains(&lat) {
            1e4
        } else {
            lat as f32
        }
    });
    let style = ScalarStyle {
        colormap: Colormap::Cividis,
        auto_range: AutoRange::Percentile {
            low: 2.0,
            high: 98.0,
        },
        ..ScalarStyle::default()
    };
    let lo = isotach_viz::percentile(&field.values, 2.0).unwrap_or_default();
    let hi = isotach_viz::percentile(&field.values, 98.0).unwrap_or_default();
    assert!(lo > -90.0 && hi < 90.0 && hi > 80.0, "{lo}..{hi}");
    let scene = Scene::new(&field, style);
    let (img, view) = render(&mut r, &scene, 640, 360);
    for (lon, lat) in [(30.0, 0.0), (200.0, 45.0), (300.0, -70.0)] {
        let (x, y) = view.lonlat_to_pixel(lon, lat).unwrap_or_default();
        let (_, plat) = view.pixel_to_lonlat(x, y).unwrap_or_default();
        assert_close(
            img.pixel(x, y),
            colormap_rgb(Colormap::Cividis, ((plat as f32) - lo) / (hi - lo)),
            COLOUR_TOL,
            &format!("robust range at ({lon}, {lat})"),
        );
    }
}

#[test]
fn invalid_projection_is_refused_by_name() {
    let mut r = renderer();
    let field = temperature();
    let scene = Scene::new(&field, ScalarStyle::default()).with_projection(
        Projection::PolarStereographic {
            pole: Pole::South,
            central_lon: 0.0,
            boundary_lat: 89.5,
        },
    );
    let err = r
        .render_scene(&scene, Canvas::new(640, 360))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("boundary_lat = 89.5"), "{err}");
}

fn golden_scene<'a>(field: &'a Field, coast: &'a Coastlines, projection: Projection) -> Scene<'a> {
    let levels = (0..8).map(|k| 220.0 + 10.0 * f64::from(k)).collect();
    Scene::new(field, ScalarStyle::new(Colormap::Viridis))
        .with_projection(projection)
        .with_layer(Layer::Contours(ContourLayer::new(field, levels)))
        .with_layer(Layer::Graticule(GraticuleLayer::default()))
        .with_layer(Layer::Coastlines(CoastlineLayer::new(coast)))
}

fn golden(projection: Projection, name: &str) {
    let mut r = renderer();
    let field = temperature();
    let canvas = Canvas::new(640, 360);
    let view = MapView::new(canvas, projection).unwrap_or_else(|e| panic!("{e}"));
    let coast =
        Coastlines::load(CoastlineResolution::for_view(&view)).unwrap_or_else(|e| panic!("{e}"));
    let img = r
        .render_scene(&golden_scene(&field, &coast, projection), canvas)
        .unwrap_or_else(|e| panic!("{e}"));
    check_golden(&img, name, &r.adapter_summary());
}

#[test]
fn golden_equirectangular_central_0() {
    golden(
        Projection::Equirectangular { central_lon: 0.0 },
        "equirectangular_c0_layers_640x360.png",
    );
}

#[test]
fn golden_orthographic() {
    golden(
        Projection::Orthographic {
            centre_lon: -30.0,
            centre_lat: 40.0,
        },
        "orthographic_layers_640x360.png",
    );
}

#[test]
fn golden_polar_north() {
    golden(
        Projection::PolarStereographic {
            pole: Pole::North,
            central_lon: -45.0,
            boundary_lat: 30.0,
        },
        "polar_north_layers_640x360.png",
    );
}

#[test]
fn golden_polar_south() {
    golden(
        Projection::PolarStereographic {
            pole: Pole::South,
            central_lon: 0.0,
            boundary_lat: -45.0,
        },
        "polar_south_layers_640x360.png",
    );
}
