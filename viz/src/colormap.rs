//! CPU side of the colour tables: the reference lookup and the bytes of the GPU lookup texture.

use isotach_core::Colormap;

use crate::colormap_tables::{CIVIDIS, COOLWARM, MAGMA, VIRIDIS};

/// The 256-entry table of `colormap`.
pub(crate) fn table(colormap: Colormap) -> &'static [[u8; 3]; 256] {
    match colormap {
        Colormap::Viridis => &VIRIDIS,
        Colormap::Magma => &MAGMA,
        Colormap::Cividis => &CIVIDIS,
        Colormap::Coolwarm => &COOLWARM,
    }
}

/// Index of the table entry for `t`: `t` clamped to 0..=1, times 255, rounded half up. The shader
/// computes the same index (`floor(t * 255 + 0.5)`); NaN picks entry 0.
pub(crate) fn lut_index(t: f32) -> usize {
    if t.is_nan() {
        return 0;
    }
    let t = t.clamp(0.0, 1.0);
    // In 0..=255 after the clamp, so the cast cannot truncate.
    (t * 255.0 + 0.5).floor() as usize
}

/// The colour the renderer gives to `t` (0 = start of the range, 1 = end): the CPU reference of
/// the lookup texture. `t` outside 0..=1 clamps to the ends; NaN gives the first colour.
///
/// ```
/// use isotach_core::Colormap;
/// assert_eq!(isotach_viz::colormap_rgb(Colormap::Viridis, 0.0), [68, 1, 84]);
/// assert_eq!(isotach_viz::colormap_rgb(Colormap::Viridis, 1.0), [253, 231, 37]);
/// ```
pub fn colormap_rgb(colormap: Colormap, t: f32) -> [u8; 3] {
    table(colormap)[lut_index(t)]
}

/// The 256×1 RGBA8 bytes of the lookup texture for `colormap` (alpha 255).
pub(crate) fn lut_rgba(colormap: Colormap) -> Vec<u8> {
    table(colormap)
        .iter()
        .flat_map(|&[r, g, b]| [r, g, b, 255])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_match_matplotlib() {
        // matplotlib: viridis(0) = #440154, viridis(1) = #fde725; magma(0) = #000004,
        // magma(1) = #fcfdbf; cividis(0) = #00224e, cividis(1) = #fee838;
        // coolwarm(0) = (59, 76, 192), coolwarm(1) = (180, 4, 38).
        assert_eq!(colormap_rgb(Colormap::Viridis, 0.0), [0x44, 0x01, 0x54]);
        assert_eq!(colormap_rgb(Colormap::Viridis, 1.0), [0xfd, 0xe7, 0x25]);
        assert_eq!(colormap_rgb(Colormap::Magma, 0.0), [0x00, 0x00, 0x04]);
        assert_eq!(colormap_rgb(Colormap::Magma, 1.0), [0xfc, 0xfd, 0xbf]);
        assert_eq!(colormap_rgb(Colormap::Cividis, 0.0), [0x00, 0x22, 0x4e]);
        assert_eq!(colormap_rgb(Colormap::Cividis, 1.0), [0xfe, 0xe8, 0x38]);
        assert_eq!(colormap_rgb(Colormap::Coolwarm, 0.0), [59, 76, 192]);
        assert_eq!(colormap_rgb(Colormap::Coolwarm, 1.0), [180, 4, 38]);
    }

    #[test]
    fn out_of_range_clamps_and_nan_is_first() {
        for cmap in Colormap::ALL {
            assert_eq!(colormap_rgb(cmap, -3.0), colormap_rgb(cmap, 0.0));
            assert_eq!(colormap_rgb(cmap, 7.0), colormap_rgb(cmap, 1.0));
            assert_eq!(colormap_rgb(cmap, f32::INFINITY), colormap_rgb(cmap, 1.0));
            assert_eq!(colormap_rgb(cmap, f32::NAN), colormap_rgb(cmap, 0.0));
        }
    }

    #[test]
    fn index_rounds_half_up() {
        assert_eq!(lut_index(0.0), 0);
        assert_eq!(lut_index(0.5), 128); // 127.5 rounds up
        assert_eq!(lut_index(1.0 / 255.0), 1);
        assert_eq!(lut_index(0.49 / 255.0), 0);
        assert_eq!(lut_index(1.0), 255);
    }

    #[test]
    fn coolwarm_is_diverging_and_tables_are_smooth() {
        let mid = colormap_rgb(Colormap::Coolwarm, 0.5);
        assert!(
            mid.iter().all(|&c| c > 190),
            "coolwarm middle should be near white: {mid:?}"
        );
        for cmap in Colormap::ALL {
            for pair in table(cmap).windows(2) {
                let step = (0..3)
                    .map(|c| pair[0][c].abs_diff(pair[1][c]))
                    .max()
                    .unwrap_or(0);
                assert!(
                    step <= 8,
                    "{}: neighbouring entries differ by {step}",
                    cmap.name()
                );
            }
        }
    }

    #[test]
    fn lut_bytes_are_rgba() {
        let bytes = lut_rgba(Colormap::Magma);
        assert_eq!(bytes.len(), 256 * 4);
        assert_eq!(&bytes[..4], &[0, 0, 4, 255]);
    }
}
