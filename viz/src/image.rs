//! A plain RGBA8 image with PNG input and output.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use crate::VizError;

/// An 8-bit RGBA image, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height × 4` bytes, row-major, R G B A.
    pub pixels: Vec<u8>,
}

impl RgbaImage {
    /// An image from its pixels; fails when the buffer is not `width × height × 4` bytes.
    pub fn new(width: u32, height: u32, pixels: Vec<u8>) -> Result<Self, VizError> {
        let expected = width as usize * height as usize * 4;
        if pixels.len() != expected {
            return Err(VizError::ImageSize {
                width,
                height,
                expected,
                len: pixels.len(),
            });
        }
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// The pixels inside `rect`; fails when `rect` is not inside the image.
    pub fn crop(&self, rect: crate::PixelRect) -> Result<RgbaImage, VizError> {
        if rect.right() > self.width || rect.bottom() > self.height {
            return Err(VizError::Viewport {
                viewport: rect,
                width: self.width,
                height: self.height,
            });
        }
        let row_bytes = rect.width as usize * 4;
        let mut pixels = Vec::with_capacity(row_bytes * rect.height as usize);
        for y in rect.y..rect.bottom() {
            let start = (y as usize * self.width as usize + rect.x as usize) * 4;
            pixels.extend_from_slice(&self.pixels[start..start + row_bytes]);
        }
        RgbaImage::new(rect.width, rect.height, pixels)
    }

    /// The RGBA of pixel (x, y), (0, 0) being the top-left corner.
    ///
    /// # Panics
    /// When (x, y) lies outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside a {}×{} image",
            self.width,
            self.height
        );
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [
            self.pixels[i],
            self.pixels[i + 1],
            self.pixels[i + 2],
            self.pixels[i + 3],
        ]
    }

    /// Writes the image as an 8-bit RGBA PNG.
    pub fn write_png(&self, path: &Path) -> Result<(), VizError> {
        let png_err = |e: png::EncodingError| VizError::Png {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let file = File::create(path).map_err(|source| VizError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut encoder = png::Encoder::new(BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(png_err)?;
        writer.write_image_data(&self.pixels).map_err(png_err)?;
        writer.finish().map_err(png_err)
    }

    /// Reads a PNG: 8- or 16-bit, grey, grey+alpha, RGB, RGBA or palette, converted to RGBA8.
    pub fn read_png(path: &Path) -> Result<Self, VizError> {
        let png_err = |message: String| VizError::Png {
            path: path.to_owned(),
            message,
        };
        let file = File::open(path).map_err(|source| VizError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut decoder = png::Decoder::new(BufReader::new(file));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(|e| png_err(e.to_string()))?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| png_err("image too large for this machine".to_owned()))?;
        let mut buf = vec![0; size];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| png_err(e.to_string()))?;
        buf.truncate(info.buffer_size());
        if info.bit_depth != png::BitDepth::Eight {
            return Err(png_err(format!(
                "unexpected bit depth {:?} after conversion",
                info.bit_depth
            )));
        }
        let pixels = match info.color_type {
            png::ColorType::Rgba => buf,
            png::ColorType::Rgb => buf
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::GrayscaleAlpha => buf
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
            png::ColorType::Indexed => {
                return Err(png_err("palette was not expanded".to_owned()));
            }
        };
        Self::new(info.width, info.height, pixels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip() -> Result<(), VizError> {
        let dir = tempfile::tempdir().map_err(|source| VizError::Io {
            path: "tempdir".into(),
            source,
        })?;
        let path = dir.path().join("x.png");
        let pixels: Vec<u8> = (0..3 * 2 * 4).map(|i| (i * 11) as u8).collect();
        let image = RgbaImage::new(3, 2, pixels)?;
        image.write_png(&path)?;
        let back = RgbaImage::read_png(&path)?;
        assert_eq!(back, image);
        assert_eq!(back.pixel(2, 1), [220, 231, 242, 253]);
        Ok(())
    }

    #[test]
    fn wrong_buffer_size_is_an_error() {
        let err = RgbaImage::new(4, 4, vec![0; 10])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("image 4×4 needs 64 bytes of RGBA, the buffer has 10")
        );
    }
}
