//! A small table of the units met in atmospheric data, for scale-and-offset conversions.
//!
//! Units are matched after normalisation: spacing is collapsed, `**` and `^` before exponents are
//! dropped (`m s**-1`, `m s^-1` and `m s-1` are one unit), `/` divides the factor after it
//! (`m/s`, `kg/m/s`), `.` and `*` separate factors, and factors may come in any order. Names are
//! case-sensitive (`Pa`), with a case-insensitive fallback where that is unambiguous.
//!
//! Depths of liquid water convert to mass per area with a density of 1000 kg m-3, so
//! 1 mm of precipitation is 1 kg m-2 (and ERA5's `m` of water is 1000 kg m-2).
//!
//! ```
//! use isotach_core::units::{conversion, same_dimension};
//!
//! let c = conversion("K", "degC").unwrap();
//! assert_eq!(c.apply(300.0), 26.85);
//! assert_eq!(conversion("Pa", "hPa").unwrap().apply(101_325.0), 1013.25);
//! assert_eq!(conversion("m s**-1", "knot").unwrap().apply(1852.0 / 3600.0), 1.0);
//! assert!(same_dimension("m/s", "km h-1"));
//! let err = conversion("K", "hPa").unwrap_err().to_string();
//! assert_eq!(
//!     err,
//!     "cannot convert \"K\" (temperature) to \"hPa\": \"hPa\" is a pressure unit; \"K\" converts to: K, degC, degF"
//! );
//! ```

use std::fmt;

/// A linear conversion: `converted = value × scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    /// Factor applied first.
    pub scale: f64,
    /// Added after scaling, in the target units.
    pub offset: f64,
}

impl Conversion {
    /// The conversion that changes nothing.
    pub const IDENTITY: Conversion = Conversion {
        scale: 1.0,
        offset: 0.0,
    };

    /// True when converting changes no value.
    pub fn is_identity(&self) -> bool {
        self.scale == 1.0 && self.offset == 0.0
    }

    /// Converts one value, computing in f64 and rounding once to f32 (NaN stays NaN).
    pub fn apply(&self, value: f32) -> f32 {
        (f64::from(value) * self.scale + self.offset) as f32
    }

    /// Converts every value of `values`.
    pub fn apply_slice(&self, values: &[f32]) -> Vec<f32> {
        if self.is_identity() {
            return values.to_vec();
        }
        let (scale, offset) = (self.scale, self.offset);
        values
            .iter()
            .map(|v| (f64::from(*v) * scale + offset) as f32)
            .collect()
    }
}

/// What a unit measures. Units convert into each other only within one dimension (and between
/// [`Dimension::Length`] and [`Dimension::MassPerArea`] for depths of water).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Temperature (K, degC, degF).
    Temperature,
    /// Pressure (Pa, hPa, …).
    Pressure,
    /// Speed (m s-1, km h-1, knot, mph).
    Speed,
    /// Length (m, km, …).
    Length,
    /// Mass per area, as for accumulated precipitation or water vapour (kg m-2).
    MassPerArea,
    /// Mass flux per area, as for precipitation rates (kg m-2 s-1, mm h-1, …).
    MassFlux,
    /// Vertically integrated transport, as for IVT (kg m-1 s-1).
    Transport,
    /// Dimensionless ratios (1, %, kg kg-1, g kg-1).
    Ratio,
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Temperature => "temperature",
            Self::Pressure => "pressure",
            Self::Speed => "speed",
            Self::Length => "length",
            Self::MassPerArea => "mass per area",
            Self::MassFlux => "mass flux",
            Self::Transport => "transport",
            Self::Ratio => "ratio",
        })
    }
}

/// A unit conversion that cannot be made, naming both units and what would work instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitsError {
    /// The source units are not in the table.
    #[error(
        "cannot convert {from:?} to {to:?}: {from:?} is not a known unit (known units: {})",
        .known.join(", ")
    )]
    UnknownFrom {
        /// The units converted from.
        from: String,
        /// The units asked for.
        to: String,
        /// Every unit in the table, in canonical spelling.
        known: Vec<String>,
    },
    /// The target units are unknown or measure something else.
    #[error(
        "cannot convert {from:?} ({dimension}) to {to:?}: {}; {from:?} converts to: {}",
        Target(.to, .to_dimension),
        .convertible.join(", ")
    )]
    Incompatible {
        /// The units converted from.
        from: String,
        /// The units asked for.
        to: String,
        /// What `from` measures.
        dimension: Dimension,
        /// What `to` measures, when it is known.
        to_dimension: Option<Dimension>,
        /// The units `from` converts to, in canonical spelling.
        convertible: Vec<String>,
    },
}

struct Target<'a>(&'a String, &'a Option<Dimension>);

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(dimension) => write!(f, "{:?} is a {dimension} unit", self.0),
            None => write!(f, "{:?} is not a known unit", self.0),
        }
    }
}

/// One unit: its spellings (the first is canonical), what it measures, and how it relates to the
/// dimension's reference unit: `reference = value × scale + offset`.
struct Unit {
    names: &'static [&'static str],
    dimension: Dimension,
    scale: f64,
    offset: f64,
}

const fn unit(names: &'static [&'static str], dimension: Dimension, scale: f64) -> Unit {
    Unit {
        names,
        dimension,
        scale,
        offset: 0.0,
    }
}

/// Density of liquid water, kg m-3: a depth of water in metres times this is kg m-2.
const WATER_DENSITY: f64 = 1000.0;

use Dimension::*;

static UNITS: &[Unit] = &[
    unit(
        &["K", "kelvin", "degK", "deg_K", "degree_K", "degrees_K"],
        Temperature,
        1.0,
    ),
    Unit {
        names: &[
            "degC",
            "°C",
            "deg_C",
            "degree_C",
            "degrees_C",
            "degree_Celsius",
            "degrees_Celsius",
            "celsius",
            "C",
        ],
        dimension: Temperature,
        scale: 1.0,
        offset: 273.15,
    },
    Unit {
        names: &[
            "degF",
            "°F",
            "deg_F",
            "degree_F",
            "degrees_F",
            "degree_Fahrenheit",
            "degrees_Fahrenheit",
            "fahrenheit",
            "F",
        ],
        dimension: Temperature,
        scale: 5.0 / 9.0,
        offset: 459.67 * 5.0 / 9.0,
    },
    unit(&["Pa", "pascal"], Pressure, 1.0),
    unit(&["hPa", "hectopascal"], Pressure, 100.0),
    unit(&["mbar", "mb", "millibar"], Pressure, 100.0),
    unit(&["kPa", "kilopascal"], Pressure, 1000.0),
    unit(&["bar"], Pressure, 1e5),
    unit(&["m s-1", "meter second-1", "metre second-1"], Speed, 1.0),
    unit(&["km h-1", "km hr-1", "kph"], Speed, 1000.0 / 3600.0),
    unit(
        &["knot", "knots", "kt", "kts", "kn"],
        Speed,
        1852.0 / 3600.0,
    ),
    unit(&["mph", "mi h-1"], Speed, 1609.344 / 3600.0),
    unit(&["m", "meter", "metre", "meters", "metres"], Length, 1.0),
    unit(&["km", "kilometer", "kilometre"], Length, 1000.0),
    unit(&["cm", "centimeter", "centimetre"], Length, 0.01),
    unit(
        &[
            "mm",
            "millimeter",
            "millimetre",
            "millimeters",
            "millimetres",
        ],
        Length,
        0.001,
    ),
    unit(&["kg m-2"], MassPerArea, 1.0),
    unit(&["kg m-2 s-1", "mm s-1"], MassFlux, 1.0),
    unit(&["mm h-1", "mm hr-1"], MassFlux, 1.0 / 3600.0),
    unit(&["mm day-1", "mm d-1"], MassFlux, 1.0 / 86_400.0),
    unit(&["kg m-1 s-1"], Transport, 1.0),
    unit(&["1", "fraction"], Ratio, 1.0),
    unit(&["%", "percent"], Ratio, 0.01),
    unit(&["kg kg-1"], Ratio, 1.0),
    unit(&["g kg-1"], Ratio, 0.001),
];

/// The units spelled in a comparable form: factors sorted, exponents written as `-1`, `2`, …
/// (`m s**-1`, `m s^-1`, `m/s` and `s-1 m` all give `m s-1`). Text that is not a product of
/// `name[exponent]` factors is only trimmed.
fn normalize(units: &str) -> String {
    let text = units.trim();
    let mut factors: Vec<(String, i32)> = Vec::new();
    let mut divide = false;
    let mut current = String::new();
    let mut flush = |current: &mut String, divide: &mut bool| -> Option<()> {
        if current.is_empty() {
            return Some(());
        }
        let cleaned = current.replace("**", "").replace('^', "");
        let split = cleaned
            .find(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
            .unwrap_or(cleaned.len());
        let (name, exponent) = cleaned.split_at(split);
        let mut exponent: i32 = if exponent.is_empty() {
            1
        } else {
            exponent.parse().ok()?
        };
        if name.is_empty() {
            // A bare number: only `1` (dimensionless) is meaningful, and only alone.
            if exponent != 1 {
                return None;
            }
            factors.push(("1".to_owned(), 1));
        } else {
            if *divide {
                exponent = -exponent;
            }
            if exponent != 0 {
                factors.push((name.to_owned(), exponent));
            }
        }
        current.clear();
        *divide = false;
        Some(())
    };
    for c in text.chars() {
        let ok = match c {
            ' ' | '\t' | '.' | '·' => flush(&mut current, &mut divide),
            '*' if !current.ends_with('*') && !current.is_empty() => {
                // `*` alone multiplies; `**` introduces an exponent (kept, dropped in `flush`).
                current.push(c);
                Some(())
            }
            '/' => flush(&mut current, &mut divide).map(|()| divide = true),
            _ => {
                // A lone `*` followed by a name (`kg*m-2`) was a product.
                if current.ends_with('*')
                    && !current.ends_with("**")
                    && !matches!(c, '*' | '-' | '+' | '0'..='9')
                {
                    current.pop();
                    let r = flush(&mut current, &mut divide);
                    current.push(c);
                    r
                } else {
                    current.push(c);
                    Some(())
                }
            }
        };
        if ok.is_none() {
            return text.to_owned();
        }
    }
    if flush(&mut current, &mut divide).is_none() || divide {
        return text.to_owned();
    }
    if factors.len() > 1 && factors.iter().any(|(name, _)| name == "1") {
        factors.retain(|(name, _)| name != "1");
    }
    // By name only, stably: `kg/kg` stays `kg kg-1`.
    factors.sort_by(|a, b| a.0.cmp(&b.0));
    factors
        .iter()
        .map(|(name, exponent)| {
            if *exponent == 1 {
                name.clone()
            } else {
                format!("{name}{exponent}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn lookup(units: &str) -> Option<&'static Unit> {
    let key = normalize(units);
    let exact = UNITS
        .iter()
        .find(|u| u.names.iter().any(|n| normalize(n) == key));
    if exact.is_some() {
        return exact;
    }
    let lower = key.to_lowercase();
    let mut matches = UNITS
        .iter()
        .filter(|u| u.names.iter().any(|n| normalize(n).to_lowercase() == lower));
    match (matches.next(), matches.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// `unit` expressed in `dimension`'s reference unit (`reference = value × scale + offset`), when
/// it measures that dimension or a depth of water stands for it.
fn in_dimension(unit: &Unit, dimension: Dimension) -> Option<(f64, f64)> {
    match (unit.dimension, dimension) {
        (a, b) if a == b => Some((unit.scale, unit.offset)),
        (Length, MassPerArea) => Some((unit.scale * WATER_DENSITY, 0.0)),
        (MassPerArea, Length) => Some((unit.scale / WATER_DENSITY, 0.0)),
        _ => None,
    }
}

fn between(from: &Unit, to: &Unit) -> Option<Conversion> {
    let (to_scale, to_offset) = (to.scale, to.offset);
    let (scale, offset) = in_dimension(from, to.dimension)?;
    // reference = v × scale + offset; converted = (reference − to_offset) / to_scale.
    Some(Conversion {
        scale: scale / to_scale,
        offset: (offset - to_offset) / to_scale,
    })
}

/// The conversion from units `from` to units `to`, for example `K` to `degC` (scale 1, offset
/// -273.15). Identical units (after normalisation) convert with [`Conversion::IDENTITY`], even
/// when the table does not know them.
///
/// Fails naming both units: with every known unit when `from` is unknown, with the units `from`
/// converts to otherwise.
pub fn conversion(from: &str, to: &str) -> Result<Conversion, UnitsError> {
    if normalize(from) == normalize(to) {
        return Ok(Conversion::IDENTITY);
    }
    let Some(source) = lookup(from) else {
        return Err(UnitsError::UnknownFrom {
            from: from.to_owned(),
            to: to.to_owned(),
            known: known_units().into_iter().map(str::to_owned).collect(),
        });
    };
    let target = lookup(to);
    if let Some(conversion) = target.and_then(|target| between(source, target)) {
        return Ok(conversion);
    }
    Err(UnitsError::Incompatible {
        from: from.to_owned(),
        to: to.to_owned(),
        dimension: source.dimension,
        to_dimension: target.map(|t| t.dimension),
        convertible: UNITS
            .iter()
            .filter(|u| between(source, u).is_some())
            .map(|u| u.names[0].to_owned())
            .collect(),
    })
}

/// What `units` measures, when the table knows them.
pub fn dimension(units: &str) -> Option<Dimension> {
    lookup(units).map(|u| u.dimension)
}

/// The canonical spelling of `units` (`m/s` gives `m s-1`), when the table knows them.
pub fn canonical(units: &str) -> Option<&'static str> {
    lookup(units).map(|u| u.names[0])
}

/// True when `a` and `b` measure the same dimension: both known and of one [`Dimension`], or
/// spelled the same after normalisation (unknown units only match themselves). A depth of water
/// and a mass per area convert into each other but are not the same dimension.
pub fn same_dimension(a: &str, b: &str) -> bool {
    if normalize(a) == normalize(b) {
        return true;
    }
    match (dimension(a), dimension(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Every unit of the table, in canonical spelling.
pub fn known_units() -> Vec<&'static str> {
    UNITS.iter().map(|u| u.names[0]).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn convert(from: &str, to: &str, value: f64) -> f64 {
        let c = conversion(from, to).unwrap();
        value * c.scale + c.offset
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn spellings_normalise() {
        for (a, b) in [
            ("m s**-1", "m s-1"),
            ("m s^-1", "m s-1"),
            ("m/s", "m s-1"),
            ("  m   s-1 ", "m s-1"),
            ("s-1 m", "m s-1"),
            ("m.s-1", "m s-1"),
            ("m*s**-1", "m s-1"),
            ("kg/m/s", "kg m-1 s-1"),
            ("kg m**-1 s**-1", "kg m-1 s-1"),
            ("kg*m^-2", "kg m-2"),
            ("kg/kg", "kg kg-1"),
            ("m2 s-2", "m2 s-2"),
            ("m**2/s**2", "m2 s-2"),
            ("1", "1"),
            ("K", "K"),
            ("°C", "°C"),
        ] {
            assert_eq!(normalize(a), b, "{a:?}");
        }
        // Not a product of factors: kept as written (trimmed).
        assert_eq!(normalize(" m/ "), "m/");
        assert_eq!(normalize("days since 2000-01-01"), "days since 2000-01-01");
    }

    #[test]
    fn conversions_are_right() {
        for (from, to, value, expected) in [
            ("K", "degC", 273.15, 0.0),
            ("K", "°C", 300.0, 26.85),
            ("degC", "K", -273.15, 0.0),
            ("celsius", "degF", 100.0, 212.0),
            ("deg_C", "degF", -40.0, -40.0),
            ("degF", "K", 32.0, 273.15),
            ("F", "C", 212.0, 100.0),
            ("Pa", "hPa", 101_325.0, 1013.25),
            ("hPa", "mbar", 850.0, 850.0),
            ("kPa", "Pa", 1.0, 1000.0),
            ("m s-1", "km h-1", 10.0, 36.0),
            ("m/s", "knot", 1852.0 / 3600.0, 1.0),
            ("kt", "m s**-1", 1.0, 0.514_444_444_444_444_5),
            ("mph", "km/h", 1.0, 1.609_344),
            ("kg m-2", "mm", 12.5, 12.5),
            ("m", "kg m**-2", 0.012, 12.0),
            ("mm", "m", 1000.0, 1.0),
            ("km", "m", 1.5, 1500.0),
            ("kg kg-1", "g kg-1", 0.012, 12.0),
            ("g/kg", "kg/kg", 5.0, 0.005),
            ("1", "%", 0.5, 50.0),
            ("kg m-2 s-1", "mm h-1", 1.0, 3600.0),
            ("mm/day", "mm h-1", 24.0, 1.0),
            ("kg m-1 s-1", "kg/m/s", 250.0, 250.0),
            ("PA", "hPa", 100.0, 1.0),
        ] {
            let got = convert(from, to, value);
            assert!(close(got, expected), "{from} -> {to}: {got} != {expected}");
        }
        assert_eq!(conversion("K", "K").unwrap(), Conversion::IDENTITY);
        assert_eq!(conversion("hPa", "mbar").unwrap(), Conversion::IDENTITY);
        assert_eq!(conversion("m/s", "m s**-1").unwrap(), Conversion::IDENTITY);
        // Unknown units convert only to themselves.
        assert_eq!(
            conversion("furlong fortnight-1", "fortnight-1 furlong").unwrap(),
            Conversion::IDENTITY
        );
        let c = conversion("K", "degC").unwrap();
        assert!(c.apply(f32::NAN).is_nan());
        assert_eq!(
            c.apply_slice(&[273.5, 283.5, 0.0]),
            vec![0.35, 10.35, -273.15]
        );
    }

    #[test]
    fn errors_name_both_units_and_the_alternatives() {
        let err = conversion("K", "hPa").unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot convert \"K\" (temperature) to \"hPa\": \"hPa\" is a pressure unit; \"K\" converts to: K, degC, degF"
        );
        let err = conversion("m s-1", "furlongs").unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot convert \"m s-1\" (speed) to \"furlongs\": \"furlongs\" is not a known unit; \"m s-1\" converts to: m s-1, km h-1, knot, mph"
        );
        let err = conversion("mm", "K").unwrap_err().to_string();
        assert!(
            err.contains("\"mm\" converts to: m, km, cm, mm, kg m-2"),
            "{err}"
        );
        let err = conversion("furlongs", "m").unwrap_err();
        assert!(matches!(err, UnitsError::UnknownFrom { .. }));
        let text = err.to_string();
        assert!(
            text.starts_with("cannot convert \"furlongs\" to \"m\": \"furlongs\" is not a known unit (known units: K, degC, degF, Pa, hPa"),
            "{text}"
        );
    }

    #[test]
    fn dimensions() {
        assert!(same_dimension("m s-1", "knot"));
        assert!(same_dimension("kg m-1 s-1", "kg/m/s"));
        assert!(same_dimension("weird", " weird "));
        assert!(!same_dimension("K", "Pa"));
        assert!(!same_dimension("weird", "K"));
        assert!(!same_dimension("mm", "kg m-2"));
        assert_eq!(dimension("°C"), Some(Temperature));
        assert_eq!(dimension("kg m**-1 s**-1"), Some(Transport));
        assert_eq!(dimension("nonsense"), None);
        assert_eq!(canonical("m/s"), Some("m s-1"));
        assert_eq!(canonical("kts"), Some("knot"));
        assert!(known_units().contains(&"g kg-1"));
        // Every spelling in the table is found, and finds its own unit.
        for unit in UNITS {
            for name in unit.names {
                assert_eq!(canonical(name), Some(unit.names[0]), "{name:?}");
            }
        }
    }
}
