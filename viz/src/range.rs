//! The value range a colormap spans: fixed, the field's finite range, or robust percentiles.

use isotach_core::Field;

use crate::{ScalarStyle, VizError};

/// How the colour range is chosen when [`ScalarStyle::range`] is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum AutoRange {
    /// The smallest and largest finite values (±0.5 around a constant field).
    #[default]
    MinMax,
    /// Robust: the `low` and `high` percentiles (0..=100) of the finite values, linearly
    /// interpolated between order statistics (numpy's default). E.g. 2 and 98 keep a few extreme
    /// cells from washing out the rest of the map.
    Percentile {
        /// Lower percentile, 0..100.
        low: f32,
        /// Upper percentile, above `low`, up to 100.
        high: f32,
    },
}

/// The `p`-th percentile (0..=100) of the finite values of `values` (NaN and ±inf are ignored),
/// interpolated linearly between neighbouring order statistics; `None` when nothing is finite.
///
/// ```
/// let v = [f32::NAN, 4.0, 1.0, 3.0, 2.0, f32::INFINITY];
/// assert_eq!(isotach_viz::percentile(&v, 0.0), Some(1.0));
/// assert_eq!(isotach_viz::percentile(&v, 50.0), Some(2.5));
/// assert_eq!(isotach_viz::percentile(&v, 100.0), Some(4.0));
/// ```
pub fn percentile(values: &[f32], p: f32) -> Option<f32> {
    let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    percentiles_of(&mut finite, &[p]).map(|v| v[0])
}

/// Several percentiles of already-finite values (sorted in place).
fn percentiles_of(finite: &mut [f32], ps: &[f32]) -> Option<Vec<f32>> {
    if finite.is_empty() {
        return None;
    }
    finite.sort_unstable_by(f32::total_cmp);
    let last = (finite.len() - 1) as f64;
    Some(
        ps.iter()
            .map(|&p| {
                let pos = f64::from(p.clamp(0.0, 100.0)) / 100.0 * last;
                // pos is in 0..=last, so both indices are in bounds.
                let (i, frac) = (pos.floor() as usize, pos - pos.floor());
                let j = (i + 1).min(finite.len() - 1);
                (f64::from(finite[i]) + (f64::from(finite[j]) - f64::from(finite[i])) * frac) as f32
            })
            .collect(),
    )
}

/// The colour range of `field` in `style`: the style's fixed range, else its [`AutoRange`]
/// (widened by ±0.5 when it collapses to one value; [0, 1] when nothing is finite).
pub(crate) fn color_range(field: &Field, style: &ScalarStyle) -> Result<[f32; 2], VizError> {
    if let Some([lo, hi]) = style.range {
        if !lo.is_finite() || !hi.is_finite() {
            return Err(VizError::Range {
                lo,
                hi,
                reason: "both ends must be finite",
            });
        }
        if lo >= hi {
            return Err(VizError::Range {
                lo,
                hi,
                reason: "the start must be below the end",
            });
        }
        return Ok([lo, hi]);
    }
    let found = match style.auto_range {
        AutoRange::MinMax => field.finite_range(),
        AutoRange::Percentile { low, high } => {
            if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || low >= high {
                return Err(VizError::Percentiles { low, high });
            }
            let mut finite: Vec<f32> = field
                .values
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            percentiles_of(&mut finite, &[low, high]).map(|v| (v[0], v[1]))
        }
    };
    Ok(match found {
        Some((lo, hi)) if lo < hi => [lo, hi],
        Some((v, _)) => [v - 0.5, v + 0.5],
        None => [0.0, 1.0],
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use isotach_core::LatLonGrid;

    use super::*;

    fn field(values: Vec<f32>) -> Field {
        Field {
            variable: "t2m".into(),
            units: "K".into(),
            long_name: "2 metre temperature".into(),
            step: 0,
            time: chrono::DateTime::UNIX_EPOCH,
            grid: Arc::new(LatLonGrid::regular(90.0)),
            values,
        }
    }

    #[test]
    fn fixed_and_min_max() {
        let f = field(vec![
            1.0,
            2.0,
            f32::NAN,
            4.0,
            5.0,
            6.0,
            7.0,
            8.0,
            9.0,
            10.0,
            11.0,
            12.0,
        ]);
        let style = ScalarStyle::default();
        assert_eq!(color_range(&f, &style).ok(), Some([1.0, 12.0]));
        let fixed = ScalarStyle {
            range: Some([0.0, 5.0]),
            ..style.clone()
        };
        assert_eq!(color_range(&f, &fixed).ok(), Some([0.0, 5.0]));
        let bad = ScalarStyle {
            range: Some([5.0, 5.0]),
            ..style.clone()
        };
        let err = color_range(&f, &bad).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("colour range [5, 5] is invalid: the start must be below the end")
        );
        let constant = field(vec![3.0; 12]);
        assert_eq!(color_range(&constant, &style).ok(), Some([2.5, 3.5]));
        let empty = field(vec![f32::NAN; 12]);
        assert_eq!(color_range(&empty, &style).ok(), Some([0.0, 1.0]));
    }

    #[test]
    fn robust_range_ignores_outliers_and_nan() {
        // 0..=99 plus two wild outliers and missing cells: 101 finite values after the NaNs.
        let mut values: Vec<f32> = (0..100).map(|v| v as f32).collect();
        values.push(1e6);
        values.extend([f32::NAN, f32::NEG_INFINITY]);
        let mut f = field(values.clone());
        f.grid = Arc::new(LatLonGrid {
            lat: vec![0.0],
            lon: (0..values.len()).map(|i| i as f64).collect(),
        });
        let style = ScalarStyle {
            auto_range: AutoRange::Percentile {
                low: 2.0,
                high: 98.0,
            },
            ..ScalarStyle::default()
        };
        // Positions 0.02 × 100 = 2 and 0.98 × 100 = 98 of the 101 sorted finite values.
        assert_eq!(color_range(&f, &style).ok(), Some([2.0, 98.0]));
        assert_eq!(percentile(&values, 99.5), Some(99.0 + 0.5 * (1e6 - 99.0)));
        assert_eq!(percentile(&[f32::NAN], 50.0), None);

        let bad = ScalarStyle {
            auto_range: AutoRange::Percentile {
                low: 98.0,
                high: 2.0,
            },
            ..ScalarStyle::default()
        };
        let err = color_range(&f, &bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("98") && err.contains("percentile"), "{err}");
    }
}
