//! Vertical integrals over pressure levels.

use crate::GRAVITY;

/// Column integrals `(1/g) ∫ x dp` by the trapezoidal rule over pressure levels, for every cell of
/// a block: precipitable water `∫ q dp` and the two components of integrated vapour transport
/// `∫ q·u dp`, `∫ q·v dp`.
///
/// `pressure_pa` holds the levels in Pa, in either monotonic order; `q`, `u` and `v` hold
/// `levels × cells` values, level-major. Sums run in f64 from the f32 values; a missing value
/// (NaN) anywhere in a column makes that column's integrals NaN, as `xarray.DataArray.integrate`
/// does.
///
/// ```
/// use isotach_core::column::integrate_columns;
/// // Two levels 100 hPa apart, q = 0.01, u = 10, v = 0 at both: (1/g)·10000·0.01 = 10.197 kg m-2.
/// let (iwv, ivt_u, ivt_v) =
///     integrate_columns(&[100_000.0, 90_000.0], &[0.01, 0.01], &[10.0, 10.0], &[0.0, 0.0], 1);
/// assert!((iwv[0] - 10.197).abs() < 1e-3);
/// assert!((ivt_u[0] - 101.97).abs() < 1e-2);
/// assert_eq!(ivt_v[0], 0.0);
/// ```
pub fn integrate_columns(
    pressure_pa: &[f64],
    q: &[f32],
    u: &[f32],
    v: &[f32],
    cells: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut iwv = vec![0.0f64; cells];
    let mut ivt_u = vec![0.0f64; cells];
    let mut ivt_v = vec![0.0f64; cells];
    for k in 0..pressure_pa.len().saturating_sub(1) {
        let weight = (pressure_pa[k] - pressure_pa[k + 1]).abs() / (2.0 * GRAVITY);
        let (a, b) = (k * cells, (k + 1) * cells);
        for idx in 0..cells {
            let (qa, qb) = (q[a + idx] as f64, q[b + idx] as f64);
            iwv[idx] += weight * (qa + qb);
            ivt_u[idx] += weight * (qa * u[a + idx] as f64 + qb * u[b + idx] as f64);
            ivt_v[idx] += weight * (qa * v[a + idx] as f64 + qb * v[b + idx] as f64);
        }
    }
    let to32 = |x: Vec<f64>| x.into_iter().map(|v| v as f32).collect();
    (to32(iwv), to32(ivt_u), to32(ivt_v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_levels_does_not_matter_and_nan_spreads_to_its_column() {
        let up = [100_000.0, 85_000.0, 50_000.0];
        let down = [50_000.0, 85_000.0, 100_000.0];
        // Two cells; cell 1 has a missing wind at the middle level.
        let q = [0.012, 0.010, 0.008, 0.006, 0.002, 0.001];
        let u = [5.0, 6.0, 10.0, f32::NAN, 20.0, 25.0];
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let reverse = |x: &[f32]| -> Vec<f32> { x.chunks(2).rev().flatten().copied().collect() };
        let a = integrate_columns(&up, &q, &u, &v, 2);
        let b = integrate_columns(&down, &reverse(&q), &reverse(&u), &reverse(&v), 2);
        assert_eq!(a.0, b.0);
        assert_eq!(a.2, b.2);
        assert_eq!(a.1[0], b.1[0]);
        assert!(a.1[1].is_nan() && b.1[1].is_nan());
        // By hand, cell 0: (1/g)(15000·(0.012·5 + 0.008·10)/2 + 35000·(0.008·10 + 0.002·20)/2).
        let expected = (15_000.0 * (0.012 * 5.0 + 0.008 * 10.0) / 2.0
            + 35_000.0 * (0.008 * 10.0 + 0.002 * 20.0) / 2.0)
            / GRAVITY;
        assert!((a.1[0] as f64 - expected).abs() < 1e-4 * expected);
    }
}
