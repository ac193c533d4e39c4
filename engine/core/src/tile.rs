use arrow::array::Float32Array;
use arrow::buffer::ScalarBuffer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which rectangular block of the grid a tile covers, in units of blocks. Tiles are sharded across
/// workers by this key, so every variable of one region lands on the same worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RegionKey {
    /// Block row (latitude direction).
    pub row: u32,
    /// Block column (longitude direction).
    pub col: u32,
}

impl RegionKey {
    /// A stable 64-bit routing hash, identical in every process (unlike `std`'s random hasher).
    pub fn route(&self) -> u64 {
        // SplitMix64 finaliser over the packed key.
        let mut z = ((self.row as u64) << 32 | self.col as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The index window of a tile within its grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TileWindow {
    /// First row.
    pub row0: usize,
    /// Number of rows.
    pub rows: usize,
    /// First column.
    pub col0: usize,
    /// Number of columns.
    pub cols: usize,
}

impl TileWindow {
    /// Number of cells.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// True when the window holds no cell.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The unit of work: one variable at one time step over one region, values row-major in an Arrow
/// buffer (missing values are NaN, as in CF data, rather than Arrow nulls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tile {
    /// Variable name.
    pub variable: String,
    /// Units of the values (UDUNITS spelling, for example `kg m-1 s-1`).
    pub units: String,
    /// Time step index (the timely timestamp).
    pub step: u64,
    /// The block this tile covers.
    pub region: RegionKey,
    /// Where the block sits in the grid.
    pub window: TileWindow,
    /// Latitude bounds `[first row, last row]`, degrees north.
    pub lat_bounds: [f64; 2],
    /// Longitude bounds `[first column, last column]`, degrees east.
    pub lon_bounds: [f64; 2],
    /// The values, `window.rows × window.cols`, row-major; for a variable on levels, one such
    /// plane per level, level-major.
    pub values: TileValues,
}

impl Tile {
    /// A tile of `grid` over `window`, its bounds taken from the grid's coordinates. The window
    /// must be non-empty and inside the grid (sources check it before reading).
    pub fn on_grid(
        variable: &str,
        units: String,
        (step, region, window): (u64, RegionKey, TileWindow),
        grid: &crate::LatLonGrid,
        values: Vec<f32>,
    ) -> Self {
        let last_row = window.row0 + window.rows.max(1) - 1;
        let last_col = window.col0 + window.cols.max(1) - 1;
        Self {
            variable: variable.to_owned(),
            units,
            step,
            region,
            window,
            lat_bounds: [grid.lat[window.row0], grid.lat[last_row]],
            lon_bounds: [grid.lon[window.col0], grid.lon[last_col]],
            values: TileValues::from_vec(values),
        }
    }
}

/// The values of a tile: an Arrow array that crosses process boundaries as raw little-endian f32.
#[derive(Debug, Clone, PartialEq)]
pub struct TileValues(pub Float32Array);

impl TileValues {
    /// Wraps a vector without copying.
    pub fn from_vec(values: Vec<f32>) -> Self {
        Self(Float32Array::new(ScalarBuffer::from(values), None))
    }

    /// The values as a slice.
    pub fn as_slice(&self) -> &[f32] {
        self.0.values()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for TileValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self
            .as_slice()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for TileValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TileValues;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("little-endian f32 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<TileValues, E> {
                if !bytes.len().is_multiple_of(4) {
                    return Err(E::custom(format!(
                        "tile byte count {} is not a multiple of 4",
                        bytes.len()
                    )));
                }
                let values = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok(TileValues::from_vec(values))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<TileValues, E> {
                self.visit_bytes(&bytes)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TileValues, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                self.visit_bytes(&bytes)
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_is_stable_and_spreads() {
        let a = RegionKey { row: 0, col: 0 }.route();
        assert_eq!(a, RegionKey { row: 0, col: 0 }.route());
        let buckets: std::collections::BTreeSet<u64> = (0..4)
            .flat_map(|r| (0..4).map(move |c| RegionKey { row: r, col: c }.route() % 2))
            .collect();
        assert_eq!(buckets.len(), 2, "16 regions must reach both of 2 workers");
    }

    #[test]
    fn tile_values_survive_serde_with_nan() {
        let values = TileValues::from_vec(vec![1.5, f32::NAN, -0.0, 1e30]);
        let json = serde_json_like(&values);
        let back: TileValues = json;
        assert_eq!(back.as_slice()[0], 1.5);
        assert!(back.as_slice()[1].is_nan());
        assert_eq!(back.as_slice()[3], 1e30);
    }

    // A minimal byte round trip through serde's value model, without another dependency.
    fn serde_json_like(values: &TileValues) -> TileValues {
        use serde::de::value::{BytesDeserializer, Error};
        let bytes: Vec<u8> = values
            .as_slice()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        TileValues::deserialize(BytesDeserializer::<Error>::new(&bytes)).expect("bytes decode")
    }
}
