//! Cutting fields into overlapping model patches and stitching the model's output back.

/// How a `rows × cols` field is cut into square patches of `patch` cells whose centres
/// (`patch - 2·halo` cells a side) tile the field exactly once.
///
/// Patch cells beyond the field take the nearest edge cell, except across the longitude seam of a
/// global grid (`wrap_lon`), where they wrap around; so a model whose receptive field fits in the
/// halo gives the same centre values as on the whole field, and stitched patches show no seams.
///
/// ```
/// use isotach_engine::inference::PatchPlan;
/// let plan = PatchPlan::new((181, 360), 64, 8, true).unwrap();
/// assert_eq!(plan.centre(), 48);
/// assert_eq!(plan.count(), 4 * 8); // ⌈181/48⌉ × ⌈360/48⌉
/// let field: Vec<f32> = (0..181 * 360).map(|i| i as f32).collect();
/// let mut patch = Vec::new();
/// plan.cut(&[&field], 0, &mut patch);
/// // The first patch's centre starts at cell (0, 0); above it the top row repeats, and to its
/// // left the field wraps around to the last longitudes.
/// assert_eq!(patch[8 * 64 + 8], field[0]);
/// assert_eq!(patch[0], field[360 - 8]);
/// let mut stitched = vec![f32::NAN; field.len()];
/// for index in 0..plan.count() {
///     plan.cut(&[&field], index, &mut patch);
///     plan.stitch(index, &patch, &mut stitched);
/// }
/// assert_eq!(stitched, field);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchPlan {
    rows: usize,
    cols: usize,
    patch: usize,
    halo: usize,
    wrap_lon: bool,
}

impl PatchPlan {
    /// A plan for a field of `shape = (rows, cols)`; `None` when the field is empty or the halo
    /// leaves no centre.
    pub fn new(shape: (usize, usize), patch: usize, halo: usize, wrap_lon: bool) -> Option<Self> {
        let (rows, cols) = shape;
        (rows > 0 && cols > 0 && patch > 2 * halo).then_some(Self {
            rows,
            cols,
            patch,
            halo,
            wrap_lon,
        })
    }

    /// Cells a side of the part of each patch that is kept.
    pub fn centre(&self) -> usize {
        self.patch - 2 * self.halo
    }

    /// Cells a side of a patch.
    pub fn patch(&self) -> usize {
        self.patch
    }

    fn grid(&self) -> (usize, usize) {
        (
            self.rows.div_ceil(self.centre()),
            self.cols.div_ceil(self.centre()),
        )
    }

    /// How many patches cover the field.
    pub fn count(&self) -> usize {
        let (r, c) = self.grid();
        r * c
    }

    /// Field row and column where patch `index`'s centre starts.
    fn origin(&self, index: usize) -> (usize, usize) {
        let per_row = self.grid().1;
        (
            (index / per_row) * self.centre(),
            (index % per_row) * self.centre(),
        )
    }

    fn source_row(&self, r: isize) -> usize {
        r.clamp(0, self.rows as isize - 1) as usize
    }

    fn source_col(&self, c: isize) -> usize {
        if self.wrap_lon {
            c.rem_euclid(self.cols as isize) as usize
        } else {
            c.clamp(0, self.cols as isize - 1) as usize
        }
    }

    /// Writes patch `index` of every channel into `out` (`channels × patch × patch`, channel
    /// major), NaN sent as 0.
    pub fn cut(&self, channels: &[&[f32]], index: usize, out: &mut Vec<f32>) {
        let (r0, c0) = self.origin(index);
        let (h, p) = (self.halo as isize, self.patch as isize);
        let cols: Vec<usize> = (0..p)
            .map(|pc| self.source_col(c0 as isize - h + pc))
            .collect();
        out.clear();
        out.reserve(channels.len() * self.patch * self.patch);
        for values in channels {
            for pr in 0..p {
                let row = self.source_row(r0 as isize - h + pr) * self.cols;
                let row = &values[row..row + self.cols];
                out.extend(cols.iter().map(|&c| {
                    let v = row[c];
                    if v.is_nan() { 0.0 } else { v }
                }));
            }
        }
    }

    /// Copies the centre of patch `index` of a model's output (`patch × patch` values) into
    /// `field` (`rows × cols`).
    pub fn stitch(&self, index: usize, output: &[f32], field: &mut [f32]) {
        let (r0, c0) = self.origin(index);
        let rows = self.centre().min(self.rows - r0);
        let cols = self.centre().min(self.cols - c0);
        for r in 0..rows {
            let from = (r + self.halo) * self.patch + self.halo;
            let to = (r0 + r) * self.cols + c0;
            field[to..to + cols].copy_from_slice(&output[from..from + cols]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×3 box mean with the plan's edge rule: what a model with a one-cell receptive field
    /// computes on the whole field.
    fn box_mean(values: &[f32], plan: &PatchPlan) -> Vec<f32> {
        let (rows, cols) = (plan.rows, plan.cols);
        let mut out = vec![0.0; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                let mut sum = 0.0;
                for dr in -1..=1 {
                    for dc in -1..=1 {
                        let rr = plan.source_row(r as isize + dr);
                        let cc = plan.source_col(c as isize + dc);
                        sum += values[rr * cols + cc];
                    }
                }
                out[r * cols + c] = sum / 9.0;
            }
        }
        out
    }

    fn box_mean_patch(patch: &[f32], p: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; p * p];
        for r in 1..p - 1 {
            for c in 1..p - 1 {
                let mut sum = 0.0;
                for dr in [r - 1, r, r + 1] {
                    for dc in [c - 1, c, c + 1] {
                        sum += patch[dr * p + dc];
                    }
                }
                out[r * p + c] = sum / 9.0;
            }
        }
        out
    }

    #[test]
    fn a_local_model_on_patches_equals_the_model_on_the_whole_field() {
        for (shape, patch, halo, wrap) in [
            ((37, 72), 16, 1, true),
            ((37, 72), 16, 3, false),
            ((10, 10), 32, 2, true),
            ((181, 360), 64, 8, true),
        ] {
            let plan = PatchPlan::new(shape, patch, halo, wrap).unwrap();
            let field: Vec<f32> = (0..shape.0 * shape.1)
                .map(|i| ((i * 7919) % 1000) as f32)
                .collect();
            let expected = box_mean(&field, &plan);
            let mut stitched = vec![f32::NAN; field.len()];
            let mut cut = Vec::new();
            for index in 0..plan.count() {
                plan.cut(&[&field], index, &mut cut);
                plan.stitch(index, &box_mean_patch(&cut, patch), &mut stitched);
            }
            assert_eq!(stitched, expected, "{shape:?} patch {patch} halo {halo}");
        }
    }

    #[test]
    fn channels_are_stacked_and_nan_is_sent_as_zero() {
        let plan = PatchPlan::new((2, 2), 4, 1, false).unwrap();
        let a = [1.0, f32::NAN, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut out = Vec::new();
        plan.cut(&[&a, &b], 0, &mut out);
        assert_eq!(out.len(), 2 * 16);
        assert_eq!(&out[..4], &[1.0, 1.0, 0.0, 0.0]);
        assert_eq!(&out[16..20], &[5.0, 5.0, 6.0, 6.0]);
        assert_eq!(&out[28..32], &[7.0, 7.0, 8.0, 8.0]);
    }

    #[test]
    fn a_halo_that_leaves_no_centre_is_refused() {
        assert!(PatchPlan::new((10, 10), 8, 4, true).is_none());
        assert!(PatchPlan::new((0, 10), 8, 1, true).is_none());
    }
}
