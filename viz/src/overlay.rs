//! The CPU-drawn overlay: every layer above the scalar field is rasterised here, in order, and
//! the shader composites the result over the field (`mix(field, overlay.rgb, overlay.a)`).

use crate::PixelRect;
use crate::projection::MapView;
use crate::text::{glyph, text_width};

/// The part `window` of the canvas as an RGBA8 image with straight (not premultiplied) alpha;
/// fully transparent when new. Layers draw in canvas coordinates; what falls outside the window is
/// dropped, so a wall tile pays only for its own viewport.
pub(crate) struct Overlay {
    pub(crate) window: PixelRect,
    pub(crate) rgba: Vec<u8>,
}

impl Overlay {
    /// An overlay covering the canvas part `window`.
    pub(crate) fn new(window: PixelRect) -> Self {
        Self {
            window,
            rgba: vec![0; window.width as usize * window.height as usize * 4],
        }
    }

    /// Paints `src` over canvas pixel (x, y) ("over" compositing in straight alpha).
    pub(crate) fn blend(&mut self, x: u32, y: u32, src: [u8; 4]) {
        if !self.window.contains(x, y) || src[3] == 0 {
            return;
        }
        let w = self.window;
        let i = ((y - w.y) as usize * w.width as usize + (x - w.x) as usize) * 4;
        let dst = &mut self.rgba[i..i + 4];
        if src[3] == 255 || dst[3] == 0 {
            dst.copy_from_slice(&src);
            return;
        }
        let sa = f32::from(src[3]) / 255.0;
        let da = f32::from(dst[3]) / 255.0;
        let out_a = sa + da * (1.0 - sa);
        for c in 0..3 {
            let v = (f32::from(src[c]) * sa + f32::from(dst[c]) * da * (1.0 - sa)) / out_a;
            dst[c] = v.round().clamp(0.0, 255.0) as u8;
        }
        dst[3] = (out_a * 255.0).round().clamp(0.0, 255.0) as u8;
    }

    /// An empty coverage for lines clipped to `clip` (canvas coordinates) and to this window.
    pub(crate) fn coverage(&self, clip: PixelRect) -> Coverage {
        Coverage::new(self.window.intersection(&clip))
    }

    /// Paints `rgba` wherever `coverage` is set.
    pub(crate) fn blend_coverage(&mut self, coverage: &Coverage, rgba: [u8; 4]) {
        let area = coverage.area;
        for (i, &set) in coverage.set.iter().enumerate() {
            if set {
                let (x, y) = (i as u32 % area.width, i as u32 / area.width);
                self.blend(area.x + x, area.y + y, rgba);
            }
        }
    }

    /// Fills a rectangle (clipped to the overlay) with `rgba`.
    pub(crate) fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, rgba: [u8; 4]) {
        let win = self.window;
        let x0 = x.clamp(i64::from(win.x), i64::from(win.right())) as u32;
        let x1 = (x + w).clamp(i64::from(win.x), i64::from(win.right())) as u32;
        let y0 = y.clamp(i64::from(win.y), i64::from(win.bottom())) as u32;
        let y1 = (y + h).clamp(i64::from(win.y), i64::from(win.bottom())) as u32;
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.blend(xx, yy, rgba);
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y), glyph pixels `scale × scale`.
    pub(crate) fn text(&mut self, x: i64, y: i64, text: &str, scale: u32, rgba: [u8; 4]) {
        let s = i64::from(scale);
        for (i, c) in text.chars().enumerate() {
            let gx = x + i as i64 * 8 * s;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.fill_rect(gx + col * s, y + row as i64 * s, s, s, rgba);
                    }
                }
            }
        }
    }

    /// A label centred on (cx, cy) on a box of `box_rgba`, one glyph pixel of padding around it.
    pub(crate) fn label(
        &mut self,
        cx: f64,
        cy: f64,
        text: &str,
        scale: u32,
        ink: [u8; 4],
        box_rgba: [u8; 4],
    ) -> PixelRect {
        let s = i64::from(scale);
        let w = i64::from(text_width(text, scale));
        let h = 8 * s;
        let (x, y) = (cx.round() as i64 - w / 2, cy.round() as i64 - h / 2);
        self.fill_rect(x - s, y - s, w + 2 * s, h + 2 * s, box_rgba);
        self.text(x, y, text, scale, ink);
        PixelRect {
            x: (x - s).max(0) as u32,
            y: (y - s).max(0) as u32,
            width: (w + 2 * s) as u32,
            height: (h + 2 * s) as u32,
        }
    }
}

/// Which pixels a layer's lines touch, so each pixel is painted once even where lines cross
/// (a translucent colour would otherwise darken at every crossing). Only pixels inside `area` (the
/// layer's clip rectangle within the overlay's window, canvas coordinates) are kept.
pub(crate) struct Coverage {
    area: PixelRect,
    pub(crate) set: Vec<bool>,
}

impl Coverage {
    fn new(area: PixelRect) -> Self {
        Self {
            area,
            set: vec![false; area.width as usize * area.height as usize],
        }
    }

    /// Marks canvas pixel (x, y) when it lies inside the area.
    pub(crate) fn mark(&mut self, x: i64, y: i64) {
        let a = self.area;
        if x >= i64::from(a.x)
            && x < i64::from(a.right())
            && y >= i64::from(a.y)
            && y < i64::from(a.bottom())
        {
            let (col, row) = ((x - i64::from(a.x)) as usize, (y - i64::from(a.y)) as usize);
            self.set[row * a.width as usize + col] = true;
        }
    }

    /// True when canvas pixel (x, y) is marked.
    #[cfg(test)]
    pub(crate) fn is_set(&self, x: u32, y: u32) -> bool {
        self.area.contains(x, y)
            && self.set
                [(y - self.area.y) as usize * self.area.width as usize + (x - self.area.x) as usize]
    }

    /// A straight line between canvas coordinates `a` and `b`, `width` pixels thick (a square
    /// brush stepped at most half a pixel at a time).
    pub(crate) fn line(&mut self, a: (f64, f64), b: (f64, f64), width: u32) {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = dx.abs().max(dy.abs());
        if !len.is_finite() {
            return;
        }
        // Lines far longer than any canvas are broken input (e.g. a projected point at infinity).
        let steps = ((len * 2.0).ceil() as i64).clamp(1, 1 << 16);
        let half = (f64::from(width) - 1.0) / 2.0;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (a.0 + dx * t - half, a.1 + dy * t - half);
            let (x0, y0) = (x.floor() as i64, y.floor() as i64);
            for oy in 0..i64::from(width) {
                for ox in 0..i64::from(width) {
                    self.mark(x0 + ox, y0 + oy);
                }
            }
        }
    }

    /// The straight (in lon/lat) line from `a` to `b` through the projection: split at the map's
    /// seam and cut at the edge of the visible globe/disc.
    pub(crate) fn geo_line(&mut self, view: &MapView, a: (f64, f64), b: (f64, f64), width: u32) {
        let max_step = if view.projection.is_disc() {
            1.0
        } else {
            360.0
        };
        for [p, q] in view.segment_pieces(a, b, max_step) {
            self.line(p, q, width);
        }
    }
}

/// Line width in pixels of layers on a layout of glyph scale `scale`.
pub(crate) fn line_width(scale: u32) -> u32 {
    scale.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_compositing() {
        let mut o = Overlay::new(PixelRect {
            x: 0,
            y: 0,
            width: 2,
            height: 1,
        });
        o.blend(0, 0, [255, 0, 0, 128]);
        assert_eq!(&o.rgba[0..4], &[255, 0, 0, 128]);
        o.blend(0, 0, [0, 0, 255, 128]);
        // Half blue over half red: alpha 0.75, blue 2/3 of the colour.
        assert_eq!(&o.rgba[0..4], &[85, 0, 170, 192]);
        o.blend(0, 0, [1, 2, 3, 255]);
        assert_eq!(&o.rgba[0..4], &[1, 2, 3, 255]);
        assert_eq!(&o.rgba[4..8], &[0, 0, 0, 0]);
    }

    #[test]
    fn lines_are_clipped_and_continuous() {
        let clip = PixelRect {
            x: 2,
            y: 2,
            width: 10,
            height: 10,
        };
        let canvas = |w| {
            Overlay::new(PixelRect {
                x: 0,
                y: 0,
                width: w,
                height: 20,
            })
        };
        let mut c = canvas(20).coverage(clip);
        c.line((0.5, 5.5), (19.5, 5.5), 1);
        assert!((2..12).all(|x| c.is_set(x, 5)));
        assert!(!c.is_set(1, 5) && !c.is_set(12, 5) && !c.is_set(5, 4));
        let mut c = canvas(20).coverage(clip);
        c.line((2.5, 2.5), (11.5, 11.5), 1);
        assert!((2..12).all(|i| c.is_set(i, i)));
        // A window offset into the canvas keeps the same pixels, in canvas coordinates.
        let window = Overlay::new(PixelRect {
            x: 5,
            y: 0,
            width: 15,
            height: 20,
        });
        let mut c = window.coverage(clip);
        c.line((0.5, 5.5), (19.5, 5.5), 1);
        assert!((5..12).all(|x| c.is_set(x, 5)));
        assert!(!c.is_set(4, 5) && !c.is_set(12, 5));
    }
}
