use isotach_core::units::Conversion;
use isotach_core::{Tile, TileValues};
use timely::dataflow::Stream;
use timely::dataflow::operators::vec::Map;

use crate::{EngineError, ErrorSlot, TileBundle};

/// Converts a variable to other units with a scale and an offset, tile by tile.
///
/// ```
/// use isotach_core::TileValues;
/// use isotach_core::units::conversion;
/// use isotach_engine::operators::convert_values;
///
/// let kelvin = TileValues::from_vec(vec![300.0, f32::NAN]);
/// let celsius = convert_values(&kelvin, conversion("K", "degC").unwrap());
/// assert_eq!(celsius.as_slice()[0], 26.85);
/// assert!(celsius.as_slice()[1].is_nan());
/// ```
pub trait ConvertUnits<'scope> {
    /// Adds a tile `output` in `to_units`, `input`'s values converted with `conversion` (found
    /// at validation, for example by [`isotach_core::units::conversion`]), to every bundle. When
    /// `output` is `input` the tile is replaced instead. A bundle without `input` records an error
    /// in `errors` and passes on unchanged.
    fn convert_units(
        self,
        input: String,
        output: String,
        to_units: String,
        conversion: Conversion,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> ConvertUnits<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn convert_units(
        self,
        input: String,
        output: String,
        to_units: String,
        conversion: Conversion,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        self.map(move |mut bundle| {
            let Some(position) = bundle.tiles.iter().position(|t| t.variable == input) else {
                let have: Vec<&str> = bundle.tiles.iter().map(|t| t.variable.as_str()).collect();
                errors.set(EngineError::Operator {
                    step: bundle.step,
                    region: format!("{},{}", bundle.region.row, bundle.region.col),
                    message: format!(
                        "convert_units -> {output:?}: input {input:?} missing from the region's \
                         tiles (have: {})",
                        have.join(", ")
                    ),
                });
                return bundle;
            };
            let source = &bundle.tiles[position];
            let tile = Tile {
                variable: output.clone(),
                units: to_units.clone(),
                values: convert_values(&source.values, conversion),
                ..source.clone()
            };
            if output == input {
                bundle.tiles[position] = tile;
            } else {
                bundle.tiles.push(tile);
            }
            bundle
        })
    }
}

/// `values × scale + offset`, computed in f64 and rounded once to f32; NaN stays NaN. The
/// identity conversion shares the buffer instead of copying it.
pub fn convert_values(values: &TileValues, conversion: Conversion) -> TileValues {
    if conversion.is_identity() {
        return values.clone();
    }
    TileValues::from_vec(conversion.apply_slice(values.as_slice()))
}
