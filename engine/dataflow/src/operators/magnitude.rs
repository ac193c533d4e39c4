use arrow::array::{Array, Float32Array};
use arrow::compute::kernels::numeric::{add, mul};
use arrow::datatypes::Float32Type;
use isotach_core::{Tile, TileValues};
use timely::dataflow::Stream;
use timely::dataflow::operators::vec::Map;

use crate::{EngineError, ErrorSlot, TileBundle};

/// The Euclidean norm of vector components, tile by tile.
///
/// ```
/// use isotach_engine::operators::magnitude_values;
/// use isotach_core::TileValues;
/// let u = TileValues::from_vec(vec![3.0, f32::NAN]);
/// let v = TileValues::from_vec(vec![4.0, 1.0]);
/// let m = magnitude_values(&[&u, &v]).unwrap();
/// assert_eq!(m.as_slice()[0], 5.0);
/// assert!(m.as_slice()[1].is_nan());
/// ```
pub trait Magnitude<'scope> {
    /// Adds a tile `output` = sqrt(Σ inputᵢ²) to every bundle; units are those of the first input.
    fn magnitude(
        self,
        inputs: Vec<String>,
        output: String,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> Magnitude<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn magnitude(
        self,
        inputs: Vec<String>,
        output: String,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        self.map(move |mut bundle| {
            match magnitude_tile(&bundle, &inputs, &output) {
                Ok(tile) => bundle.tiles.push(tile),
                Err(message) => errors.set(EngineError::Operator {
                    step: bundle.step,
                    region: format!("{},{}", bundle.region.row, bundle.region.col),
                    message,
                }),
            }
            bundle
        })
    }
}

fn magnitude_tile(bundle: &TileBundle, inputs: &[String], output: &str) -> Result<Tile, String> {
    let components: Vec<&Tile> = inputs
        .iter()
        .map(|name| {
            bundle
                .tile(name)
                .ok_or_else(|| format!("magnitude: input {name:?} missing from the region's tiles"))
        })
        .collect::<Result<_, _>>()?;
    let first = components[0];
    let values: Vec<&TileValues> = components.iter().map(|t| &t.values).collect();
    Ok(Tile {
        variable: output.to_owned(),
        units: first.units.clone(),
        values: magnitude_values(&values).map_err(|e| format!("magnitude -> {output:?}: {e}"))?,
        ..first.clone()
    })
}

/// sqrt(Σ xᵢ²) with Arrow's kernels; NaN anywhere gives NaN.
pub fn magnitude_values(components: &[&TileValues]) -> Result<TileValues, String> {
    let first = components.first().ok_or("no components")?;
    if let Some(other) = components.iter().find(|c| c.len() != first.len()) {
        return Err(format!(
            "components have {} and {} values",
            first.len(),
            other.len()
        ));
    }
    let mut sum: Option<std::sync::Arc<dyn Array>> = None;
    for component in components {
        let square = mul(&component.0, &component.0).map_err(|e| e.to_string())?;
        sum = Some(match sum {
            None => square,
            Some(acc) => add(&acc, &square).map_err(|e| e.to_string())?,
        });
    }
    let sum = sum.ok_or("no components")?;
    let sum = sum
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or("sum of squares is not float32")?;
    Ok(TileValues(arrow::compute::unary::<
        Float32Type,
        _,
        Float32Type,
    >(sum, f32::sqrt)))
}
