use std::sync::Arc;

use isotach_core::expr::{Expr, ExprError};
use isotach_core::{Tile, TileValues};
use timely::dataflow::Stream;
use timely::dataflow::operators::vec::Map;

use crate::{EngineError, ErrorSlot, TileBundle};

/// Evaluates an element-wise [`Expr`] over the variables of each region, tile by tile.
///
/// ```
/// use isotach_core::TileValues;
/// use isotach_core::expr::Expr;
/// use isotach_engine::operators::expression_values;
///
/// let expr = Expr::parse("where(t > 273.15, t - 273.15, 0) + 0 * q").unwrap();
/// let t = TileValues::from_vec(vec![283.15, 250.0, f32::NAN]);
/// let q = TileValues::from_vec(vec![1.0, 2.0, 3.0]);
/// let out = expression_values(&expr, &[("t", &t), ("q", &q)], 3).unwrap();
/// assert!((out.as_slice()[0] - 10.0).abs() < 1e-4);
/// assert_eq!(out.as_slice()[1], 0.0);
/// assert_eq!(out.as_slice()[2], 0.0);
/// ```
pub trait Expression<'scope> {
    /// Adds a tile `output` (in `units`) holding `expr` evaluated on the bundle's tiles to every
    /// bundle; the window, region and bounds are those of the first variable the expression reads
    /// (of the bundle's first tile when it reads none). A bundle that lacks a variable, or whose
    /// tiles differ in size, records an error in `errors` and passes on unchanged.
    fn expression(
        self,
        expr: Arc<Expr>,
        output: String,
        units: String,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> Expression<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn expression(
        self,
        expr: Arc<Expr>,
        output: String,
        units: String,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        let variables = expr.variables();
        self.map(move |mut bundle| {
            match expression_tile(&bundle, &expr, &variables, &output, &units) {
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

fn expression_tile(
    bundle: &TileBundle,
    expr: &Expr,
    variables: &[String],
    output: &str,
    units: &str,
) -> Result<Tile, String> {
    let mut inputs = Vec::with_capacity(variables.len());
    for name in variables {
        let tile = bundle.tile(name).ok_or_else(|| {
            let have: Vec<&str> = bundle.tiles.iter().map(|t| t.variable.as_str()).collect();
            format!(
                "expression -> {output:?}: input {name:?} missing from the region's tiles (have: {})",
                have.join(", ")
            )
        })?;
        inputs.push(tile);
    }
    let first = inputs
        .first()
        .copied()
        .or(bundle.tiles.first())
        .ok_or_else(|| format!("expression -> {output:?}: the region has no tiles"))?;
    let named: Vec<(&str, &TileValues)> = inputs
        .iter()
        .map(|t| (t.variable.as_str(), &t.values))
        .collect();
    let values = expression_values(expr, &named, first.window.len())
        .map_err(|e| format!("expression -> {output:?}: {e}"))?;
    Ok(Tile {
        variable: output.to_owned(),
        units: units.to_owned(),
        values,
        ..first.clone()
    })
}

/// Evaluates `expr` over columns of `len` values, each variable's column looked up by name in
/// `inputs`. Fails, naming the variable, when one is missing or holds other than `len` values.
pub fn expression_values(
    expr: &Expr,
    inputs: &[(&str, &TileValues)],
    len: usize,
) -> Result<TileValues, ExprError> {
    let lookup = |name: &str| {
        inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, values)| values.as_slice())
    };
    expr.eval(&lookup, len).map(TileValues::from_vec)
}
