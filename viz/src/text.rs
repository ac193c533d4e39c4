//! Everything drawn in ink: text (8×8 glyphs of `font8x8`), the map frame, the colorbar outline
//! and its ticks, rasterised on the CPU into a coverage mask (one byte per canvas pixel).

use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};
use isotach_core::Field;

use crate::{Layout, PixelRect};

/// The title line of `field`: `{long_name} ({variable}, {units})`, or `{long_name} ({variable})`
/// when the field has no units.
pub fn format_title(field: &Field) -> String {
    let name = if field.long_name.is_empty() {
        &field.variable
    } else {
        &field.long_name
    };
    if field.units.is_empty() {
        format!("{name} ({})", field.variable)
    } else {
        format!("{name} ({}, {})", field.variable, field.units)
    }
}

/// The second line of a frame: `YYYY-MM-DD HH:MM UTC  step N`.
pub fn format_time_line(field: &Field) -> String {
    format!(
        "{}  step {}",
        field.time.format("%Y-%m-%d %H:%M UTC"),
        field.step
    )
}

/// A colorbar tick: where it sits and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// The value at the tick.
    pub value: f64,
    /// Its label.
    pub label: String,
}

/// About `target` "nice" ticks (multiples of 1, 2, 2.5 or 5 × 10ⁿ) inside `lo..=hi`, with labels
/// that show just the decimals the step needs (scientific notation for very large or small
/// values). Empty when the range is empty or not finite.
///
/// ```
/// let ticks = isotach_viz::colorbar_ticks(0.0, 360.0, 5);
/// let labels: Vec<_> = ticks.iter().map(|t| t.label.as_str()).collect();
/// assert_eq!(labels, ["0", "100", "200", "300"]);
/// ```
pub fn colorbar_ticks(lo: f64, hi: f64, target: usize) -> Vec<Tick> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    let target = target.max(2) as f64;
    let base = ((hi - lo) / target).log10().floor() as i32;
    let mut best: Option<(f64, f64, i32, f64)> = None; // (badness, step, exponent, mantissa)
    for exponent in base - 1..=base + 1 {
        for mantissa in [1.0, 2.0, 2.5, 5.0] {
            let step = mantissa * 10f64.powi(exponent);
            let count = ((hi / step + 1e-9).floor() - (lo / step - 1e-9).ceil() + 1.0).max(0.0);
            if count < 2.0 {
                continue;
            }
            let badness = (count - target).abs();
            // Ties go to the larger step (fewer, rounder ticks): candidates ascend.
            if best.is_none_or(|(b, ..)| badness <= b) {
                best = Some((badness, step, exponent, mantissa));
            }
        }
    }
    let Some((_, step, exponent, mantissa)) = best else {
        return Vec::new();
    };
    let magnitude = lo.abs().max(hi.abs());
    let scientific = magnitude >= 1e6 || step < 1e-4;
    let decimals = if mantissa == 2.5 {
        1 - exponent
    } else {
        -exponent
    }
    .max(0) as usize;
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|k| {
            let mut value = k as f64 * step;
            if value.abs() < step * 1e-9 {
                value = 0.0; // no "-0"
            }
            let label = if scientific {
                format!("{value:.2e}")
            } else {
                format!("{value:.decimals$}")
            };
            Tick { value, label }
        })
        .collect()
}

/// The 8×8 bitmap of `c`: rows top to bottom, bit 0 the leftmost pixel. ASCII and Latin-1 are
/// drawn; anything else shows as `?`.
pub(crate) fn glyph(c: char) -> [u8; 8] {
    let c = if c == '\u{2212}' { '-' } else { c };
    match u32::from(c) {
        code @ 0x20..=0x7e => BASIC_LEGACY[code as usize],
        code @ 0xa0..=0xff => LATIN_LEGACY[(code - 0xa0) as usize],
        _ => BASIC_LEGACY[usize::from(b'?')],
    }
}

/// Width in pixels of `text` drawn at `scale`.
pub(crate) fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * 8 * scale
}

/// `text`, shortened with "..." to fit in `max_width` pixels at `scale`.
pub(crate) fn fit_text(text: &str, max_width: u32, scale: u32) -> String {
    if text_width(text, scale) <= max_width {
        return text.to_owned();
    }
    let keep = (max_width / (8 * scale)).saturating_sub(3) as usize;
    let mut out: String = text.chars().take(keep).collect();
    out.push_str("...");
    out
}

/// Ink coverage of the canvas part `window`: 0 = background, 255 = ink. Drawing is in canvas
/// coordinates; what falls outside the window is dropped.
pub(crate) struct Mask {
    window: PixelRect,
    pub(crate) data: Vec<u8>,
}

impl Mask {
    pub(crate) fn new(window: PixelRect) -> Self {
        Self {
            window,
            data: vec![0; window.width as usize * window.height as usize],
        }
    }

    /// Fills a rectangle (canvas coordinates), clipped to the window.
    pub(crate) fn fill(&mut self, x: i64, y: i64, w: i64, h: i64) {
        let win = self.window;
        let (left, right) = (i64::from(win.x), i64::from(win.right()));
        let (top, bottom) = (i64::from(win.y), i64::from(win.bottom()));
        let x0 = (x.clamp(left, right) - left) as usize;
        let x1 = ((x + w).clamp(left, right) - left) as usize;
        let y0 = (y.clamp(top, bottom) - top) as usize;
        let y1 = ((y + h).clamp(top, bottom) - top) as usize;
        for row in y0..y1 {
            let start = row * win.width as usize;
            self.data[start + x0..start + x1].fill(255);
        }
    }

    /// A rectangle outline `thickness` pixels wide, drawn just outside (x, y, w, h).
    pub(crate) fn outline(&mut self, x: i64, y: i64, w: i64, h: i64, thickness: i64) {
        let t = thickness;
        self.fill(x - t, y - t, w + 2 * t, t);
        self.fill(x - t, y + h, w + 2 * t, t);
        self.fill(x - t, y, t, h);
        self.fill(x + w, y, t, h);
    }

    /// A one-pixel circle just outside the disc inscribed in `square`: the pixels whose centres
    /// lie between the disc's radius and one pixel beyond it.
    pub(crate) fn ring(&mut self, square: crate::PixelRect) {
        let r = f64::from(square.width) / 2.0;
        let (cx, cy) = (f64::from(square.x) + r, f64::from(square.y) + r);
        let (x0, y0) = (i64::from(square.x) - 2, i64::from(square.y) - 2);
        let span = i64::from(square.width) + 4;
        for y in y0..y0 + span {
            for x in x0..x0 + span {
                let d = (x as f64 + 0.5 - cx).hypot(y as f64 + 0.5 - cy);
                if d > r && d <= r + 1.0 {
                    self.fill(x, y, 1, 1);
                }
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y), each glyph pixel `scale × scale`.
    pub(crate) fn text(&mut self, x: i64, y: i64, text: &str, scale: u32) {
        let s = i64::from(scale);
        for (i, c) in text.chars().enumerate() {
            let gx = x + i as i64 * 8 * s;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.fill(gx + col * s, y + row as i64 * s, s, s);
                    }
                }
            }
        }
    }
}

/// What the mask of a frame shows; equal keys give equal masks (the renderer reuses the upload).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Annotations {
    pub(crate) title: String,
    pub(crate) time_line: String,
    pub(crate) units: String,
    pub(crate) lo: f32,
    pub(crate) hi: f32,
    /// The map is a disc (orthographic, polar): a circular frame instead of a rectangle.
    pub(crate) disc: bool,
}

/// The ticks drawn for `lo..=hi` on `layout`: the most (of 5, 4, 3, 2 asked for) whose labels do
/// not touch; the 2-tick set when none fit.
pub(crate) fn fitting_ticks(layout: &Layout, lo: f64, hi: f64) -> Vec<(u32, Tick)> {
    let s = layout.scale;
    let place = |ticks: Vec<Tick>| -> Vec<(u32, Tick)> {
        ticks
            .into_iter()
            .map(|t| (layout.colorbar_x((t.value - lo) / (hi - lo)), t))
            .collect()
    };
    let mut fallback = Vec::new();
    for target in [5, 4, 3, 2] {
        let placed = place(colorbar_ticks(lo, hi, target));
        let fits = placed.windows(2).all(|pair| {
            let need =
                (text_width(&pair[0].1.label, s) + text_width(&pair[1].1.label, s)) / 2 + 8 * s;
            pair[1].0 - pair[0].0 >= need
        });
        if fits {
            return placed;
        }
        fallback = placed;
    }
    fallback
}

/// Rasterises the frame's ink for `layout`, the part inside `window`.
pub(crate) fn build_mask(layout: &Layout, notes: &Annotations, window: PixelRect) -> Mask {
    let s = layout.scale;
    let si = i64::from(s);
    let mut mask = Mask::new(window);

    // The title at twice the label size; smaller (down to 1×) before it is shortened, sitting
    // on the bottom of its band.
    let title_scale = (1..=2 * s)
        .rev()
        .find(|&k| text_width(&notes.title, k) <= layout.title.width)
        .unwrap_or(1);
    let title = fit_text(&notes.title, layout.title.width, title_scale);
    let title_y = layout.title.bottom() - 8 * title_scale;
    mask.text(
        i64::from(layout.title.x),
        i64::from(title_y),
        &title,
        title_scale,
    );
    let time_line = fit_text(&notes.time_line, layout.time_line.width, s);
    mask.text(
        i64::from(layout.time_line.x),
        i64::from(layout.time_line.y),
        &time_line,
        s,
    );

    let m = layout.map;
    if notes.disc {
        mask.ring(m);
    } else {
        mask.outline(
            i64::from(m.x),
            i64::from(m.y),
            i64::from(m.width),
            i64::from(m.height),
            1,
        );
    }
    let b = layout.colorbar;
    mask.outline(
        i64::from(b.x),
        i64::from(b.y),
        i64::from(b.width),
        i64::from(b.height),
        1,
    );

    let label_band = layout.tick_labels;
    for (x, tick) in fitting_ticks(layout, f64::from(notes.lo), f64::from(notes.hi)) {
        // Tick marks are `scale` pixels wide, centred on their column, hanging below the bar.
        let tx = i64::from(x) - (si - 1) / 2;
        mask.fill(tx, i64::from(b.bottom()), si, i64::from(layout.tick_length));
        let w = i64::from(text_width(&tick.label, s));
        let left = (i64::from(x) - w / 2)
            .max(i64::from(label_band.x))
            .min(i64::from(label_band.right()) - w);
        mask.text(left, i64::from(label_band.y), &tick.label, s);
    }

    if !notes.units.is_empty() {
        let units = fit_text(&notes.units, layout.units.width, s);
        let w = i64::from(text_width(&units, s));
        let centre = i64::from(b.x) + i64::from(b.width) / 2;
        mask.text(centre - w / 2, i64::from(layout.units.y), &units, s);
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Canvas, layout};

    fn labels(lo: f64, hi: f64) -> Vec<String> {
        colorbar_ticks(lo, hi, 5)
            .into_iter()
            .map(|t| t.label)
            .collect()
    }

    #[test]
    fn nice_ticks() {
        assert_eq!(labels(0.0, 360.0), ["0", "100", "200", "300"]);
        assert_eq!(labels(0.0, 1.0), ["0.00", "0.25", "0.50", "0.75", "1.00"]);
        assert_eq!(labels(-1.0, 1.0), ["-1.0", "-0.5", "0.0", "0.5", "1.0"]);
        assert_eq!(labels(220.5, 311.2), ["225", "250", "275", "300"]);
        assert_eq!(
            labels(0.0, 0.1),
            ["0.000", "0.025", "0.050", "0.075", "0.100"]
        );
        assert_eq!(
            labels(96000.0, 104000.0),
            ["96000", "98000", "100000", "102000", "104000"]
        );
        assert_eq!(
            labels(0.0, 5e6),
            ["0.00e0", "1.00e6", "2.00e6", "3.00e6", "4.00e6", "5.00e6"]
        );
        assert!(labels(1.0, 1.0).is_empty());
        assert!(labels(f64::NAN, 1.0).is_empty());
    }

    #[test]
    fn ticks_lie_inside_the_range() {
        for (lo, hi) in [(0.3, 0.7), (-57.0, 13.0), (1e-6, 3e-6), (250.0, 250.5)] {
            let ticks = colorbar_ticks(lo, hi, 5);
            assert!(ticks.len() >= 2, "{lo}..{hi}: {ticks:?}");
            assert!(
                ticks
                    .iter()
                    .all(|t| t.value >= lo - 1e-12 && t.value <= hi + 1e-12),
                "{ticks:?}"
            );
        }
    }

    #[test]
    fn glyphs_cover_ascii_and_latin1() {
        assert_eq!(glyph(' '), [0; 8]);
        assert_ne!(glyph('A'), [0; 8]);
        assert_ne!(glyph('°'), [0; 8]);
        assert_eq!(glyph('\u{2603}'), glyph('?'));
        assert_eq!(glyph('\u{2212}'), glyph('-'));
    }

    #[test]
    fn text_fits_or_is_shortened() {
        assert_eq!(fit_text("abc", 24, 1), "abc");
        assert_eq!(fit_text("abcdefgh", 48, 1), "abc...");
        assert_eq!(text_width("abc", 2), 48);
    }

    #[test]
    fn mask_draws_frame_and_text_inside_the_canvas() {
        let l = layout(Canvas::new(640, 360));
        let notes = Annotations {
            title: "Title".into(),
            time_line: "2024-01-15 12:00 UTC  step 6".into(),
            units: "K".into(),
            lo: 0.0,
            hi: 1.0,
            disc: false,
        };
        let mask = build_mask(&l, &notes, l.full());
        let at = |x: u32, y: u32| mask.data[(y * 640 + x) as usize];
        // The frame runs one pixel outside the map; the map itself is clear.
        assert_eq!(at(l.map.x - 1, l.map.y + 10), 255);
        assert_eq!(at(l.map.right(), l.map.y + 10), 255);
        assert_eq!(at(l.map.x + 10, l.map.y - 1), 255);
        assert!((l.map.y..l.map.bottom()).all(|y| (l.map.x..l.map.right()).all(|x| at(x, y) == 0)));
        // Some ink in the title and label bands, a tick at the start of the bar.
        let ink = |r: crate::PixelRect| {
            (r.y..r.bottom())
                .flat_map(|y| (r.x..r.right()).map(move |x| (x, y)))
                .filter(|&(x, y)| at(x, y) > 0)
                .count()
        };
        assert!(ink(l.title) > 50);
        assert!(ink(l.time_line) > 50);
        assert!(ink(l.tick_labels) > 20);
        assert_eq!(at(l.colorbar.x, l.colorbar.bottom()), 255);
    }
}
