use std::sync::Arc;

use isotach_core::column::integrate_columns;
use isotach_core::{Tile, TileValues};
use timely::dataflow::Stream;
use timely::dataflow::operators::vec::Map;

use super::rolling::{bundle_error, derived_tile, input_tile};
use crate::{ErrorSlot, TileBundle};

/// Units of integrated vapour transport.
const TRANSPORT_UNITS: &str = "kg m-1 s-1";

/// What an `ivt` step reads and writes, resolved at planning: the levels in Pa and the scale of
/// each input to SI units.
#[derive(Debug, Clone, PartialEq)]
pub struct IvtConfig {
    /// Specific humidity on levels.
    pub humidity: String,
    /// Wind components on the same levels, `[eastward, northward]`.
    pub wind: [String; 2],
    /// The name of the magnitude.
    pub output: String,
    /// Names of the `[eastward, northward]` components, when wanted.
    pub components: Option<[String; 2]>,
    /// The levels, Pa, in the order the tiles hold them.
    pub pressure_pa: Vec<f64>,
    /// Factor taking the humidity to kg kg-1 (1 for kg kg-1, 0.001 for g kg-1).
    pub humidity_scale: f64,
    /// Factor taking the winds to m s-1.
    pub wind_scale: f64,
}

/// Integrated vapour transport `(1/g) ∫ q·V dp` over pressure levels, tile by tile: each region's
/// humidity and wind tiles hold every level, so the column integral needs no exchange.
///
/// ```
/// use isotach_core::TileValues;
/// use isotach_engine::operators::{IvtConfig, ivt_values};
///
/// let config = IvtConfig {
///     humidity: "q".into(),
///     wind: ["u".into(), "v".into()],
///     output: "ivt".into(),
///     components: None,
///     pressure_pa: vec![100_000.0, 90_000.0],
///     humidity_scale: 1.0,
///     wind_scale: 1.0,
/// };
/// // One cell, two levels: q = 0.01, u = 3, v = 4 at both.
/// let q = TileValues::from_vec(vec![0.01, 0.01]);
/// let u = TileValues::from_vec(vec![3.0, 3.0]);
/// let v = TileValues::from_vec(vec![4.0, 4.0]);
/// let [magnitude, eastward, northward] = ivt_values(&config, &q, [&u, &v]).unwrap();
/// // (1/g) · 10000 Pa · 0.01 · 5 m s-1 = 50.99 kg m-1 s-1
/// assert!((magnitude.as_slice()[0] - 50.99).abs() < 0.01);
/// assert!((eastward.as_slice()[0] - 30.59).abs() < 0.01);
/// assert!((northward.as_slice()[0] - 40.79).abs() < 0.01);
/// ```
pub trait IntegratedVapourTransport<'scope> {
    /// Adds the IVT magnitude (and the components, when `config.components` names them) to
    /// every bundle. A bundle missing an input, or whose tiles do not hold every level, records
    /// an error in `errors` and passes on unchanged.
    fn ivt(self, config: Arc<IvtConfig>, errors: ErrorSlot)
    -> Stream<'scope, u64, Vec<TileBundle>>;
}

impl<'scope> IntegratedVapourTransport<'scope> for Stream<'scope, u64, Vec<TileBundle>> {
    fn ivt(
        self,
        config: Arc<IvtConfig>,
        errors: ErrorSlot,
    ) -> Stream<'scope, u64, Vec<TileBundle>> {
        self.map(move |mut bundle| {
            match ivt_tiles(&bundle, &config) {
                Ok(tiles) => bundle.tiles.extend(tiles),
                Err(message) => errors.set(bundle_error(&bundle, message)),
            }
            bundle
        })
    }
}

fn ivt_tiles(bundle: &TileBundle, config: &IvtConfig) -> Result<Vec<Tile>, String> {
    let q = input_tile(bundle, &config.humidity, "ivt")?;
    let u = input_tile(bundle, &config.wind[0], "ivt")?;
    let v = input_tile(bundle, &config.wind[1], "ivt")?;
    let expected = config.pressure_pa.len() * q.window.len();
    if q.values.len() != expected {
        return Err(format!(
            "ivt: {:?} holds {} values for a {}×{} block; {} levels need {expected}",
            config.humidity,
            q.values.len(),
            q.window.rows,
            q.window.cols,
            config.pressure_pa.len()
        ));
    }
    let [magnitude, eastward, northward] = ivt_values(config, &q.values, [&u.values, &v.values])?;
    // The outputs are fields: the input's step, region and bounds, one plane of values.
    let like = Tile {
        values: TileValues::from_vec(Vec::new()),
        ..q.clone()
    };
    let tile = |name: &str, values| derived_tile(&like, name, TRANSPORT_UNITS.to_owned(), values);
    let mut tiles = vec![tile(&config.output, magnitude)];
    if let Some([east_name, north_name]) = &config.components {
        tiles.push(tile(east_name, eastward));
        tiles.push(tile(north_name, northward));
    }
    Ok(tiles)
}

/// `[magnitude, eastward, northward]` IVT of one block from its humidity and winds, each holding
/// `levels × cells` values, level-major. A column with a missing value anywhere gives NaN.
pub fn ivt_values(
    config: &IvtConfig,
    humidity: &TileValues,
    wind: [&TileValues; 2],
) -> Result<[TileValues; 3], String> {
    let levels = config.pressure_pa.len();
    let values = humidity.len();
    if levels == 0 || !values.is_multiple_of(levels) {
        return Err(format!(
            "ivt: {:?} holds {values} values, not a whole number of planes for {levels} levels",
            config.humidity
        ));
    }
    for (name, component) in config.wind.iter().zip(wind) {
        if component.len() != values {
            return Err(format!(
                "ivt: {name:?} holds {} values and {:?} {values}; they must share levels and grid",
                component.len(),
                config.humidity
            ));
        }
    }
    let cells = values / levels;
    let (_, mut eastward, mut northward) = integrate_columns(
        &config.pressure_pa,
        humidity.as_slice(),
        wind[0].as_slice(),
        wind[1].as_slice(),
        cells,
    );
    let scale = config.humidity_scale * config.wind_scale;
    if scale != 1.0 {
        for x in eastward.iter_mut().chain(northward.iter_mut()) {
            *x = (f64::from(*x) * scale) as f32;
        }
    }
    let magnitude = eastward
        .iter()
        .zip(&northward)
        // As the magnitude operator computes it, so both agree to the bit.
        .map(|(e, n)| (e * e + n * n).sqrt())
        .collect();
    Ok([
        TileValues::from_vec(magnitude),
        TileValues::from_vec(eastward),
        TileValues::from_vec(northward),
    ])
}
