//! The fields of one time step. Everything is analytic in (lat, lon, pressure, hour), so any step
//! can be computed alone, in any order, on any thread, with the same result.

use std::f64::consts::PI;

use isotach_core::LatLonGrid;
use isotach_core::column::integrate_columns;

use crate::events::ArEvent;

const KM_PER_DEG_LAT: f64 = 110.57;
const KM_PER_DEG_LON_EQUATOR: f64 = 111.32;

/// Random but fixed phases of the travelling waves, one set per hemisphere.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WavePhases {
    pub phase: [[f64; 2]; 2],
}

/// All variables of one step, row-major; pressure-level variables are level-major.
pub(crate) struct StepFields {
    pub q: Vec<f32>,
    pub u: Vec<f32>,
    pub v: Vec<f32>,
    pub iwv: Vec<f32>,
    pub ivt_u: Vec<f32>,
    pub ivt_v: Vec<f32>,
    pub u850: Vec<f32>,
    pub v850: Vec<f32>,
    pub mslp: Vec<f32>,
}

/// Zonal jet speed at pressure `p` (hPa): weak near the surface, strongest at 300 hPa.
fn jet_profile(p: f64) -> f64 {
    8.0 + 42.0 * ((1000.0 - p) / 700.0).max(0.0).powf(1.2)
}

/// Wrap a longitude difference into (-180, 180].
fn wrap(d: f64) -> f64 {
    let d = d.rem_euclid(360.0);
    if d > 180.0 { d - 360.0 } else { d }
}

pub(crate) fn step_fields(
    grid: &LatLonGrid,
    levels_hpa: &[f64],
    hour: f64,
    waves: WavePhases,
    events: &[ArEvent],
) -> StepFields {
    let (nlat, nlon) = grid.shape();
    let n = nlat * nlon;
    let days = hour / 24.0;

    // Column quantities: jet position and strength, moisture, AR amplitudes, pressure.
    let mut jet = vec![0.0f64; n]; // sum of jet Gaussians (dimensionless)
    let mut jet_v = vec![0.0f64; n]; // the same, times the slope of the jet axis
    let mut trades = vec![0.0f64; n];
    let mut q_surface = vec![0.0f64; n];
    let mut mslp = vec![0.0f64; n];
    for i in 0..nlat {
        let lat = grid.lat[i];
        let hemi = if lat >= 0.0 { 1.0 } else { -1.0 };
        for j in 0..nlon {
            let lam = grid.lon[j].to_radians();
            let idx = i * nlon + j;
            let mut axis_shift = 0.0;
            let mut wave = 0.0;
            for (h, s) in [1.0f64, -1.0].into_iter().enumerate() {
                // Wavenumber 5 travelling east at 8°/day, wavenumber 3 at 4°/day.
                let a1 = 5.0 * (lam - (8.0 * days).to_radians()) + waves.phase[h][0];
                let a2 = 3.0 * (lam - (4.0 * days).to_radians()) + waves.phase[h][1];
                let offset = 7.0 * a1.sin() + 3.0 * a2.sin();
                let axis = s * (42.0 + offset);
                let slope = s * (7.0 * 5.0 * a1.cos() + 3.0 * 3.0 * a2.cos()) * PI / 180.0;
                let g = (-((lat - axis) / 10.0).powi(2)).exp();
                jet[idx] += g;
                jet_v[idx] += g * slope;
                if s == hemi {
                    axis_shift = offset;
                    wave = a1;
                }
            }
            trades[idx] = -4.5 * (-((lat.abs() - 13.0) / 9.0).powi(2)).exp();
            // Moisture follows the waves: tongues reach poleward under ridges.
            let lat_eff = lat - hemi * 0.4 * axis_shift;
            q_surface[idx] = 0.0175 * (-(lat_eff / 25.0).powi(2)).exp() + 0.0012;
            mslp[idx] = 101_325.0 + 1200.0 * (-((lat.abs() - 32.0) / 9.0).powi(2)).exp()
                - 900.0 * (-((lat.abs() - 62.0) / 10.0).powi(2)).exp()
                - 800.0 * wave.sin() * (-((lat.abs() - 50.0) / 12.0).powi(2)).exp();
        }
    }

    let mut ar_q = vec![0.0f64; n];
    let mut ar_u = vec![0.0f64; n];
    let mut ar_v = vec![0.0f64; n];
    for event in events {
        let strength = event.intensity(hour);
        if strength < 1e-3 {
            continue;
        }
        let head = event.head(hour);
        let (cos_a, sin_a) = (event.axis_rad.cos(), event.axis_rad.sin());
        let half = event.length_km / 2.0;
        let centre_lat = head[1] - half * sin_a / KM_PER_DEG_LAT;
        let centre_lon =
            head[0] - half * cos_a / (KM_PER_DEG_LON_EQUATOR * head[1].to_radians().cos());
        let cyclone = [head[0] - 4.0, head[1] + 6.0 * head[1].signum()];
        for i in 0..nlat {
            let lat = grid.lat[i];
            if (lat - centre_lat).abs() > 40.0 {
                continue;
            }
            let km_per_deg_lon = KM_PER_DEG_LON_EQUATOR * lat.to_radians().cos();
            for j in 0..nlon {
                let lon = grid.lon[j];
                let idx = i * nlon + j;
                let dx = wrap(lon - centre_lon) * km_per_deg_lon;
                let dy = (lat - centre_lat) * KM_PER_DEG_LAT;
                let along = dx * cos_a + dy * sin_a;
                let across = -dx * sin_a + dy * cos_a;
                let env = (-(across / event.width_km).powi(2) - (along / half).powi(6)).exp();
                let cx = wrap(lon - cyclone[0]) * km_per_deg_lon;
                let cy = (lat - cyclone[1]) * KM_PER_DEG_LAT;
                mslp[idx] -= 2200.0 * strength * (-(cx * cx + cy * cy) / (900.0f64 * 900.0)).exp();
                if env < 1e-4 {
                    continue;
                }
                // Over land (east of the coast) the river rains out within a few degrees.
                let inland = wrap(lon - event.coast_lon);
                let land = if (0.0..70.0).contains(&inland) {
                    (-inland / 5.0).exp()
                } else {
                    1.0
                };
                let a = strength * env;
                ar_q[idx] += a * land * event.q_peak;
                ar_u[idx] += a * land.sqrt() * event.jet_peak * cos_a;
                ar_v[idx] += a * land.sqrt() * event.jet_peak * sin_a;
            }
        }
    }

    let nlev = levels_hpa.len();
    let mut out = StepFields {
        q: vec![0.0; nlev * n],
        u: vec![0.0; nlev * n],
        v: vec![0.0; nlev * n],
        iwv: vec![0.0; n],
        ivt_u: vec![0.0; n],
        ivt_v: vec![0.0; n],
        u850: vec![0.0; n],
        v850: vec![0.0; n],
        mslp: mslp.iter().map(|p| *p as f32).collect(),
    };
    for (k, &p) in levels_hpa.iter().enumerate() {
        let jet_speed = jet_profile(p);
        let trade_profile = (p / 1000.0).powi(2);
        let q_profile = (p / 1000.0).powi(3);
        let ar_q_profile = (p / 1000.0).powf(2.5);
        let low_level_jet = (-((p - 850.0) / 220.0).powi(2)).exp();
        for idx in 0..n {
            out.q[k * n + idx] = (q_surface[idx] * q_profile + ar_q[idx] * ar_q_profile) as f32;
            out.u[k * n + idx] = (jet[idx] * jet_speed
                + trades[idx] * trade_profile
                + ar_u[idx] * low_level_jet) as f32;
            out.v[k * n + idx] = (jet_v[idx] * jet_speed + ar_v[idx] * low_level_jet) as f32;
        }
        if (p - 850.0).abs() < 1e-9 {
            out.u850.copy_from_slice(&out.u[k * n..(k + 1) * n]);
            out.v850.copy_from_slice(&out.v[k * n..(k + 1) * n]);
        }
    }
    let pressure_pa: Vec<f64> = levels_hpa.iter().map(|p| p * 100.0).collect();
    let integrals = integrate_columns(&pressure_pa, &out.q, &out.u, &out.v, n);
    out.iwv = integrals.0;
    out.ivt_u = integrals.1;
    out.ivt_v = integrals.2;
    out
}
