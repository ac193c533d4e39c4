//! GPU tests of the renderer. They need a wgpu adapter (a GPU, or Mesa's lavapipe:
//! `apt-get install mesa-vulkan-drivers`) and fail, rather than skip, when there is none.
//!
//! Golden images: `ISOTACH_BLESS=1 cargo test -p isotach-viz --test render` rewrites them.

mod common;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use isotach_core::{Colormap, Field, LatLonGrid};
use isotach_viz::{
    Canvas, Layout, Renderer, RgbaImage, ScalarStyle, VizError, colormap_rgb, layout,
};

/// Per-channel tolerance for colours sampled from the map or colorbar: the GPU may round the
/// table index of a value that falls on a boundary the other way (neighbouring entries differ by
/// at most a few units).
const COLOUR_TOL: u8 = 3;
const MAGENTA: [u8; 4] = [255, 0, 255, 255];
const WHITE: [u8; 4] = [255, 255, 255, 255];
const INK: [u8; 4] = [32, 32, 32, 255];

fn renderer() -> Renderer {
    match Renderer::new_headless() {
        Ok(r) => {
            eprintln!("adapter: {}", r.adapter_summary());
            r
        }
        Err(e) => panic!("these tests need a wgpu adapter and none was found: {e}"),
    }
}

/// A field on a regular global grid of `res` degrees, with `value(lon, lat)`.
fn analytic(res: f64, value: impl Fn(f64, f64) -> f32) -> Field {
    let grid = LatLonGrid::regular(res);
    let values = grid
        .lat
        .iter()
        .flat_map(|&lat| grid.lon.iter().map(move |&lon| (lon, lat)))
        .map(|(lon, lat)| value(lon, lat))
        .collect();
    Field {
        variable: "t2m".into(),
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

/// Value = longitude (0..358 on a 2° grid), missing over lat −30..−10, lon 200..240.
fn lon_field() -> Field {
    analytic(2.0, |lon, lat| {
        if (-30.0..=-10.0).contains(&lat) && (200.0..=240.0).contains(&lon) {
            f32::NAN
        } else {
            lon as f32
        }
    })
}

fn render(
    r: &mut Renderer,
    field: &Field,
    style: &ScalarStyle,
    w: u32,
    h: u32,
) -> (RgbaImage, Layout) {
    let image = r
        .render(field, style, Canvas::new(w, h))
        .unwrap_or_else(|e| panic!("render failed: {e}"));
    assert_eq!(
        (image.width, image.height, image.pixels.len()),
        (w, h, (w * h * 4) as usize)
    );
    (image, layout(Canvas::new(w, h)))
}

fn assert_close(got: [u8; 4], want: [u8; 3], tol: u8, what: &str) {
    let ok = (0..3).all(|c| got[c].abs_diff(want[c]) <= tol) && got[3] == 255;
    assert!(ok, "{what}: got {got:?}, expected {want:?} ±{tol}");
}

/// The pixel showing (lon, lat) and the value fraction the shader should give it, computed
/// from the pixel centre's exact longitude/latitude.
fn map_pixel(l: &Layout, lon: f64, lat: f64) -> (u32, u32, f64, f64) {
    let (x, y) = l
        .lonlat_to_pixel(lon, lat)
        .unwrap_or_else(|| panic!("({lon}, {lat}) not on the map"));
    let (plon, plat) = l
        .pixel_to_lonlat(x, y)
        .unwrap_or_else(|| panic!("pixel ({x}, {y}) not on the map"));
    (x, y, plon, plat)
}

#[test]
fn colormap_sampling_follows_the_field() {
    let mut r = renderer();
    let field = lon_field();
    let style = ScalarStyle {
        colormap: Colormap::Viridis,
        range: Some([0.0, 360.0]),
        nan_rgba: MAGENTA,
        ..ScalarStyle::default()
    };
    let (img, l) = render(&mut r, &field, &style, 640, 360);
    // Away from the 358→0 seam and the missing patch, bilinear interpolation of value = lon
    // gives exactly the pixel centre's longitude.
    for lon in [
        3.0, 10.0, 33.3, 60.0, 91.0, 120.0, 150.0, 179.0, 181.0, 210.0, 250.0, 270.0, 300.0, 333.0,
        355.0,
    ] {
        for lat in [85.0, 60.0, 0.5, -45.0, -89.0] {
            let (x, y, plon, _) = map_pixel(&l, lon, lat);
            let want = colormap_rgb(Colormap::Viridis, (plon / 360.0) as f32);
            assert_close(
                img.pixel(x, y),
                want,
                COLOUR_TOL,
                &format!("lon {lon} lat {lat} at ({x}, {y})"),
            );
        }
    }
    // Missing cells, well inside the patch, show nan_rgba exactly.
    for (lon, lat) in [(220.0, -20.0), (205.0, -13.0), (236.0, -27.0)] {
        let (x, y, ..) = map_pixel(&l, lon, lat);
        assert_eq!(img.pixel(x, y), MAGENTA, "NaN cell at lon {lon} lat {lat}");
    }
    // Right next to the patch the nearest valid cell is used: a colour, not magenta.
    let (x, y, ..) = map_pixel(&l, 244.5, -20.0);
    assert_ne!(img.pixel(x, y), MAGENTA);
}

#[test]
fn map_is_north_up_with_longitude_zero_at_the_left() {
    let mut r = renderer();
    let field = analytic(1.0, |_, lat| lat as f32);
    let style = ScalarStyle {
        colormap: Colormap::Magma,
        range: Some([-90.0, 90.0]),
        nan_rgba: MAGENTA,
        ..ScalarStyle::default()
    };
    let (img, l) = render(&mut r, &field, &style, 640, 360);
    let m = l.map;
    for (x, y) in [
        (m.x, m.y),
        (m.x + m.width / 3, m.y + 5),
        (m.right() - 1, m.bottom() - 1),
        (m.x + 100, m.y + 100),
    ] {
        let (_, plat) = l.pixel_to_lonlat(x, y).unwrap_or_default();
        let want = colormap_rgb(Colormap::Magma, ((plat + 90.0) / 180.0) as f32);
        assert_close(
            img.pixel(x, y),
            want,
            COLOUR_TOL,
            &format!("pixel ({x}, {y}) at lat {plat}"),
        );
    }
    // Top row is the bright end, bottom row the dark end.
    assert_close(
        img.pixel(m.x + 10, m.y),
        colormap_rgb(Colormap::Magma, 1.0),
        6,
        "north edge",
    );
    assert_close(
        img.pixel(m.x + 10, m.bottom() - 1),
        colormap_rgb(Colormap::Magma, 0.0),
        6,
        "south edge",
    );

    // The same field stored south to north (latitude ascending) draws the same picture.
    let mut flipped = field.clone();
    let (nlat, nlon) = field.grid.shape();
    flipped.grid = Arc::new(LatLonGrid {
        lat: field.grid.lat.iter().rev().copied().collect(),
        lon: field.grid.lon.clone(),
    });
    flipped.values = (0..nlat)
        .rev()
        .flat_map(|row| field.values[row * nlon..(row + 1) * nlon].to_vec())
        .collect();
    let (img_flipped, _) = render(&mut r, &flipped, &style, 640, 360);
    assert!(
        img_flipped == img,
        "an ascending-latitude grid must draw north-up too"
    );

    // And longitude: value = lon, the left edge is dark (0), the middle is half-way (180).
    let (img, l) = render(
        &mut r,
        &analytic(1.0, |lon, _| lon as f32),
        &ScalarStyle {
            range: Some([0.0, 360.0]),
            ..style
        },
        640,
        360,
    );
    let m = l.map;
    assert_close(
        img.pixel(m.x, m.y + m.height / 2),
        colormap_rgb(Colormap::Magma, 0.5 / 528.0),
        COLOUR_TOL,
        "left edge",
    );
    assert_close(
        img.pixel(m.x + m.width / 2, m.y + 20),
        colormap_rgb(Colormap::Magma, 0.5 + 0.5 / 528.0),
        COLOUR_TOL,
        "centre",
    );
}

#[test]
fn values_beyond_the_range_clamp_to_the_ends() {
    let mut r = renderer();
    let field = lon_field();
    let style = ScalarStyle {
        colormap: Colormap::Cividis,
        range: Some([100.0, 200.0]),
        nan_rgba: MAGENTA,
        ..ScalarStyle::default()
    };
    let (img, l) = render(&mut r, &field, &style, 800, 450);
    for lon in [10.0, 50.0, 90.0] {
        let (x, y, ..) = map_pixel(&l, lon, 30.0);
        assert_eq!(
            img.pixel(x, y)[..3],
            colormap_rgb(Colormap::Cividis, 0.0),
            "lon {lon} below the range"
        );
    }
    for lon in [210.0, 300.0, 350.0] {
        let (x, y, ..) = map_pixel(&l, lon, 30.0);
        assert_eq!(
            img.pixel(x, y)[..3],
            colormap_rgb(Colormap::Cividis, 1.0),
            "lon {lon} above the range"
        );
    }
    let (x, y, plon, _) = map_pixel(&l, 150.0, 30.0);
    assert_close(
        img.pixel(x, y),
        colormap_rgb(Colormap::Cividis, ((plon - 100.0) / 100.0) as f32),
        COLOUR_TOL,
        "inside",
    );
}

#[test]
fn colorbar_background_and_frame() {
    let mut r = renderer();
    let field = lon_field();
    for cmap in Colormap::ALL {
        let style = ScalarStyle {
            colormap: cmap,
            range: Some([0.0, 360.0]),
            nan_rgba: MAGENTA,
            ..ScalarStyle::default()
        };
        let (img, l) = render(&mut r, &field, &style, 640, 360);
        let b = l.colorbar;
        let y = b.y + b.height / 2;
        for t in [0.0, 0.25, 0.5, 0.9, 1.0] {
            let x = l.colorbar_x(t);
            let centre = (f64::from(x - b.x) + 0.5) / f64::from(b.width);
            assert_close(
                img.pixel(x, y),
                colormap_rgb(cmap, centre as f32),
                COLOUR_TOL,
                &format!("{} colorbar t={t}", cmap.name()),
            );
        }
        assert_eq!(img.pixel(0, 0), WHITE, "background");
        assert_eq!(img.pixel(639, 359), WHITE, "background");
        let m = l.map;
        assert_eq!(
            img.pixel(m.x - 1, m.y + m.height / 2),
            INK,
            "map frame, left"
        );
        assert_eq!(
            img.pixel(m.right(), m.y + m.height / 2),
            INK,
            "map frame, right"
        );
        assert_eq!(img.pixel(m.x + m.width / 2, m.y - 1), INK, "map frame, top");
        assert_eq!(
            img.pixel(m.x + m.width / 2, m.bottom()),
            INK,
            "map frame, bottom"
        );
        assert_eq!(img.pixel(b.x, b.bottom()), INK, "first tick");
        let dark = |rect: isotach_viz::PixelRect| {
            (rect.y..rect.bottom())
                .flat_map(|y| (rect.x..rect.right()).map(move |x| (x, y)))
                .filter(|&(x, y)| img.pixel(x, y) == INK)
                .count()
        };
        assert!(dark(l.title) > 100, "title has ink");
        assert!(dark(l.time_line) > 50, "time line has ink");
        assert!(dark(l.tick_labels) > 30, "tick labels have ink");
        assert!(dark(l.units) > 5, "units have ink");
    }
}

#[test]
fn frames_reuse_resources_and_repeat_exactly() {
    let mut r = renderer();
    let a = lon_field();
    let b = analytic(5.0, |lon, lat| {
        (lon.to_radians().sin() * lat.to_radians().cos()) as f32
    });
    let style = ScalarStyle::new(Colormap::Coolwarm);
    let (first, _) = render(&mut r, &a, &style, 640, 360);
    let (other, _) = render(&mut r, &b, &style, 400, 300);
    assert_eq!((other.width, other.height), (400, 300));
    let (again, _) = render(&mut r, &a, &style, 640, 360);
    assert!(
        first == again,
        "the same field and canvas must give the same pixels after a size change"
    );
    // Another step of the same field: only the time line changes.
    let mut later = a.clone();
    later.step = 7;
    later.time += chrono::Duration::hours(1);
    let (third, l) = render(&mut r, &later, &style, 640, 360);
    let changed: Vec<(u32, u32)> = (0..360)
        .flat_map(|y| (0..640).map(move |x| (x, y)))
        .filter(|&(x, y)| first.pixel(x, y) != third.pixel(x, y))
        .collect();
    assert!(!changed.is_empty(), "the time line should change");
    assert!(
        changed.iter().all(|&(x, y)| l.time_line.contains(x, y)),
        "only the time line changes"
    );
}

#[test]
fn regional_grid_leaves_the_rest_missing() {
    let mut r = renderer();
    // Europe-ish, given in −20..40 east, 70..30 north, 0.5°.
    let lat: Vec<f64> = (0..=80).map(|i| 70.0 - f64::from(i) * 0.5).collect();
    let lon: Vec<f64> = (0..=120).map(|j| -20.0 + f64::from(j) * 0.5).collect();
    let mut field = analytic(90.0, |_, _| 0.0);
    field.values = vec![1.0; lat.len() * lon.len()];
    field.grid = Arc::new(LatLonGrid { lat, lon });
    let style = ScalarStyle {
        colormap: Colormap::Viridis,
        range: Some([0.0, 1.0]),
        nan_rgba: MAGENTA,
        ..ScalarStyle::default()
    };
    let (img, l) = render(&mut r, &field, &style, 640, 360);
    for (lon, lat) in [(10.0, 50.0), (350.0, 60.0), (35.0, 35.0)] {
        let (x, y, ..) = map_pixel(&l, lon, lat);
        assert_eq!(
            img.pixel(x, y)[..3],
            colormap_rgb(Colormap::Viridis, 1.0),
            "inside the grid at {lon} {lat}"
        );
    }
    for (lon, lat) in [(180.0, 0.0), (100.0, 50.0), (10.0, 20.0), (10.0, 80.0)] {
        let (x, y, ..) = map_pixel(&l, lon, lat);
        assert_eq!(img.pixel(x, y), MAGENTA, "outside the grid at {lon} {lat}");
    }
}

#[test]
fn errors_name_the_value() {
    let mut r = renderer();
    let style = ScalarStyle::default();
    let mut field = lon_field();
    let max = r.max_texture_size();
    let msg = |e: Result<RgbaImage, VizError>| e.err().map(|e| e.to_string()).unwrap_or_default();

    let err = msg(r.render(&field, &style, Canvas::new(max + 1, 100)));
    assert!(
        err.contains(&format!("{}×100", max + 1))
            && err.contains(&format!("maximum texture size of {max}")),
        "{err}"
    );

    let err = msg(r.render(&field, &style, Canvas::new(64, 64)));
    assert!(err.contains("64×64") && err.contains("too small"), "{err}");

    let bad_range = ScalarStyle {
        range: Some([1.0, f32::NAN]),
        ..style.clone()
    };
    let err = msg(r.render(&field, &bad_range, Canvas::new(640, 360)));
    assert!(err.contains("colour range [1, NaN]"), "{err}");

    field.values.pop();
    let err = msg(r.render(&field, &style, Canvas::new(640, 360)));
    assert_eq!(
        err,
        "field t2m: 16379 values do not match the grid shape 91 lat × 180 lon = 16380"
    );

    // The renderer still works after refusing those.
    render(&mut r, &lon_field(), &style, 640, 360);
}

#[test]
fn golden_analytic_640x360() {
    let mut r = renderer();
    // A smooth temperature-like pattern with a missing patch over the Arabian Sea.
    let field = analytic(1.0, |lon, lat| {
        if (10.0..=30.0).contains(&lat) && (60.0..=100.0).contains(&lon) {
            return f32::NAN;
        }
        let (phi, lam) = (lat.to_radians(), lon.to_radians());
        (250.0
            + 40.0 * phi.cos()
            + 12.0 * (2.0 * lam).sin() * phi.cos().powi(2)
            + 4.0 * (5.0 * phi).sin()) as f32
    });
    let style = ScalarStyle::new(Colormap::Viridis);
    let (img, _) = render(&mut r, &field, &style, 640, 360);
    common::check_golden(&img, "analytic_640x360.png", &r.adapter_summary());
}
