//! Atmospheric-river events: where each forms, how it moves, where and when it makes landfall.

use crate::rng::SplitMix64;

/// A coastline that rivers of one ocean basin run into.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Basin {
    pub name: &'static str,
    /// +1 northern hemisphere, -1 southern.
    pub hemisphere: f64,
    /// Longitude of the coast (degrees east, 0..360); land lies east of it.
    pub coast_lon: f64,
    /// Latitudes where rivers of this basin make landfall.
    pub landfall_lat: [f64; 2],
}

pub(crate) const BASINS: [Basin; 3] = [
    Basin {
        name: "north-pacific",
        hemisphere: 1.0,
        coast_lon: 236.0,
        landfall_lat: [33.0, 52.0],
    },
    Basin {
        name: "north-atlantic",
        hemisphere: 1.0,
        coast_lon: 351.0,
        landfall_lat: [40.0, 58.0],
    },
    Basin {
        name: "south-pacific",
        hemisphere: -1.0,
        coast_lon: 286.5,
        landfall_lat: [-50.0, -35.0],
    },
];

/// One river, from genesis to decay. Times are hours since the dataset's first step.
#[derive(Debug, Clone)]
pub struct ArEvent {
    /// The basin (coast) it runs into.
    pub basin: &'static str,
    /// Hour of genesis.
    pub genesis_h: f64,
    /// Lifetime, hours.
    pub lifetime_h: f64,
    /// Hour the head reaches the coast.
    pub landfall_h: f64,
    /// Landfall position (lon east, lat).
    pub landfall: [f64; 2],
    /// Motion of the head, degrees per hour (east, north).
    pub velocity_deg_h: [f64; 2],
    /// Axis direction, radians counter-clockwise from east.
    pub axis_rad: f64,
    /// Filament length, km.
    pub length_km: f64,
    /// Filament e-folding half width, km.
    pub width_km: f64,
    /// Peak specific-humidity anomaly at 1000 hPa, kg kg-1.
    pub q_peak: f64,
    /// Peak low-level-jet speed along the axis, m s-1.
    pub jet_peak: f64,
    pub(crate) coast_lon: f64,
}

impl ArEvent {
    /// Strength between 0 and 1 at hour `h`: grows over the ocean, holds through landfall, decays.
    pub fn intensity(&self, h: f64) -> f64 {
        let tau = (h - self.genesis_h) / self.lifetime_h;
        if !(0.0..=1.0).contains(&tau) {
            return 0.0;
        }
        let landfall_tau = (self.landfall_h - self.genesis_h) / self.lifetime_h;
        let grow = smoothstep(tau / 0.3);
        let decay = 1.0 - smoothstep((tau - landfall_tau - 0.05) / (1.0 - landfall_tau - 0.05));
        grow * decay
    }

    /// Position of the leading (poleward, eastward) end at hour `h`, (lon east 0..360, lat).
    pub fn head(&self, h: f64) -> [f64; 2] {
        let dt = h - self.landfall_h;
        let lon = (self.landfall[0] + self.velocity_deg_h[0] * dt).rem_euclid(360.0);
        [lon, self.landfall[1] + self.velocity_deg_h[1] * dt]
    }
}

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// Rivers for hours `first_h..last_h`, deterministic from `seed`. Genesis starts some days before
/// the window so that the first step already shows rivers at every stage.
pub(crate) fn plan_events(seed: u64, first_h: f64, last_h: f64) -> Vec<ArEvent> {
    let mut events = Vec::new();
    for (b, basin) in BASINS.iter().enumerate() {
        let mut rng = SplitMix64::new(seed ^ (0xA5A5_0000 + b as u64).wrapping_mul(0x9E37_79B9));
        let mut genesis_h = first_h - 24.0 * rng.uniform(4.0, 7.0);
        while genesis_h < last_h {
            let lifetime_h = 24.0 * rng.uniform(4.0, 7.0);
            let landfall_h = genesis_h + lifetime_h * rng.uniform(0.55, 0.72);
            let landfall_lat = rng.uniform(basin.landfall_lat[0], basin.landfall_lat[1]);
            let east = rng.uniform(8.0, 12.0) / 24.0;
            let pole = basin.hemisphere * rng.uniform(1.5, 3.0) / 24.0;
            let axis_deg = basin.hemisphere * rng.uniform(22.0, 40.0);
            events.push(ArEvent {
                basin: basin.name,
                genesis_h,
                lifetime_h,
                landfall_h,
                landfall: [basin.coast_lon, landfall_lat],
                velocity_deg_h: [east, pole],
                axis_rad: axis_deg.to_radians(),
                length_km: rng.uniform(2500.0, 4200.0),
                width_km: rng.uniform(330.0, 520.0),
                q_peak: rng.uniform(0.0058, 0.0090),
                jet_peak: rng.uniform(13.0, 19.0),
                coast_lon: basin.coast_lon,
            });
            genesis_h += 24.0 * rng.uniform(1.6, 3.4);
        }
    }
    events
}
