//! Wall tiles: each tile renders only its viewport of the wall's virtual canvas, and the tiles
//! side by side (bezels left out) are exactly the full-canvas render with the bezel strips cut
//! out. Needs a wgpu adapter.

mod common;

use common::*;
use isotach_core::Colormap;
use isotach_viz::{
    Canvas, CoastlineLayer, CoastlineResolution, Coastlines, ContourLayer, GraticuleLayer, Layer,
    MapView, ObjectLayer, PixelRect, Projection, RgbaImage, ScalarStyle, Scene, VectorLayer,
    WallSpec,
};

const WALL: &str = r#"
name = "test-wall"
rows = 2
columns = 2
tile_width_px = 400
tile_height_px = 240
bezel_x_px = 24
bezel_y_px = 16
[[node]]
name = "top"
tiles = [[0, 0], [0, 1]]
[[node]]
name = "bottom-left"
tiles = [[1, 0]]
[[node]]
name = "bottom-right"
tiles = [[1, 1]]
"#;

fn wall() -> WallSpec {
    WallSpec::from_toml_str(WALL).unwrap_or_else(|e| panic!("{e}"))
}

/// Every kind of layer, so that each one's windowed drawing is checked.
fn check_stitch(projection: Projection) {
    let wall = wall();
    let canvas = wall.canvas();
    let mut r = renderer();
    let t = temperature();
    let u = analytic("u", 2.0, |_, lat| (lat.to_radians().cos() * 20.0) as f32);
    let v = analytic("v", 2.0, |lon, _| (lon.to_radians().sin() * 10.0) as f32);
    let ids = analytic("ar_id", 1.0, |lon, lat| {
        if (20.0..50.0).contains(&lat) && (150.0..230.0).contains(&lon) {
            1.0
        } else if (-40.0..-10.0).contains(&lat) && (300.0..350.0).contains(&lon) {
            2.0
        } else {
            0.0
        }
    });
    let view = MapView::new(canvas, projection).unwrap_or_else(|e| panic!("{e}"));
    let coast =
        Coastlines::load(CoastlineResolution::for_view(&view)).unwrap_or_else(|e| panic!("{e}"));
    let levels = (0..8).map(|k| 220.0 + 10.0 * f64::from(k)).collect();
    let mut coast_layer = CoastlineLayer::new(&coast);
    coast_layer.land_rgba = Some([90, 90, 90, 80]);
    // Objects twice: first (drawn by the shader) and among the CPU layers.
    let scene = Scene::new(&t, ScalarStyle::new(Colormap::Cividis))
        .with_projection(projection)
        .with_layer(Layer::Objects(ObjectLayer::new(&ids)))
        .with_layer(Layer::Contours(ContourLayer::new(&t, levels)))
        .with_layer(Layer::Vectors(VectorLayer::new(&u, &v, 40)))
        .with_layer(Layer::Objects(ObjectLayer::new(&ids)))
        .with_layer(Layer::Graticule(GraticuleLayer::default()))
        .with_layer(Layer::Coastlines(coast_layer));

    let full = r
        .render_scene(&scene, canvas)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut tiles = Vec::new();
    for row in 0..wall.rows {
        for col in 0..wall.columns {
            let viewport = wall.viewport([row, col]);
            let tile = r
                .render_viewport(&scene, canvas, viewport)
                .unwrap_or_else(|e| panic!("tile [{row}, {col}]: {e}"));
            assert_eq!((tile.width, tile.height), (400, 240));
            tiles.push(tile);
        }
    }
    let stitched = wall.stitch(&tiles).unwrap_or_else(|e| panic!("{e}"));
    let expected = wall.without_bezels(&full).unwrap_or_else(|e| panic!("{e}"));
    // Tolerance: none. A tile runs the same shader on the same canvas coordinates and draws the
    // same layers clipped to its window, so every byte must match.
    let differing = stitched
        .pixels
        .chunks_exact(4)
        .zip(expected.pixels.chunks_exact(4))
        .filter(|(a, b)| a != b)
        .count();
    if differing > 0 {
        let dir = std::env::temp_dir().join("isotach-wall-stitch");
        let _ = std::fs::create_dir_all(&dir);
        let _ = stitched.write_png(&dir.join("stitched.png"));
        let _ = expected.write_png(&dir.join("expected.png"));
        panic!(
            "{projection:?}: {differing} of {} pixels differ (images in {})",
            stitched.pixels.len() / 4,
            dir.display()
        );
    }
    // The layers are really there: the objects' fill colours and the coastline ink show up in
    // the stitched picture.
    let inked = stitched
        .pixels
        .chunks_exact(4)
        .filter(|p| p[..3] == [10, 10, 10])
        .count();
    assert!(inked > 500, "{projection:?}: only {inked} coastline pixels");
}

#[test]
fn stitched_tiles_equal_the_full_render_equirectangular() {
    check_stitch(Projection::Equirectangular { central_lon: 180.0 });
}

#[test]
fn stitched_tiles_equal_the_full_render_orthographic() {
    check_stitch(Projection::Orthographic {
        centre_lon: -120.0,
        centre_lat: 35.0,
    });
}

#[test]
fn a_node_viewport_covers_its_tiles_and_the_bezel_between() {
    let wall = wall();
    assert_eq!(wall.canvas(), Canvas::new(824, 496));
    let top = wall.node("top").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        wall.node_viewport(top),
        PixelRect {
            x: 0,
            y: 0,
            width: 824,
            height: 240
        }
    );
    assert_eq!(
        wall.viewport([1, 1]),
        PixelRect {
            x: 424,
            y: 256,
            width: 400,
            height: 240
        }
    );
    let err = wall.node("nowhere").err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "wall test-wall: node no node \"nowhere\" (the wall has: top, bottom-left, bottom-right)"
        )
    );
}

#[test]
fn a_viewport_outside_the_canvas_is_refused() {
    let mut r = renderer();
    let t = temperature();
    let scene = Scene::new(&t, ScalarStyle::new(Colormap::Viridis));
    let err = r
        .render_viewport(
            &scene,
            Canvas::new(640, 360),
            PixelRect {
                x: 600,
                y: 0,
                width: 100,
                height: 100,
            },
        )
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("viewport 100×100 px at (600, 0) does not fit inside the 640×360 px canvas")
    );
}

#[test]
fn bad_wall_files_are_refused_with_the_field_and_value() {
    let cases = [
        (
            WALL.replace("rows = 2", "rows = 0"),
            "wall test-wall: rows is 0; it must be at least 1",
        ),
        (
            WALL.replace("tiles = [[1, 1]]", "tiles = [[1, 0]]"),
            "wall test-wall: node[2].tiles [1, 0] is already driven by node \"bottom-left\"",
        ),
        (
            WALL.replace("tiles = [[1, 1]]", "tiles = [[2, 1]]"),
            "wall test-wall: node[2].tiles [2, 1] is outside the 2 × 2 wall (rows and columns count from 0)",
        ),
        (
            WALL.replace(
                "name = \"bottom-right\"\ntiles = [[1, 1]]",
                "name = \"top\"\ntiles = [[1, 1]]",
            ),
            "wall test-wall: node[2].name \"top\" names two nodes",
        ),
        (
            WALL.replace("[[node]]\nname = \"bottom-right\"\ntiles = [[1, 1]]\n", ""),
            "wall test-wall: node tile [1, 1] is driven by no node",
        ),
        (
            format!("present_timeout_ms = 0\n{WALL}"),
            "wall test-wall: present_timeout_ms 0 is outside 1..=60000",
        ),
    ];
    for (text, expected) in cases {
        let err = WallSpec::from_toml_str(&text).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(expected));
    }
    let err = WallSpec::from_toml_str(&format!("colour = 1\n{WALL}"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("unknown field `colour`"), "{err}");
}

#[test]
fn crop_checks_bounds() {
    let img = RgbaImage::new(4, 2, (0..32).collect()).unwrap_or_else(|e| panic!("{e}"));
    let part = img
        .crop(PixelRect {
            x: 1,
            y: 1,
            width: 2,
            height: 1,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(part.pixels, (20..28).collect::<Vec<u8>>());
}
