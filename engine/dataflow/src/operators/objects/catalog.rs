//! The object catalog: one record per object and step, the end-of-run duration filter, and the
//! Arrow table.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, TimestampMillisecondArray, UInt32Array,
    UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One object at one step: where it is, how big and how strong, its shape, and whether it passes
/// the atmospheric-river criterion at this step.
///
/// Floating-point fields compare by their total order ([`f64::total_cmp`]) so that records can
/// live in differential collections, which need `Ord`; two records are equal only when every
/// field is bit-for-bit equal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// The object's id: the `node` of its earliest record (see the module documentation).
    pub id: u64,
    /// This (step, component) node's own number, in the same encoding as ids. A label written in
    /// a frame before a later merge is the `node` of some record; [`node_to_object`] maps it to
    /// the object's final id.
    pub node: u64,
    /// Time step index.
    pub step: u64,
    /// Instant of the step.
    pub time: DateTime<Utc>,
    /// Area-weighted mean latitude of the cells, degrees north.
    pub centroid_lat: f64,
    /// Area-weighted mean longitude of the cells (continuous across the dateline before
    /// averaging), degrees east, in the grid's longitude convention.
    pub centroid_lon: f64,
    /// Area of the cells, km².
    pub area_km2: f64,
    /// Largest value inside the object.
    pub max_value: f32,
    /// Area-weighted mean value inside the object.
    pub mean_value: f32,
    /// Southernmost cell centre, degrees north.
    pub lat_min: f64,
    /// Northernmost cell centre, degrees north.
    pub lat_max: f64,
    /// Westernmost cell centre, degrees east; greater than `lon_max` when the object crosses the
    /// seam of a global grid (the convention of a region box crossing the dateline).
    pub lon_min: f64,
    /// Easternmost cell centre, degrees east.
    pub lon_max: f64,
    /// Great-circle distance between the two cells farthest apart along the principal axis, km,
    /// and at least `sqrt(area)`, so that width never exceeds length.
    pub length_km: f64,
    /// `area / length`, km.
    pub width_km: f64,
    /// Angle of the principal axis from east, counter-clockwise, degrees in (-90, 90].
    pub orientation_deg: f64,
    /// Whether the object passes the atmospheric-river criterion at this step; `None` when no
    /// criterion is configured.
    pub is_ar: Option<bool>,
}

impl ObjectRecord {
    fn key(&self) -> impl Ord {
        (
            (self.id, self.step, self.node, self.time),
            [
                Total(self.centroid_lat),
                Total(self.centroid_lon),
                Total(self.area_km2),
                Total(self.max_value as f64),
                Total(self.mean_value as f64),
                Total(self.lat_min),
                Total(self.lat_max),
                Total(self.lon_min),
                Total(self.lon_max),
                Total(self.length_km),
                Total(self.width_km),
                Total(self.orientation_deg),
            ],
            self.is_ar,
        )
    }
}

/// An `f64` ordered by [`f64::total_cmp`].
#[derive(Debug, Clone, Copy)]
struct Total(f64);

impl PartialEq for Total {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for Total {}
impl PartialOrd for Total {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Total {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl PartialEq for ObjectRecord {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ObjectRecord {}
impl PartialOrd for ObjectRecord {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ObjectRecord {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}
impl Hash for ObjectRecord {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.id, self.node, self.step, self.time).hash(state);
        for x in [
            self.centroid_lat,
            self.centroid_lon,
            self.area_km2,
            self.max_value as f64,
            self.mean_value as f64,
            self.lat_min,
            self.lat_max,
            self.lon_min,
            self.lon_max,
            self.length_km,
            self.width_km,
            self.orientation_deg,
        ] {
            x.to_bits().hash(state);
        }
        self.is_ar.hash(state);
    }
}

/// The final catalog: records of objects spanning at least `min_duration_steps` distinct steps,
/// sorted by (id, step). Call it once the run is over, on every record with a positive net
/// multiplicity: an object's duration is only known at the end.
///
/// ```
/// use chrono::{DateTime, Utc};
/// use isotach_engine::operators::{ObjectRecord, finish_catalog};
/// let record = |id, step| ObjectRecord {
///     id, node: id, step, time: DateTime::<Utc>::UNIX_EPOCH,
///     centroid_lat: 0.0, centroid_lon: 0.0, area_km2: 1.0, max_value: 1.0, mean_value: 1.0,
///     lat_min: 0.0, lat_max: 0.0, lon_min: 0.0, lon_max: 0.0,
///     length_km: 1.0, width_km: 1.0, orientation_deg: 0.0, is_ar: None,
/// };
/// let kept = finish_catalog(vec![record(3, 1), record(1, 1), record(1, 0)], 2);
/// assert_eq!(kept.iter().map(|r| (r.id, r.step)).collect::<Vec<_>>(), vec![(1, 0), (1, 1)]);
/// ```
pub fn finish_catalog(
    mut records: Vec<ObjectRecord>,
    min_duration_steps: u32,
) -> Vec<ObjectRecord> {
    let durations = durations(&records);
    records.retain(|r| durations.get(&r.id).copied().unwrap_or(0) >= min_duration_steps as u64);
    records.sort_by(|a, b| {
        (a.id, a.step, a.node)
            .cmp(&(b.id, b.step, b.node))
            .then(a.cmp(b))
    });
    records
}

/// Number of distinct steps each object spans.
fn durations(records: &[ObjectRecord]) -> BTreeMap<u64, u64> {
    let steps: BTreeSet<(u64, u64)> = records.iter().map(|r| (r.id, r.step)).collect();
    let mut out = BTreeMap::new();
    for (id, _) in steps {
        *out.entry(id).or_insert(0) += 1;
    }
    out
}

/// The final object id of every node in `records`: a label written into a frame before a later
/// merge is a node number, and this map turns it into the id the whole history gives the object.
pub fn node_to_object(records: &[ObjectRecord]) -> BTreeMap<u64, u64> {
    records.iter().map(|r| (r.node, r.id)).collect()
}

/// Ids of the objects that pass the atmospheric-river criterion at one step at least (an object
/// fails when no step passes).
pub fn ar_object_ids(records: &[ObjectRecord]) -> BTreeSet<u64> {
    records
        .iter()
        .filter(|r| r.is_ar == Some(true))
        .map(|r| r.id)
        .collect()
}

/// The catalog as an Arrow table, one row per record in the order given: `id`, `node`, `step`
/// (UInt64), `time` (Timestamp(Millisecond, "UTC")), `centroid_lat`, `centroid_lon`, `area_km2`
/// (Float64), `max_value`, `mean_value` (Float32), `lat_min`, `lat_max`, `lon_min`, `lon_max`,
/// `length_km`, `width_km`, `orientation_deg` (Float64), `is_ar` (nullable Boolean: this step),
/// and two columns about the whole object computed over `records`, so pass the whole catalog:
/// `duration_steps` (UInt32) and `object_is_ar` (nullable Boolean: any step passes).
pub fn catalog_table(records: &[ObjectRecord]) -> Result<RecordBatch, ArrowError> {
    let durations = durations(records);
    let ar = ar_object_ids(records);
    let float64 = |name: &str| Field::new(name, DataType::Float64, false);
    let schema = Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("node", DataType::UInt64, false),
        Field::new("step", DataType::UInt64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        float64("centroid_lat"),
        float64("centroid_lon"),
        float64("area_km2"),
        Field::new("max_value", DataType::Float32, false),
        Field::new("mean_value", DataType::Float32, false),
        float64("lat_min"),
        float64("lat_max"),
        float64("lon_min"),
        float64("lon_max"),
        float64("length_km"),
        float64("width_km"),
        float64("orientation_deg"),
        Field::new("is_ar", DataType::Boolean, true),
        Field::new("duration_steps", DataType::UInt32, false),
        Field::new("object_is_ar", DataType::Boolean, true),
    ]);
    let f64s = |get: fn(&ObjectRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(records.iter().map(get)))
    };
    let u64s = |get: fn(&ObjectRecord) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(records.iter().map(get)))
    };
    let columns: Vec<ArrayRef> = vec![
        u64s(|r| r.id),
        u64s(|r| r.node),
        u64s(|r| r.step),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(
                records.iter().map(|r| r.time.timestamp_millis()),
            )
            .with_timezone("UTC"),
        ),
        f64s(|r| r.centroid_lat),
        f64s(|r| r.centroid_lon),
        f64s(|r| r.area_km2),
        Arc::new(Float32Array::from_iter_values(
            records.iter().map(|r| r.max_value),
        )),
        Arc::new(Float32Array::from_iter_values(
            records.iter().map(|r| r.mean_value),
        )),
        f64s(|r| r.lat_min),
        f64s(|r| r.lat_max),
        f64s(|r| r.lon_min),
        f64s(|r| r.lon_max),
        f64s(|r| r.length_km),
        f64s(|r| r.width_km),
        f64s(|r| r.orientation_deg),
        Arc::new(BooleanArray::from(
            records.iter().map(|r| r.is_ar).collect::<Vec<_>>(),
        )),
        Arc::new(UInt32Array::from_iter_values(records.iter().map(|r| {
            u32::try_from(durations.get(&r.id).copied().unwrap_or(0)).unwrap_or(u32::MAX)
        }))),
        Arc::new(BooleanArray::from(
            records
                .iter()
                .map(|r| r.is_ar.map(|_| ar.contains(&r.id)))
                .collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(Arc::new(schema), columns)
}
