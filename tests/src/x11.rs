//! A private X server for window tests (Xvfb, on a display number it picks itself), screenshots
//! of it (`xwd`, whose XWD dumps are parsed here) and closing its windows (`xdotool`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use isotach_viz::RgbaImage;

/// A running Xvfb; killed when dropped.
pub struct Xvfb {
    child: Child,
    /// Its display, e.g. `:3`, for `DISPLAY`.
    pub display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Xvfb {
    /// Starts Xvfb with one `width × height` screen, 24-bit TrueColor, black background, on
    /// the first free display number (`-displayfd`: the server reports the number it took once it
    /// accepts connections).
    pub fn start(width: u32, height: u32) -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .args(["-nolisten", "tcp", "-br", "-noreset"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting Xvfb: {e} (install it: apt-get install xvfb; scripts/test.sh does)"
                )
            });
        let stdout = child.stdout.take().expect("Xvfb stdout");
        let mut number = String::new();
        BufReader::new(stdout)
            .read_line(&mut number)
            .expect("read Xvfb's display number");
        let number = number.trim();
        assert!(
            !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()),
            "Xvfb reported no display number: {number:?}"
        );
        Xvfb {
            display: format!(":{number}"),
            child,
        }
    }

    /// Destroys the windows whose title contains `title` (`xdotool windowclose`), as a window
    /// manager's kill or a session ending would.
    pub fn close_windows(&self, title: &str) {
        let out = Command::new("xdotool")
            .args(["search", "--name", title, "windowclose"])
            .env("DISPLAY", &self.display)
            .output()
            .unwrap_or_else(|e| {
                panic!("running xdotool: {e} (install it: apt-get install xdotool; scripts/test.sh does)")
            });
        assert!(
            out.status.success(),
            "xdotool search --name {title:?} windowclose on {} failed: {}",
            self.display,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The whole screen, as `xwd -root` dumps it.
    pub fn screenshot(&self) -> RgbaImage {
        let out = Command::new("xwd")
            .args(["-root", "-silent", "-display", &self.display])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running xwd: {e} (install it: apt-get install x11-apps; scripts/test.sh does)"
                )
            });
        assert!(
            out.status.success(),
            "xwd -root -display {} failed: {}",
            self.display,
            String::from_utf8_lossy(&out.stderr)
        );
        parse_xwd(&out.stdout).unwrap_or_else(|e| panic!("xwd dump of {}: {e}", self.display))
    }
}

/// Decodes an XWD dump (X11 `XWDFileHeader`, version 7) of a TrueColor ZPixmap with 24 or 32
/// bits per pixel, as Xvfb's 24-bit screens give, into opaque RGBA.
pub fn parse_xwd(dump: &[u8]) -> Result<RgbaImage, String> {
    // The header is 25 big-endian CARD32s, then the window name, then the colormap.
    let field = |i: usize| -> Result<u32, String> {
        dump.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("{} bytes is too short for the header", dump.len()))
    };
    let (header_size, version, format) = (field(0)?, field(1)?, field(2)?);
    if version != 7 || format != 2 {
        return Err(format!(
            "file version {version}, pixmap format {format}; only version 7 ZPixmap (2) is read"
        ));
    }
    let (width, height) = (field(4)?, field(5)?);
    let msb_first = field(7)? == 1;
    let bits_per_pixel = field(11)?;
    let bytes_per_line = field(12)? as usize;
    let (visual_class, masks) = (field(13)?, [field(14)?, field(15)?, field(16)?]);
    let colors = field(19)? as usize;
    if visual_class != 4 && visual_class != 5 {
        return Err(format!(
            "visual class {visual_class}; only TrueColor (4) and DirectColor (5) are read"
        ));
    }
    let bytes_per_pixel = match bits_per_pixel {
        24 => 3,
        32 => 4,
        other => return Err(format!("{other} bits per pixel; only 24 and 32 are read")),
    };
    let data = header_size as usize + colors * 12;
    let end = data + bytes_per_line * height as usize;
    if dump.len() < end {
        return Err(format!(
            "{} bytes, the header says {end} ({width}×{height}, {bytes_per_line} bytes per line)",
            dump.len()
        ));
    }
    let channel = |pixel: u32, mask: u32| -> u8 {
        let value = (pixel & mask) >> mask.trailing_zeros();
        let bits = mask.count_ones();
        // Scale a channel of any width to 8 bits.
        ((u64::from(value) * 255) / ((1u64 << bits) - 1)) as u8
    };
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 4);
    for row in dump[data..end].chunks_exact(bytes_per_line) {
        for px in row[..width as usize * bytes_per_pixel].chunks_exact(bytes_per_pixel) {
            let pixel = px.iter().enumerate().fold(0u32, |acc, (i, &b)| {
                let shift = if msb_first {
                    8 * (bytes_per_pixel - 1 - i)
                } else {
                    8 * i
                };
                acc | (u32::from(b) << shift)
            });
            pixels.extend(masks.map(|m| channel(pixel, m)));
            pixels.push(255);
        }
    }
    RgbaImage::new(width, height, pixels).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2×1 dump as Xvfb writes it: 32 bits per pixel, least significant byte first.
    fn dump(msb_first: bool) -> Vec<u8> {
        let name = b"xwdump\0\0";
        let header_size = 100 + name.len() as u32;
        let fields: [u32; 25] = [
            header_size,
            7,
            2,
            24,
            2,
            1,
            0,
            u32::from(msb_first),
            32,
            u32::from(msb_first),
            32,
            32,
            8,
            4,
            0xff0000,
            0x00ff00,
            0x0000ff,
            8,
            256,
            1,
            2,
            1,
            0,
            0,
            0,
        ];
        let mut out: Vec<u8> = fields.iter().flat_map(|f| f.to_be_bytes()).collect();
        out.extend_from_slice(name);
        out.extend_from_slice(&[0; 12]);
        for pixel in [0x00_10_20_30u32, 0x00_ff_80_01] {
            if msb_first {
                out.extend_from_slice(&pixel.to_be_bytes());
            } else {
                out.extend_from_slice(&pixel.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn xwd_true_colour_pixels_decode_in_either_byte_order() {
        for msb_first in [false, true] {
            let image = parse_xwd(&dump(msb_first)).expect("parse");
            assert_eq!((image.width, image.height), (2, 1));
            assert_eq!(
                image.pixels,
                vec![0x10, 0x20, 0x30, 255, 0xff, 0x80, 0x01, 255]
            );
        }
    }

    #[test]
    fn xwd_dumps_that_are_not_true_colour_zpixmaps_are_refused() {
        let mut indexed = dump(false);
        indexed[13 * 4 + 3] = 3; // PseudoColor
        let e = parse_xwd(&indexed).expect_err("refused");
        assert!(e.contains("visual class 3"), "{e}");
        let short = &dump(false)[..120];
        let e = parse_xwd(short).expect_err("refused");
        assert!(e.contains("the header says"), "{e}");
    }
}
