//! Where each part of a frame goes, in pixels.

use crate::{Canvas, VizError};

/// A rectangle of pixels: columns `x..x + width`, rows `y..y + height`, (0, 0) top-left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PixelRect {
    /// Leftmost column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl PixelRect {
    /// One past the rightmost column.
    pub fn right(&self) -> u32 {
        self.x + self.width
    }

    /// One past the bottom row.
    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }

    /// True when pixel (x, y) lies inside.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && x < self.right() && y >= self.y && y < self.bottom()
    }

    /// The pixels inside both rectangles (empty, at `self`'s corner, when they do not meet).
    pub fn intersection(&self, other: &PixelRect) -> PixelRect {
        let (x0, y0) = (self.x.max(other.x), self.y.max(other.y));
        let (x1, y1) = (
            self.right().min(other.right()),
            self.bottom().min(other.bottom()),
        );
        if x1 <= x0 || y1 <= y0 {
            return PixelRect {
                x: self.x,
                y: self.y,
                width: 0,
                height: 0,
            };
        }
        PixelRect {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        }
    }

    /// As `[x, y, width, height]` in floats, for the shader.
    pub(crate) fn as_f32(&self) -> [f32; 4] {
        [
            self.x as f32,
            self.y as f32,
            self.width as f32,
            self.height as f32,
        ]
    }
}

/// Smallest map drawn, in pixels (width × height).
pub(crate) const MIN_MAP: (u32, u32) = (32, 16);

/// The parts of a frame, from top to bottom: title line, time line, map (inside a 1-pixel dark
/// frame just outside [`Layout::map`]), colorbar, tick marks, tick labels, units.
///
/// Everything scales with [`Layout::scale`] = max(1, ⌊min(width / 640, height / 360)⌋): the
/// labels are `8 × scale` pixels tall, the title twice that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// The canvas laid out.
    pub canvas: Canvas,
    /// Size multiplier of the 8×8 glyphs (the title uses twice this).
    pub scale: u32,
    /// Empty border around everything.
    pub margin: u32,
    /// The title line: `{long_name} ({variable}, {units})`, left-aligned.
    pub title: PixelRect,
    /// The second line: `YYYY-MM-DD HH:MM UTC  step N`, left-aligned.
    pub time_line: PixelRect,
    /// The map: with the default projection longitude 0 at the left edge to 360 at the right,
    /// latitude 90 at the top to -90 at the bottom, width = 2 × height; square for the disc
    /// projections (see [`MapView`](crate::MapView)).
    pub map: PixelRect,
    /// The colour gradient under the map (left = range start).
    pub colorbar: PixelRect,
    /// Length of the tick marks below the colorbar.
    pub tick_length: u32,
    /// The band of the tick labels (full canvas width inside the margins).
    pub tick_labels: PixelRect,
    /// The band of the units label, centred under the colorbar.
    pub units: PixelRect,
}

/// Lays out `canvas`. Never fails: on a canvas too small for a frame the parts shrink and may
/// overlap (the map keeps at least 2×1 pixels); [`try_layout`] refuses such canvases, and
/// [`Renderer::render`](crate::Renderer::render) uses that.
///
/// ```
/// let l = isotach_viz::layout(isotach_viz::Canvas::new(640, 360));
/// assert_eq!(l.map.width, 2 * l.map.height);
/// assert_eq!(l.lonlat_to_pixel(0.0, 90.0), Some((l.map.x, l.map.y)));
/// ```
pub fn layout(canvas: Canvas) -> Layout {
    compute(canvas, 2)
}

/// Lays out `canvas`; fails when it leaves less than 32×16 pixels for the map.
pub fn try_layout(canvas: Canvas) -> Result<Layout, VizError> {
    try_layout_with_aspect(canvas, 2)
}

/// Lays out `canvas` with a map `aspect` times as wide as high (2 for equirectangular, 1 for the
/// disc projections); fails when the map would be narrower than 32 or lower than 16 pixels.
pub(crate) fn try_layout_with_aspect(canvas: Canvas, aspect: u32) -> Result<Layout, VizError> {
    let l = compute(canvas, aspect);
    if l.map.width < MIN_MAP.0 || l.map.height < MIN_MAP.1 {
        return Err(VizError::CanvasTooSmall {
            width: canvas.width_px,
            height: canvas.height_px,
            map_width: l.map.width,
            map_height: l.map.height,
            min_map_width: MIN_MAP.0,
            min_map_height: MIN_MAP.1,
        });
    }
    Ok(l)
}

fn compute(canvas: Canvas, aspect: u32) -> Layout {
    let (w, h) = (canvas.width_px, canvas.height_px);
    let s = (w / 640).min(h / 360).max(1);
    let margin = 8 * s;
    let title_h = 16 * s;
    let line_gap = 4 * s;
    let line_h = 8 * s;
    let header_h = title_h + line_gap + line_h;
    let gap_above_map = 8 * s;
    let gap_below_map = 8 * s;
    let bar_h = 10 * s;
    let tick_length = 4 * s;
    let label_gap = 2 * s;
    let units_gap = 4 * s;
    let footer_h = gap_below_map + bar_h + tick_length + label_gap + line_h + units_gap + line_h;

    // The frame takes one pixel on each side of the map.
    let avail_h = h.saturating_sub(2 * margin + header_h + gap_above_map + footer_h);
    let avail_w = w.saturating_sub(2 * margin + 2);
    let map_h = avail_h.min(avail_w / aspect).max(1);
    let map_w = aspect * map_h;

    // Centre the whole stack vertically and the map horizontally.
    let stack_h = header_h + gap_above_map + map_h + footer_h;
    let top = h.saturating_sub(stack_h) / 2;
    let inner_w = w.saturating_sub(2 * margin).max(1);
    let title = PixelRect {
        x: margin,
        y: top,
        width: inner_w,
        height: title_h,
    };
    let time_line = PixelRect {
        x: margin,
        y: title.bottom() + line_gap,
        width: inner_w,
        height: line_h,
    };
    let map = PixelRect {
        x: w.saturating_sub(map_w) / 2,
        y: time_line.bottom() + gap_above_map,
        width: map_w,
        height: map_h,
    };
    let bar_w = (map_w * 4 / 5).max(1);
    let colorbar = PixelRect {
        x: map.x + (map_w - bar_w) / 2,
        y: map.bottom() + gap_below_map,
        width: bar_w,
        height: bar_h,
    };
    let tick_labels = PixelRect {
        x: margin,
        y: colorbar.bottom() + tick_length + label_gap,
        width: inner_w,
        height: line_h,
    };
    let units = PixelRect {
        x: margin,
        y: tick_labels.bottom() + units_gap,
        width: inner_w,
        height: line_h,
    };
    Layout {
        canvas,
        scale: s,
        margin,
        title,
        time_line,
        map,
        colorbar,
        tick_length,
        tick_labels,
        units,
    }
}

impl Layout {
    /// The whole canvas as a rectangle.
    pub fn full(&self) -> PixelRect {
        PixelRect {
            x: 0,
            y: 0,
            width: self.canvas.width_px,
            height: self.canvas.height_px,
        }
    }

    /// The map pixel that shows (`lon`, `lat`) in degrees on the default map (equirectangular,
    /// central longitude 180; for other projections use [`MapView`](crate::MapView)); longitude
    /// wraps (−90 is 270), latitude must lie in −90..=90. `None` for latitudes outside that or
    /// non-finite input.
    pub fn lonlat_to_pixel(&self, lon: f64, lat: f64) -> Option<(u32, u32)> {
        if !lon.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return None;
        }
        let lon = lon.rem_euclid(360.0);
        let (w, h) = (f64::from(self.map.width), f64::from(self.map.height));
        // Both fractions are in 0..=1, so the casts stay within the map.
        let col = ((lon / 360.0 * w).floor() as u32).min(self.map.width - 1);
        let row = (((90.0 - lat) / 180.0 * h).floor() as u32).min(self.map.height - 1);
        Some((self.map.x + col, self.map.y + row))
    }

    /// The (lon, lat) at the centre of map pixel (x, y), the point the shader samples there;
    /// `None` outside the map.
    pub fn pixel_to_lonlat(&self, x: u32, y: u32) -> Option<(f64, f64)> {
        if !self.map.contains(x, y) {
            return None;
        }
        let u = (f64::from(x - self.map.x) + 0.5) / f64::from(self.map.width);
        let v = (f64::from(y - self.map.y) + 0.5) / f64::from(self.map.height);
        Some((u * 360.0, 90.0 - v * 180.0))
    }

    /// The colorbar column of value fraction `t` (0 = range start, 1 = end), clamped.
    pub fn colorbar_x(&self, t: f64) -> u32 {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let col =
            ((t * f64::from(self.colorbar.width)).floor() as u32).min(self.colorbar.width - 1);
        self.colorbar.x + col
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lay(w: u32, h: u32) -> Layout {
        try_layout(Canvas::new(w, h)).unwrap_or_else(|e| panic!("{w}×{h}: {e}"))
    }

    #[test]
    fn map_is_two_to_one_and_inside_the_canvas() {
        for (w, h) in [
            (640, 360),
            (1280, 720),
            (3840, 2160),
            (300, 300),
            (2000, 300),
            (200, 140),
        ] {
            let l = lay(w, h);
            assert_eq!(l.map.width, 2 * l.map.height, "{w}×{h}");
            // Frame pixels around the map stay on the canvas, clear of the margins.
            assert!(
                l.map.x > l.margin && l.map.right() < w - l.margin,
                "{w}×{h}: {l:?}"
            );
            assert!(
                l.title.y >= l.margin && l.units.bottom() <= h - l.margin,
                "{w}×{h}: {l:?}"
            );
            // Top to bottom without overlap.
            assert!(l.title.bottom() <= l.time_line.y);
            assert!(l.time_line.bottom() < l.map.y - 1);
            assert!(l.map.bottom() + 1 < l.colorbar.y);
            assert!(l.colorbar.bottom() + l.tick_length <= l.tick_labels.y);
            assert!(l.tick_labels.bottom() <= l.units.y);
            // The colorbar sits centred under the map.
            assert!(l.colorbar.x >= l.map.x && l.colorbar.right() <= l.map.right());
            assert!((l.colorbar.x - l.map.x).abs_diff(l.map.right() - l.colorbar.right()) <= 1);
        }
    }

    #[test]
    fn layout_at_640x360() {
        let l = lay(640, 360);
        assert_eq!(l.scale, 1);
        assert_eq!(
            l.map,
            PixelRect {
                x: 56,
                y: 44,
                width: 528,
                height: 264
            }
        );
        assert_eq!(lay(1280, 720).scale, 2);
        assert_eq!(lay(1280, 720).map.height, 528);
    }

    #[test]
    fn too_small_canvas_is_an_error() {
        let err = try_layout(Canvas::new(100, 100))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("100×100") && err.contains("too small"),
            "{err}"
        );
        assert!(try_layout(Canvas::new(0, 0)).is_err());
        // The infallible layout still gives usable numbers.
        for (w, h) in [(0, 0), (1, 1), (100, 100), (5000, 10)] {
            let l = layout(Canvas::new(w, h));
            assert!(l.map.width >= 2 && l.map.height >= 1);
            assert!(l.lonlat_to_pixel(123.0, -45.0).is_some());
        }
    }

    #[test]
    fn lonlat_corners_and_centre() {
        let l = lay(640, 360);
        let m = l.map;
        assert_eq!(l.lonlat_to_pixel(0.0, 90.0), Some((m.x, m.y)));
        assert_eq!(l.lonlat_to_pixel(360.0, 90.0), Some((m.x, m.y)));
        assert_eq!(
            l.lonlat_to_pixel(359.999, -90.0),
            Some((m.right() - 1, m.bottom() - 1))
        );
        assert_eq!(
            l.lonlat_to_pixel(180.0, 0.0),
            Some((m.x + m.width / 2, m.y + m.height / 2))
        );
        assert_eq!(
            l.lonlat_to_pixel(-90.0, 10.0),
            l.lonlat_to_pixel(270.0, 10.0)
        );
        assert_eq!(l.lonlat_to_pixel(10.0, 90.5), None);
        assert_eq!(l.lonlat_to_pixel(f64::NAN, 0.0), None);
        // East is to the right, north is up.
        let (x1, y1) = l.lonlat_to_pixel(100.0, 40.0).unwrap_or_default();
        let (x2, y2) = l.lonlat_to_pixel(120.0, -40.0).unwrap_or_default();
        assert!(x2 > x1 && y2 > y1);
    }

    #[test]
    fn pixel_centres_round_trip() {
        let l = lay(1280, 720);
        for (x, y) in [
            (l.map.x, l.map.y),
            (l.map.x + 17, l.map.y + 300),
            (l.map.right() - 1, l.map.bottom() - 1),
        ] {
            let (lon, lat) = l.pixel_to_lonlat(x, y).unwrap_or_default();
            assert_eq!(l.lonlat_to_pixel(lon, lat), Some((x, y)));
        }
        assert_eq!(l.pixel_to_lonlat(0, 0), None);
    }

    #[test]
    fn colorbar_columns() {
        let l = lay(640, 360);
        assert_eq!(l.colorbar_x(0.0), l.colorbar.x);
        assert_eq!(l.colorbar_x(1.0), l.colorbar.right() - 1);
        assert_eq!(l.colorbar_x(-1.0), l.colorbar.x);
        assert_eq!(l.colorbar_x(0.5), l.colorbar.x + l.colorbar.width / 2);
    }
}
