//! A synthetic atmosphere, written as a CF-annotated Zarr v3 store.
//!
//! Real reanalyses cannot be downloaded where Isotach is tested, and benchmarks need size, so
//! `isotach generate` makes an ERA5-like dataset: a regular lat/lon grid from tiny to 0.25°,
//! 6-hourly steps, a jet stream with travelling waves in each hemisphere, a moist tropics, and
//! atmospheric rivers that form over the ocean, move poleward and eastward, make landfall on real
//! west coasts (North America, Europe, Chile) and decay. Specific humidity and winds are given on
//! pressure levels (1000–300 hPa); the column integrals `iwv`, `ivt_u`, `ivt_v` are computed from
//! exactly those stored levels by the trapezoidal rule, so IVT can be recomputed from the levels.
//!
//! Everything is analytic in (lat, lon, pressure, time) and the random numbers come from a fixed
//! SplitMix64 stream: the same [`SynthConfig`] writes the same bytes.
//!
//! ```no_run
//! let config = isotach_synth::SynthConfig { resolution_deg: 2.0, steps: 8, ..Default::default() };
//! let summary = isotach_synth::generate(&config, std::path::Path::new("data/tiny.zarr")).unwrap();
//! assert_eq!(summary.shape, [8, 91, 180]);
//! ```

mod events;
mod physics;
mod rng;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use isotach_connectors::{VariableLayout, ZarrVariableWriter, ZarrWriter};
use isotach_core::{CfTimeUnits, LatLonGrid, TimeAxis};
use serde_json::{Map, Value, json};

pub use events::ArEvent;

/// What to generate. Defaults: seed 42, 1° grid, 40 steps 6 hours apart from 2017-01-01T00Z,
/// levels 1000, 925, 850, 700, 600, 500, 400, 300 hPa.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Grid spacing in degrees; must divide 180 evenly (0.25 gives ERA5's 1440 × 721).
    pub resolution_deg: f64,
    /// Number of time steps.
    pub steps: usize,
    /// Hours between steps.
    pub step_hours: i64,
    /// Instant of the first step.
    pub start: DateTime<Utc>,
    /// Pressure levels, hPa, from the bottom up; must include 850.
    pub levels_hpa: Vec<f64>,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Write only the surface variables ([`SURFACE_VARIABLES`]), skipping the pressure-level
    /// arrays `q`, `u`, `v` (default false). The levels are still computed, since the column
    /// integrals come from them, and the `level` coordinate is still written; a 0.25° store is then
    /// 6 planes a step instead of 6 + 3 × levels.
    pub surface_only: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            resolution_deg: 1.0,
            steps: 40,
            step_hours: 6,
            start: DateTime::parse_from_rfc3339("2017-01-01T00:00:00Z")
                .map(|t| t.to_utc())
                .unwrap_or_default(),
            levels_hpa: vec![1000.0, 925.0, 850.0, 700.0, 600.0, 500.0, 400.0, 300.0],
            threads: 0,
            surface_only: false,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    /// (time, lat, lon).
    pub shape: [usize; 3],
    /// Number of atmospheric-river events touching the window.
    pub events: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// A configuration that cannot be generated, naming the field and value.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A field of [`SynthConfig`] is out of range.
    #[error("generate: {field} = {value}: {why}")]
    Config {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// The accepted range.
        why: &'static str,
    },
    /// Writing the store failed.
    #[error(transparent)]
    Write(#[from] isotach_connectors::ConnectorError),
}

/// The surface variables, with their CF attributes: (name, units, long_name, standard_name).
pub const SURFACE_VARIABLES: [(&str, &str, &str, &str); 6] = [
    (
        "iwv",
        "kg m-2",
        "Total column water vapour",
        "atmosphere_mass_content_of_water_vapor",
    ),
    (
        "ivt_u",
        "kg m-1 s-1",
        "Eastward vertical integral of water vapour flux",
        "eastward_atmosphere_water_vapor_transport_across_unit_distance",
    ),
    (
        "ivt_v",
        "kg m-1 s-1",
        "Northward vertical integral of water vapour flux",
        "northward_atmosphere_water_vapor_transport_across_unit_distance",
    ),
    ("u850", "m s-1", "Eastward wind at 850 hPa", "eastward_wind"),
    (
        "v850",
        "m s-1",
        "Northward wind at 850 hPa",
        "northward_wind",
    ),
    (
        "mslp",
        "Pa",
        "Mean sea level pressure",
        "air_pressure_at_mean_sea_level",
    ),
];

/// The pressure-level variables: (name, units, long_name, standard_name).
pub const LEVEL_VARIABLES: [(&str, &str, &str, &str); 3] = [
    ("q", "kg kg-1", "Specific humidity", "specific_humidity"),
    ("u", "m s-1", "Eastward wind", "eastward_wind"),
    ("v", "m s-1", "Northward wind", "northward_wind"),
];

impl SynthConfig {
    fn check(&self) -> Result<(), SynthError> {
        let bad = |field, value: String, why| Err(SynthError::Config { field, value, why });
        let r = self.resolution_deg;
        let nlat = 180.0 / r;
        if !(0.1..=10.0).contains(&r) || (nlat - nlat.round()).abs() > 1e-9 {
            return bad(
                "resolution_deg",
                r.to_string(),
                "must be between 0.1 and 10 and divide 180 evenly (0.25, 0.5, 1, 2, ...)",
            );
        }
        if !(1..=100_000).contains(&self.steps) {
            return bad(
                "steps",
                self.steps.to_string(),
                "must be between 1 and 100000",
            );
        }
        if !(1..=24).contains(&self.step_hours) {
            return bad(
                "step_hours",
                self.step_hours.to_string(),
                "must be between 1 and 24",
            );
        }
        let ordered = self.levels_hpa.windows(2).all(|w| w[0] > w[1]);
        if self.levels_hpa.len() < 2
            || !ordered
            || !self.levels_hpa.iter().all(|p| (100.0..=1100.0).contains(p))
        {
            return bad(
                "levels_hpa",
                format!("{:?}", self.levels_hpa),
                "needs at least 2 levels in 100..=1100 hPa, strictly decreasing",
            );
        }
        if !self.levels_hpa.contains(&850.0) {
            return bad(
                "levels_hpa",
                format!("{:?}", self.levels_hpa),
                "must include 850 (for u850, v850)",
            );
        }
        Ok(())
    }

    /// The grid this configuration generates.
    pub fn grid(&self) -> LatLonGrid {
        LatLonGrid::regular(self.resolution_deg)
    }

    /// The time axis this configuration generates.
    pub fn time_axis(&self) -> TimeAxis {
        TimeAxis::regular(self.start, self.step_hours, self.steps)
    }

    /// The atmospheric rivers of the window, in genesis order per basin.
    pub fn events(&self) -> Vec<ArEvent> {
        let last_h = (self.steps.saturating_sub(1) as i64 * self.step_hours) as f64;
        events::plan_events(self.seed, 0.0, last_h)
            .into_iter()
            .filter(|e| e.genesis_h <= last_h && e.genesis_h + e.lifetime_h >= 0.0)
            .collect()
    }
}

/// Blocks of about a quarter of the globe's extent in each direction: 16 tiles per step to shard.
fn chunk_len(n: usize) -> u64 {
    n.div_ceil(4) as u64
}

/// Writes the synthetic atmosphere to a new Zarr v3 store at `path`.
pub fn generate(config: &SynthConfig, path: &Path) -> Result<SynthSummary, SynthError> {
    config.check()?;
    let started = Instant::now();
    let grid = Arc::new(config.grid());
    let (nlat, nlon) = grid.shape();
    let axis = config.time_axis();
    let events = config.events();

    let mut root = Map::new();
    root.insert("Conventions".into(), json!("CF-1.8"));
    root.insert("title".into(), json!("Isotach synthetic atmosphere"));
    root.insert(
        "source".into(),
        json!(format!("isotach generate, seed {}", config.seed)),
    );
    root.insert("isotach_seed".into(), json!(config.seed));
    root.insert(
        "isotach_resolution_deg".into(),
        json!(config.resolution_deg),
    );
    // JSON text, not a JSON list: NetCDF attributes hold text and numbers only, and a copy of the
    // store made with xarray's `to_netcdf` must keep the catalogue.
    root.insert(
        "isotach_ar_events".into(),
        json!(Value::Array(events.iter().map(|e| event_json(e, config)).collect()).to_string()),
    );
    let writer = ZarrWriter::create(path, root)?;

    let attrs = |pairs: &[(&str, &str)]| -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    };
    writer.write_lat_lon(&grid)?;
    writer.write_coordinate(
        "level",
        &config.levels_hpa,
        attrs(&[
            ("units", "hPa"),
            ("standard_name", "air_pressure"),
            ("long_name", "pressure level"),
            ("positive", "down"),
            ("axis", "Z"),
        ]),
    )?;
    let epoch = DateTime::parse_from_rfc3339("1900-01-01T00:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default();
    writer.write_time(&axis, CfTimeUnits::hours_since(epoch), Map::new())?;

    let (cl, cn) = (chunk_len(nlat), chunk_len(nlon));
    let nlev = config.levels_hpa.len() as u64;
    let surface_layout = VariableLayout {
        dims: ["time", "lat", "lon"].map(String::from).to_vec(),
        shape: vec![config.steps as u64, nlat as u64, nlon as u64],
        chunks: vec![1, cl, cn],
    };
    let level_layout = VariableLayout {
        dims: ["time", "level", "lat", "lon"].map(String::from).to_vec(),
        shape: vec![config.steps as u64, nlev, nlat as u64, nlon as u64],
        chunks: vec![1, nlev, cl, cn],
    };
    let declare = |(name, units, long_name, standard_name): (&str, &str, &str, &str),
                   layout: &VariableLayout| {
        writer.create_variable(
            name,
            layout,
            attrs(&[
                ("units", units),
                ("long_name", long_name),
                ("standard_name", standard_name),
            ]),
        )
    };
    let surface: Vec<ZarrVariableWriter> = SURFACE_VARIABLES
        .iter()
        .map(|v| declare(*v, &surface_layout))
        .collect::<Result<_, _>>()?;
    let levels: Vec<ZarrVariableWriter> = if config.surface_only {
        Vec::new()
    } else {
        LEVEL_VARIABLES
            .iter()
            .map(|v| declare(*v, &level_layout))
            .collect::<Result<_, _>>()?
    };

    let mut rng = rng::SplitMix64::new(config.seed);
    let waves = physics::WavePhases {
        phase: [
            [
                rng.uniform(0.0, std::f64::consts::TAU),
                rng.uniform(0.0, std::f64::consts::TAU),
            ],
            [
                rng.uniform(0.0, std::f64::consts::TAU),
                rng.uniform(0.0, std::f64::consts::TAU),
            ],
        ],
    };
    let threads = match config.threads {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    }
    .min(config.steps);
    let write_step = |step: usize| -> Result<(), SynthError> {
        let hour = (step as i64 * config.step_hours) as f64;
        let f = physics::step_fields(&grid, &config.levels_hpa, hour, waves, &events);
        let s = step as u64;
        for (writer, values) in surface
            .iter()
            .zip([&f.iwv, &f.ivt_u, &f.ivt_v, &f.u850, &f.v850, &f.mslp])
        {
            writer.write_step(s, values)?;
        }
        for (writer, values) in levels.iter().zip([&f.q, &f.u, &f.v]) {
            writer.write_step(s, values)?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let write_step = &write_step;
                scope.spawn(move || (t..config.steps).step_by(threads).try_for_each(write_step))
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })?;
    writer.consolidate()?;
    tracing::info!(path = %path.display(), steps = config.steps, nlat, nlon, events = events.len(), "synthetic atmosphere written");
    Ok(SynthSummary {
        shape: [config.steps, nlat, nlon],
        events: events.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn event_json(e: &ArEvent, config: &SynthConfig) -> Value {
    let at = |h: f64| {
        (config.start + chrono::Duration::minutes((h * 60.0).round() as i64))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    json!({
        "basin": e.basin,
        "genesis": at(e.genesis_h),
        "landfall": at(e.landfall_h),
        "decay": at(e.genesis_h + e.lifetime_h),
        "landfall_lon": e.landfall[0],
        "landfall_lat": e.landfall[1],
    })
}
