//! Objects (e.g. atmospheric-river labels): translucent fills and outlines from an object-id field.

use isotach_core::Field;

use crate::VizError;
use crate::contour::check_field_shape;
use crate::overlay::{Overlay, line_width};
use crate::projection::MapView;
use crate::sample::nearest;

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
        let (w, h) = (m.width as usize, m.height as usize);
        // The id under every map pixel centre (0 off the globe/disc and outside the grid).
        let mut ids = vec![0i64; w * h];
        for row in 0..h {
            for col in 0..w {
                let (x, y) = (m.x + col as u32, m.y + row as u32);
                if let Some((lon, lat)) = view.pixel_to_lonlat(x, y)
                    && let Some(v) = nearest(self.ids, lon, lat)
                    && v.is_finite()
                {
                    ids[row * w + col] = v.round() as i64;
                }
            }
        }
        let width = line_width(view.layout.scale) as usize;
        let id_at = |col: usize, row: usize| ids[row * w + col];
        for row in 0..h {
            for col in 0..w {
                let id = id_at(col, row);
                if id == 0 {
                    continue;
                }
                let (x, y) = (m.x + col as u32, m.y + row as u32);
                // An edge pixel has a pixel of another id within the line width (4-neighbours).
                let edge = self.outline_rgba.is_some()
                    && (1..=width).any(|k| {
                        (col < k || id_at(col - k, row) != id)
                            || (col + k >= w || id_at(col + k, row) != id)
                            || (row < k || id_at(col, row - k) != id)
                            || (row + k >= h || id_at(col, row + k) != id)
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
