//! Objects (e.g. atmospheric-river labels): translucent fills and outlines from an object-id field.

use isotach_core::Field;

use crate::contour::check_field_shape;
use crate::overlay::{Overlay, line_width};
use crate::projection::MapView;
use crate::sample::nearest;
use crate::{PixelRect, VizError};

/// Draws the objects of an id field: cells with id 0 (or missing) are no object; every other id
/// is one object, filled in its own colour ([`object_rgb`]) and outlined.
#[derive(Debug, Clone)]
pub struct ObjectLayer<'a> {
    /// Object ids per cell (whole numbers stored as floats; 0 or NaN = no object).
    pub ids: &'a Field,
    /// Opacity of the fills, 0 (no fill) to 255.
    pub fill_alpha: u8,
    /// Colour of the outlines, drawn just inside each object's edge; `None`: no outlines.
    pub outline_rgba: Option<[u8; 4]>,
}

impl<'a> ObjectLayer<'a> {
    /// Dark outlines and fills at 35 % opacity.
    pub fn new(ids: &'a Field) -> Self {
        Self {
            ids,
            fill_alpha: 90,
            outline_rgba: Some([20, 20, 20, 255]),
        }
    }

    pub(crate) fn draw(&self, view: &MapView, overlay: &mut Overlay) -> Result<(), VizError> {
        check_field_shape("objects", self.ids)?;
        let m = view.layout.map;
        let width = line_width(view.layout.scale);
        // Only the window's pixels are drawn; an outline needs the ids `width` pixels around them.
        let shown = overlay.window.intersection(&m);
        if shown.width == 0 {
            return Ok(());
        }
        let r = PixelRect {
            x: shown.x.saturating_sub(width),
            y: shown.y.saturating_sub(width),
            width: shown.width + 2 * width,
            height: shown.height + 2 * width,
        }
        .intersection(&m);
        let (w, h) = (r.width as usize, r.height as usize);
        // The id under every pixel centre of `r` (0 off the globe/disc and outside the grid).
        let mut ids = vec![0i64; w * h];
        for row in 0..h {
            for col in 0..w {
                let (x, y) = (r.x + col as u32, r.y + row as u32);
                if let Some((lon, lat)) = view.pixel_to_lonlat(x, y)
                    && let Some(v) = nearest(self.ids, lon, lat)
                    && v.is_finite()
                {
                    ids[row * w + col] = v.round() as i64;
                }
            }
        }
        // The id at canvas pixel (x, y); `None` off the map, where every object ends.
        let id_at = |x: i64, y: i64| -> Option<i64> {
            let (col, row) = (x - i64::from(r.x), y - i64::from(r.y));
            (x >= 0 && y >= 0 && m.contains(x as u32, y as u32))
                .then(|| ids[row as usize * w + col as usize])
        };
        for y in shown.y..shown.bottom() {
            for x in shown.x..shown.right() {
                let (xi, yi) = (i64::from(x), i64::from(y));
                let Some(id) = id_at(xi, yi).filter(|&id| id != 0) else {
                    continue;
                };
                // An edge pixel has a pixel of another id within the line width (4-neighbours).
                let edge = self.outline_rgba.is_some()
                    && (1..=i64::from(width)).any(|k| {
                        [(xi - k, yi), (xi + k, yi), (xi, yi - k), (xi, yi + k)]
                            .into_iter()
                            .any(|(nx, ny)| id_at(nx, ny) != Some(id))
                    });
                match (edge, self.outline_rgba) {
                    (true, Some(rgba)) => overlay.blend(x, y, rgba),
                    _ if self.fill_alpha > 0 => {
                        let [r, g, b] = object_rgb(id);
                        overlay.blend(x, y, [r, g, b, self.fill_alpha]);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Fill colour of object `id`: a fixed palette of twelve distinct colours (ColorBrewer Paired),
/// cycled by id, so an object keeps its colour from frame to frame.
pub fn object_rgb(id: i64) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 12] = [
        [31, 120, 180],
        [227, 26, 28],
        [51, 160, 44],
        [255, 127, 0],
        [106, 61, 154],
        [177, 89, 40],
        [166, 206, 227],
        [251, 154, 153],
        [178, 223, 138],
        [253, 191, 111],
        [202, 178, 214],
        [255, 255, 153],
    ];
    PALETTE[(id.unsigned_abs() % 12) as usize]
}
