//! GPU tests of the layers drawn over the field: contours, arrows, objects, graticule and
//! coastlines (from the real Natural Earth data; `viz/scripts/fetch-coastlines.sh` installs it).
//! Each layer is drawn in a colour that appears nowhere in the field's colormap, so a pixel of
//! that colour is the layer's ink. They need a wgpu adapter and fail without one.

mod common;

use common::*;
use isotach_core::{Colormap, Field};
use isotach_viz::{
    Canvas, CoastlineLayer, CoastlineResolution, Coastlines, ContourLayer, GraticuleLayer, Layer,
    MapView, ObjectLayer, Pole, Projection, Renderer, RgbaImage, ScalarStyle, Scene, VectorLayer,
    arrow_anchors, colormap_rgb, object_rgb,
};

const RED: [u8; 4] = [255, 0, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];

fn grey_style() -> ScalarStyle {
    // Magma over a range the test fields stay inside: dark purples and oranges, never pure red,
    // blue or magenta.
    ScalarStyle {
        colormap: Colormap::Magma,
        range: Some([-100.0, 100.0]),
        nan_rgba: [200, 200, 200, 255],
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

/// Pixels of colour `rgba` within `radius` pixels (a square) of the pixel showing (lon, lat).
fn ink_near(
    img: &RgbaImage,
    view: &MapView,
    rgba: [u8; 4],
    (lon, lat): (f64, f64),
    radius: i64,
) -> usize {
    let (x, y) = view
        .lonlat_to_pixel(lon, lat)
        .unwrap_or_else(|| panic!("({lon}, {lat}) is not on the map"));
    let (x, y) = (i64::from(x), i64::from(y));
    count_colour(
        img,
        rgba,
        x - radius,
        y - radius,
        x + radius + 1,
        y + radius + 1,
    )
}

fn lat_field() -> Field {
    analytic("lat", 1.0, |_, lat| lat as f32)
}

#[test]
fn contours_follow_the_isoline_and_carry_labels() {
    let mut r = renderer();
    let field = lat_field();
    // value = latitude: the 20.5 isoline is the parallel at 20.5° (between grid rows).
    for projection in [
        Projection::default(),
        Projection::Orthographic {
            centre_lon: 10.0,
            centre_lat: 30.0,
        },
    ] {
        let contours = ContourLayer {
            rgba: RED,
            labels: false,
            ..ContourLayer::new(&field, vec![20.5, -45.5])
        };
        let scene = Scene::new(&field, grey_style())
            .with_projection(projection)
            .with_layer(Layer::Contours(contours.clone()));
        let (img, view) = render(&mut r, &scene, 640, 360);
        for lon in [0.0, 15.0, 40.0, 333.0] {
            assert!(
                ink_near(&img, &view, RED, (lon, 20.5), 1) > 0,
                "{projection:?}: no contour ink at ({lon}, 20.5)"
            );
            for lat in [28.0, 12.0, 0.0, 60.0] {
                assert_eq!(
                    ink_near(&img, &view, RED, (lon, lat), 2),
                    0,
                    "{projection:?}: contour ink at ({lon}, {lat}), far from any isoline"
                );
            }
        }
        if projection == Projection::default() {
            assert!(ink_near(&img, &view, RED, (200.0, -45.5), 1) > 0);
            // The field under the line is still the field elsewhere.
            let (x, y) = view.lonlat_to_pixel(100.0, 50.0).unwrap_or_default();
            let (_, plat) = view.pixel_to_lonlat(x, y).unwrap_or_default();
            assert_close(
                img.pixel(x, y),
                colormap_rgb(Colormap::Magma, ((plat + 100.0) / 200.0) as f32),
                COLOUR_TOL,
                "field between contours",
            );
        }

        // With labels: red glyphs appear away from the line (inside the label boxes), and the
        // map changes nowhere else than near the isolines.
        let labelled = Scene::new(&field, grey_style())
            .with_projection(projection)
            .with_layer(Layer::Contours(ContourLayer {
                labels: true,
                ..contours
            }));
        let (with_labels, _) = render(&mut r, &labelled, 640, 360);
        let m = view.layout.map;
        let mut glyph_pixels = 0;
        for y in m.y..m.bottom() {
            for x in m.x..m.right() {
                let changed = with_labels.pixel(x, y) != img.pixel(x, y);
                if !changed {
                    continue;
                }
                let Some((_, lat)) = view.pixel_to_lonlat(x, y) else {
                    panic!("{projection:?}: a label drew off the globe at ({x}, {y})");
                };
                assert!(
                    (lat - 20.5).abs() < 12.0 || (lat + 45.5).abs() < 12.0,
                    "{projection:?}: label ink at ({x}, {y}), lat {lat}, far from the isolines"
                );
                glyph_pixels += usize::from(same_colour(with_labels.pixel(x, y), RED));
            }
        }
        assert!(
            glyph_pixels > 20,
            "{projection:?}: {glyph_pixels} label pixels"
        );
    }
}

/// Centroid of `rgba` pixels within `radius` of (x, y), relative to the pixel centre.
fn ink_centroid(
    img: &RgbaImage,
    rgba: [u8; 4],
    (x, y): (u32, u32),
    radius: i64,
) -> (f64, f64, usize) {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0usize);
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            let (px, py) = (i64::from(x) + dx, i64::from(y) + dy);
            if px < 0 || py < 0 || px >= i64::from(img.width) || py >= i64::from(img.height) {
                continue;
            }
            if same_colour(img.pixel(px as u32, py as u32), rgba) {
                sx += dx as f64;
                sy += dy as f64;
                n += 1;
            }
        }
    }
    if n == 0 {
        return (0.0, 0.0, 0);
    }
    (sx / n as f64, sy / n as f64, n)
}

#[test]
fn arrows_point_downwind() {
    let mut r = renderer();
    let base = lat_field();
    let spacing = 40;
    // (u, v, projection, expected screen direction at the anchor as a function of the anchor).
    let east = analytic("u", 2.0, |_, _| 10.0);
    let north = analytic("v", 2.0, |_, _| 10.0);
    let calm = analytic("v", 2.0, |_, _| 0.0);
    let cases: [(&Field, &Field, Projection, &str); 3] = [
        (
            &east,
            &calm,
            Projection::default(),
            "eastward, equirectangular",
        ),
        (
            &calm,
            &north,
            Projection::default(),
            "northward, equirectangular",
        ),
        (
            &calm,
            &north,
            Projection::PolarStereographic {
                pole: Pole::North,
                central_lon: 0.0,
                boundary_lat: 20.0,
            },
            "northward, polar: towards the pole",
        ),
    ];
    for (u, v, projection, what) in cases {
        let layer = VectorLayer {
            rgba: BLUE,
            ..VectorLayer::new(u, v, spacing)
        };
        let scene = Scene::new(&base, grey_style())
            .with_projection(projection)
            .with_layer(Layer::Vectors(layer));
        let (img, view) = render(&mut r, &scene, 640, 360);
        let anchors = arrow_anchors(&view, spacing);
        assert!(anchors.len() > 20, "{what}: {} anchors", anchors.len());
        let m = view.layout.map;
        let (cx, cy) = (
            f64::from(m.x) + f64::from(m.width) / 2.0,
            f64::from(m.y) + f64::from(m.height) / 2.0,
        );
        let mut checked = 0;
        for &(x, y) in &anchors {
            let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
            let expected = if projection.is_disc() {
                let (dx, dy) = (cx - px, cy - py);
                let n = dx.hypot(dy);
                if n < 30.0 || n > f64::from(m.width) / 2.0 - 25.0 {
                    continue; // at the pole the direction is undefined; at the rim clipped
                }
                (dx / n, dy / n)
            } else if u.values[0] > 0.0 {
                (1.0, 0.0)
            } else {
                (0.0, -1.0)
            };
            // The arrow's head sits downwind, so the ink's centroid does too; the shaft crosses
            // the anchor.
            let (gx, gy, n) = ink_centroid(&img, BLUE, (x, y), i64::from(spacing / 2) - 1);
            assert!(n > 20, "{what}: only {n} arrow pixels at ({x}, {y})");
            let along = gx * expected.0 + gy * expected.1;
            let across = -gx * expected.1 + gy * expected.0;
            assert!(
                along > 2.0 && across.abs() < 1.5,
                "{what}: arrow at ({x}, {y}) leans ({gx:.2}, {gy:.2}), expected along {expected:?}"
            );
            assert!(
                count_colour(
                    &img,
                    BLUE,
                    i64::from(x) - 1,
                    i64::from(y) - 1,
                    i64::from(x) + 2,
                    i64::from(y) + 2
                ) > 0,
                "{what}: shaft misses the anchor ({x}, {y})"
            );
            checked += 1;
        }
        assert!(checked > 10, "{what}: only {checked} arrows checked");
    }
}

#[test]
fn objects_are_filled_and_outlined() {
    let mut r = renderer();
    let ids = analytic("ar_id", 1.0, |lon, lat| {
        if (20.0..=60.0).contains(&lon) && (10.0..=40.0).contains(&lat) {
            1.0
        } else if (200.0..=240.0).contains(&lon) && (-40.0..=-10.0).contains(&lat) {
            2.0
        } else {
            0.0
        }
    });
    let flat = analytic("t", 1.0, |_, _| 0.0);
    let outline = [255, 0, 255, 255];
    let alpha = 128u8;
    let layer = ObjectLayer {
        fill_alpha: alpha,
        outline_rgba: Some(outline),
        ..ObjectLayer::new(&ids)
    };
    let scene = Scene::new(&flat, grey_style()).with_layer(Layer::Objects(layer));
    let (img, view) = render(&mut r, &scene, 640, 360);
    let base = colormap_rgb(Colormap::Magma, 0.5);
    let a = f64::from(alpha) / 255.0;
    for (id, centre) in [(1, (40.0, 25.0)), (2, (220.0, -25.0))] {
        let obj = object_rgb(id);
        let want: [u8; 3] = std::array::from_fn(|c| {
            (f64::from(base[c]) * (1.0 - a) + f64::from(obj[c]) * a).round() as u8
        });
        let (x, y) = view.lonlat_to_pixel(centre.0, centre.1).unwrap_or_default();
        assert_close(img.pixel(x, y), want, 2, &format!("object {id} fill"));
    }
    // No object: the field's own colour.
    for place in [(100.0, 0.0), (10.0, 25.0), (40.0, 45.0)] {
        let (x, y) = view.lonlat_to_pixel(place.0, place.1).unwrap_or_default();
        assert_close(img.pixel(x, y), base, 2, &format!("no object at {place:?}"));
    }
    // Outlines on the edges (nearest-cell edges at 19.5° and 60.5° E, 9.5° and 40.5° N).
    for edge in [
        (19.5, 25.0),
        (60.5, 25.0),
        (40.0, 9.5),
        (40.0, 40.5),
        (199.5, -25.0),
    ] {
        assert!(
            ink_near(&img, &view, outline, edge, 1) > 0,
            "no outline at {edge:?}"
        );
    }
    assert_eq!(
        ink_near(&img, &view, outline, (40.0, 25.0), 5),
        0,
        "outline inside"
    );

    // Fill only, no outlines: the edge shows the fill.
    let scene = Scene::new(&flat, grey_style()).with_layer(Layer::Objects(ObjectLayer {
        fill_alpha: 255,
        outline_rgba: None,
        ..ObjectLayer::new(&ids)
    }));
    let (img, view) = render(&mut r, &scene, 640, 360);
    assert_eq!(ink_near(&img, &view, outline, (19.5, 25.0), 2), 0);
    let (x, y) = view.lonlat_to_pixel(21.0, 25.0).unwrap_or_default();
    assert_close(img.pixel(x, y), object_rgb(1), 0, "opaque fill at the edge");
}

#[test]
fn graticule_lines_at_known_meridians_and_parallels() {
    let mut r = renderer();
    let field = lat_field();
    let layer = GraticuleLayer {
        lon_step_deg: 30.0,
        lat_step_deg: 30.0,
        rgba: RED,
    };
    for projection in [
        Projection::default(),
        Projection::Orthographic {
            centre_lon: 0.0,
            centre_lat: 0.0,
        },
        Projection::PolarStereographic {
            pole: Pole::South,
            central_lon: 0.0,
            boundary_lat: -10.0,
        },
    ] {
        let scene = Scene::new(&field, grey_style())
            .with_projection(projection)
            .with_layer(Layer::Graticule(layer));
        let (img, view) = render(&mut r, &scene, 640, 360);
        // On meridians (60°, 330°) and parallels (−30°, −60°).
        for on in [
            (60.0, -15.0),
            (330.0, -45.0),
            (15.0, -30.0),
            (45.0, -60.0),
            (-15.0, -60.0),
        ] {
            assert!(
                ink_near(&img, &view, RED, on, 1) > 0,
                "{projection:?}: no graticule at {on:?}"
            );
        }
        // Between them.
        for off in [(15.0, -15.0), (45.0, -45.0), (-45.0, -20.0)] {
            assert_eq!(
                ink_near(&img, &view, RED, off, 2),
                0,
                "{projection:?}: graticule ink at {off:?}"
            );
        }
    }
}

fn coastlines(view: &MapView) -> Coastlines {
    Coastlines::load(CoastlineResolution::for_view(view)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn coastlines_from_natural_earth() {
    let mut r = renderer();
    let field = lat_field();
    // Coastal places (the 1:110m shoreline passes within 0.11° of each) and places at least 5°
    // from any shoreline.
    let coast = [
        (-5.6, 36.0),     // Tarifa, Strait of Gibraltar
        (-17.4, 14.7),    // Dakar
        (115.75, -31.95), // Perth
        (-71.6, -33.0),   // Valparaíso
        (72.8, 19.0),     // Mumbai
        (20.0, -34.8),    // Cape Agulhas
    ];
    let far = [
        (-140.0, 0.0),  // central Pacific
        (-30.0, -30.0), // South Atlantic
        (20.0, 20.0),   // Sahara
        (100.0, 60.0),  // Siberia
        (-100.0, 40.0), // Great Plains
    ];
    for projection in [
        Projection::Equirectangular { central_lon: 0.0 },
        Projection::Orthographic {
            centre_lon: 0.0,
            centre_lat: 20.0,
        },
    ] {
        let view =
            MapView::new(Canvas::new(640, 360), projection).unwrap_or_else(|e| panic!("{e}"));
        let data = coastlines(&view);
        let scene = Scene::new(&field, grey_style())
            .with_projection(projection)
            .with_layer(Layer::Coastlines(CoastlineLayer {
                rgba: RED,
                ..CoastlineLayer::new(&data)
            }));
        let (img, view) = render(&mut r, &scene, 640, 360);
        for place in coast {
            if view.lonlat_to_pixel(place.0, place.1).is_none() {
                continue; // behind the globe
            }
            assert!(
                ink_near(&img, &view, RED, place, 2) > 0,
                "{projection:?}: no coastline near {place:?}"
            );
        }
        for place in far {
            if view.lonlat_to_pixel(place.0, place.1).is_none() {
                continue;
            }
            assert_eq!(
                ink_near(&img, &view, RED, place, 2),
                0,
                "{projection:?}: coastline ink at {place:?}, far from any coast"
            );
        }
        let drawn = count_colour(&img, RED, 0, 0, 640, 360);
        assert!(
            drawn > 1500,
            "{projection:?}: only {drawn} coastline pixels"
        );
    }
}

#[test]
fn land_fill_from_natural_earth() {
    let mut r = renderer();
    let field = lat_field();
    let green = [0, 255, 0, 255];
    // Checked against the 1:110m polygons with an independent ray-casting test: land (including
    // Chukotka on both sides of the dateline and Antarctica, a ring around the pole) and water
    // (including the Caspian Sea, a hole in Asia).
    let land = [
        (20.0, 20.0),
        (100.0, 60.0),
        (-100.0, 40.0),
        (-40.0, 72.0),
        (135.0, -25.0),
        (175.0, 66.0),
        (-177.0, 66.8),
        (0.0, -80.0),
        (135.0, -75.0),
    ];
    let water = [
        (50.5, 41.5),
        (-140.0, 0.0),
        (-30.0, -30.0),
        (60.0, -50.0),
        (170.0, -50.0),
        (-150.0, 45.0),
        (90.0, -10.0),
    ];
    for projection in [
        Projection::Equirectangular { central_lon: 0.0 },
        Projection::Orthographic {
            centre_lon: 150.0,
            centre_lat: 40.0,
        },
        Projection::PolarStereographic {
            pole: Pole::South,
            central_lon: 0.0,
            boundary_lat: -20.0,
        },
    ] {
        let view =
            MapView::new(Canvas::new(640, 360), projection).unwrap_or_else(|e| panic!("{e}"));
        let data = coastlines(&view);
        let scene = Scene::new(&field, grey_style())
            .with_projection(projection)
            .with_layer(Layer::Coastlines(CoastlineLayer {
                // Invisible shorelines: only the fill is under test here.
                rgba: [0, 0, 0, 0],
                land_rgba: Some(green),
                ..CoastlineLayer::new(&data)
            }));
        let (img, view) = render(&mut r, &scene, 640, 360);
        let mut checked = 0;
        for (places, is_land) in [(&land[..], true), (&water[..], false)] {
            for &(lon, lat) in places {
                let Some((x, y)) = view.lonlat_to_pixel(lon, lat) else {
                    continue;
                };
                let (_, plat) = view.pixel_to_lonlat(x, y).unwrap_or_default();
                let field_colour = colormap_rgb(Colormap::Magma, ((plat + 100.0) / 200.0) as f32);
                let got = img.pixel(x, y);
                if is_land {
                    assert_eq!(got, green, "{projection:?}: land at ({lon}, {lat})");
                } else {
                    assert_close(
                        got,
                        field_colour,
                        COLOUR_TOL,
                        &format!("{projection:?}: water at ({lon}, {lat})"),
                    );
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 6,
            "{projection:?}: only {checked} places visible"
        );
    }
}

#[test]
fn coastline_resolution_suits_the_canvas() {
    let small = MapView::new(Canvas::new(640, 360), Projection::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let wall = MapView::new(Canvas::new(3840, 2160), Projection::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let regional = MapView::new(
        Canvas::new(3840, 2160),
        Projection::PolarStereographic {
            pole: Pole::North,
            central_lon: 0.0,
            boundary_lat: 60.0,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        CoastlineResolution::for_view(&small),
        CoastlineResolution::Low110m
    );
    assert_eq!(
        CoastlineResolution::for_view(&wall),
        CoastlineResolution::Medium50m
    );
    assert_eq!(
        CoastlineResolution::for_view(&regional),
        CoastlineResolution::High10m
    );
    let low = coastlines(&small);
    let medium = coastlines(&wall);
    assert!(
        low.point_count() > 4000 && medium.point_count() > 10 * low.point_count(),
        "110m: {} points, 50m: {} points",
        low.point_count(),
        medium.point_count()
    );
}

#[test]
fn layer_errors_name_the_value() {
    let mut r = renderer();
    let field = lat_field();
    let coarse = analytic("v", 5.0, |_, _| 1.0);
    let msg = |scene: Scene<'_>, r: &mut Renderer| {
        r.render_scene(&scene, Canvas::new(640, 360))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = msg(
        Scene::new(&field, grey_style())
            .with_layer(Layer::Contours(ContourLayer::new(&field, vec![f64::NAN]))),
        &mut r,
    );
    assert!(e.contains("contours") && e.contains("NaN"), "{e}");
    let e = msg(
        Scene::new(&field, grey_style())
            .with_layer(Layer::Vectors(VectorLayer::new(&field, &coarse, 30))),
        &mut r,
    );
    assert!(
        e.contains("vectors") && e.contains("different grids"),
        "{e}"
    );
    let e = msg(
        Scene::new(&field, grey_style())
            .with_layer(Layer::Vectors(VectorLayer::new(&field, &field, 2))),
        &mut r,
    );
    assert!(e.contains("spacing_px 2"), "{e}");
    let e = msg(
        Scene::new(&field, grey_style()).with_layer(Layer::Graticule(GraticuleLayer {
            lon_step_deg: 0.0,
            ..GraticuleLayer::default()
        })),
        &mut r,
    );
    assert!(e.contains("lon_step_deg 0"), "{e}");
}

/// The shader draws an object layer at the bottom of the stack; later ones are rasterised on the
/// CPU. Both give the same picture (tolerance: 0.1 % of pixels, where f32 on the GPU and f64 on
/// the CPU round a pixel centre on a cell edge differently).
#[test]
fn objects_drawn_by_the_shader_match_the_cpu_rasterisation() {
    let mut r = renderer();
    let ids = analytic("ar_id", 1.5, |lon, lat| {
        let river = (lat - 35.0 - 10.0 * (lon / 30.0).sin()).abs() < 4.0;
        if river && (150.0..240.0).contains(&lon) {
            1.0
        } else if (lat + 30.0).abs() < 6.0 && (280.0..350.0).contains(&lon) {
            2.0
        } else {
            0.0
        }
    });
    let field = lat_field();
    // Contours at a level the field never reaches: nothing drawn, but the objects come second.
    let nothing = ContourLayer::new(&field, vec![1.0e6]);
    for projection in [
        Projection::Equirectangular { central_lon: 180.0 },
        Projection::Orthographic {
            centre_lon: 200.0,
            centre_lat: 30.0,
        },
    ] {
        let gpu = Scene::new(&field, grey_style())
            .with_projection(projection)
            .with_layer(Layer::Objects(ObjectLayer::new(&ids)));
        let cpu = Scene::new(&field, grey_style())
            .with_projection(projection)
            .with_layer(Layer::Contours(nothing.clone()))
            .with_layer(Layer::Objects(ObjectLayer::new(&ids)));
        let (a, _) = render(&mut r, &gpu, 960, 540);
        let (b, _) = render(&mut r, &cpu, 960, 540);
        let differing = a
            .pixels
            .chunks_exact(4)
            .zip(b.pixels.chunks_exact(4))
            .filter(|(p, q)| (0..4).any(|c| p[c].abs_diff(q[c]) > 2))
            .count();
        let filled = a
            .pixels
            .chunks_exact(4)
            .filter(|p| same_colour([p[0], p[1], p[2], p[3]], [20, 20, 20, 255]))
            .count();
        assert!(filled > 500, "{projection:?}: only {filled} outline pixels");
        assert!(
            differing * 1000 <= a.pixels.len() / 4,
            "{projection:?}: {differing} pixels differ"
        );
    }
}
