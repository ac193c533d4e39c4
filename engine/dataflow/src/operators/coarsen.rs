use std::sync::Arc;

use isotach_core::{Field, LatLonGrid};
use timely::dataflow::Stream;
use timely::dataflow::operators::vec::Map;

use crate::{EngineError, ErrorSlot};

/// Block means of whole fields onto a coarser grid.
///
/// ```
/// use std::sync::Arc;
/// use isotach_core::{Field, LatLonGrid};
/// use isotach_engine::operators::coarsen_field;
/// let grid = LatLonGrid { lat: vec![10.0, 5.0, 0.0], lon: vec![0.0, 1.0, 2.0, 3.0, 4.0] };
/// let field = Field {
///     variable: "t".into(),
///     units: "K".into(),
///     long_name: "temperature".into(),
///     step: 0,
///     time: Default::default(),
///     grid: Arc::new(grid),
///     values: vec![
///         1.0, 2.0, 3.0, f32::NAN, 9.0, //
///         3.0, 4.0, f32::NAN, f32::NAN, 9.0, //
///         9.0, 9.0, 9.0, 9.0, 9.0,
///     ],
/// };
/// // 2 × 2 blocks: the last row and column do not fill a block and are trimmed.
/// let coarse = coarsen_field(&field, [2, 2], "t_coarse").unwrap();
/// assert_eq!(coarse.grid.lat, vec![7.5]);
/// assert_eq!(coarse.grid.lon, vec![0.5, 2.5]);
/// assert_eq!(coarse.values[0], 2.5); // mean of 1, 2, 3, 4
/// assert_eq!(coarse.values[1], 3.0); // the only non-NaN value of its block
/// ```
pub trait Coarsen<'scope> {
    /// For every field named `input`, adds a field `output` holding its `factor = [lat, lon]` block
    /// means (see [`coarsen_field`]); every field, `input` included, passes through unchanged.
    /// A failure is recorded in `errors` and the coarsened field is left out.
    fn coarsen(
        self,
        input: String,
        output: String,
        factor: [usize; 2],
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<Field>>;
}

impl<'scope> Coarsen<'scope> for Stream<'scope, u64, Vec<Field>> {
    fn coarsen(
        self,
        input: String,
        output: String,
        factor: [usize; 2],
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<Field>> {
        // Fields of one variable share their grid, so the coarse grid is built once per source grid
        // and every output field points at the same allocation.
        let mut cached: Option<(Arc<LatLonGrid>, Arc<LatLonGrid>)> = None;
        self.flat_map(move |field| {
            let coarse = if field.variable == input {
                let grid = match &cached {
                    Some((source, coarse)) if Arc::ptr_eq(source, &field.grid) => {
                        Ok(coarse.clone())
                    }
                    _ => coarsen_grid(&field.grid, factor).map(|g| {
                        let g = Arc::new(g);
                        cached = Some((field.grid.clone(), g.clone()));
                        g
                    }),
                };
                match grid.and_then(|grid| coarsen_onto(&field, factor, grid, &output)) {
                    Ok(coarse) => Some(coarse),
                    Err(message) => {
                        errors.set(EngineError::Operator {
                            step: field.step,
                            region: "whole grid".into(),
                            message,
                        });
                        None
                    }
                }
            } else {
                None
            };
            std::iter::once(field).chain(coarse)
        })
    }
}

/// The grid [`coarsen_field`] produces from `grid` with `factor = [lat, lon]`: trailing rows and
/// columns that do not fill a block are dropped, and each new coordinate is the mean of its block's
/// coordinates (xarray's `coarsen(..., boundary="trim")` with `coord_func="mean"`).
///
/// ```
/// let grid = isotach_core::LatLonGrid::regular(1.0); // 181 × 360, latitude 90 → -90
/// let coarse = isotach_engine::operators::coarsen_grid(&grid, [4, 4]).unwrap();
/// assert_eq!(coarse.shape(), (45, 90));
/// assert_eq!((coarse.lat[0], coarse.lon[0]), (88.5, 1.5));
/// ```
pub fn coarsen_grid(grid: &LatLonGrid, factor: [usize; 2]) -> Result<LatLonGrid, String> {
    Ok(LatLonGrid {
        lat: block_means(&grid.lat, factor[0], "latitude")?,
        lon: block_means(&grid.lon, factor[1], "longitude")?,
    })
}

fn block_means(coords: &[f64], factor: usize, axis: &str) -> Result<Vec<f64>, String> {
    if factor == 0 {
        return Err(format!("coarsen: {axis} factor must be at least 1, got 0"));
    }
    if factor > coords.len() {
        return Err(format!(
            "coarsen: {axis} factor {factor} is larger than the grid's {} {axis}s",
            coords.len()
        ));
    }
    Ok(coords
        .chunks_exact(factor)
        .map(|block| block.iter().sum::<f64>() / factor as f64)
        .collect())
}

/// Block means of `field` over blocks of `factor = [lat, lon]` cells, as xarray's
/// `da.coarsen(lat=factor[0], lon=factor[1], boundary="trim").mean()`: each value is the mean of
/// the block's non-NaN values (NaN when all are NaN), summed in f64; trailing rows and columns
/// that do not fill a block are trimmed; the grid is [`coarsen_grid`]'s. The new field is named
/// `output` and keeps the units, long name, step and time.
///
/// Errors name the factor when it is 0 or larger than the grid, or the value count when it does
/// not match the grid.
pub fn coarsen_field(field: &Field, factor: [usize; 2], output: &str) -> Result<Field, String> {
    let grid = Arc::new(coarsen_grid(&field.grid, factor)?);
    coarsen_onto(field, factor, grid, output)
}

fn coarsen_onto(
    field: &Field,
    [f_lat, f_lon]: [usize; 2],
    grid: Arc<LatLonGrid>,
    output: &str,
) -> Result<Field, String> {
    let (nlat, nlon) = field.grid.shape();
    if field.values.len() != nlat * nlon {
        return Err(format!(
            "coarsen {:?}: {} values do not fill its {nlat} × {nlon} grid",
            field.variable,
            field.values.len()
        ));
    }
    let (out_lat, out_lon) = grid.shape();
    if out_lat != nlat / f_lat || out_lon != nlon / f_lon {
        return Err(format!(
            "coarsen {:?}: coarse grid {out_lat} × {out_lon} does not match {nlat} × {nlon} \
             with factor [{f_lat}, {f_lon}]",
            field.variable
        ));
    }
    let mut values = Vec::with_capacity(out_lat * out_lon);
    let mut sums = vec![0.0f64; out_lon];
    let mut counts = vec![0u32; out_lon];
    for block_row in 0..out_lat {
        sums.fill(0.0);
        counts.fill(0);
        let rows = &field.values[block_row * f_lat * nlon..(block_row + 1) * f_lat * nlon];
        for row in rows.chunks_exact(nlon) {
            // `chunks_exact` drops the trailing columns that do not fill a block.
            for ((block, sum), count) in row
                .chunks_exact(f_lon)
                .zip(sums.iter_mut())
                .zip(counts.iter_mut())
            {
                for &v in block {
                    // xarray's skipna skips NaN only: an infinity still enters the mean.
                    if !v.is_nan() {
                        *sum += f64::from(v);
                        *count += 1;
                    }
                }
            }
        }
        values.extend(sums.iter().zip(&counts).map(|(&sum, &count)| {
            if count == 0 {
                f32::NAN
            } else {
                (sum / f64::from(count)) as f32
            }
        }));
    }
    Ok(Field {
        variable: output.to_owned(),
        units: field.units.clone(),
        long_name: field.long_name.clone(),
        step: field.step,
        time: field.time,
        grid,
        values,
    })
}
