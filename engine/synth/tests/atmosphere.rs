//! The synthetic atmosphere is physically plausible and self-consistent.

use isotach_connectors::{Source, ZarrSource};
use isotach_core::GRAVITY;
use isotach_synth::{SynthConfig, generate};

fn percentile(values: &mut [f32], p: f64) -> f32 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn store(config: &SynthConfig) -> (tempfile::TempDir, ZarrSource) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("synth.zarr");
    generate(config, &path).expect("generate");
    let source = ZarrSource::open(path.to_str().expect("utf-8 path")).expect("open");
    (dir, source)
}

fn ivt(source: &ZarrSource, step: u64, cells: u64, nlat: u64, nlon: u64) -> Vec<f32> {
    let u = source
        .read_subset("ivt_u", &[step..step + 1, 0..nlat, 0..nlon])
        .expect("ivt_u");
    let v = source
        .read_subset("ivt_v", &[step..step + 1, 0..nlat, 0..nlon])
        .expect("ivt_v");
    assert_eq!(u.len() as u64, cells);
    u.iter().zip(&v).map(|(a, b)| a.hypot(*b)).collect()
}

#[test]
fn magnitudes_are_those_of_a_real_atmosphere() {
    let config = SynthConfig {
        resolution_deg: 2.0,
        steps: 16,
        ..Default::default()
    };
    let (_dir, source) = store(&config);
    let (nlat, nlon) = (91u64, 180u64);
    let cells = nlat * nlon;
    let mut all = Vec::new();
    let mut step_max = Vec::new();
    for step in 0..16 {
        let m = ivt(&source, step, cells, nlat, nlon);
        step_max.push(m.iter().copied().fold(0.0f32, f32::max));
        all.extend(m);
    }
    let max = all.iter().copied().fold(0.0f32, f32::max);
    let p95 = percentile(&mut all, 0.95);
    let p999 = percentile(&mut all, 0.999);
    eprintln!("IVT: p95 {p95:.0}, p99.9 {p999:.0}, max {max:.0}; per-step max {step_max:?}");
    // Outside rivers (the bulk of the globe) IVT stays under 250 kg m-1 s-1.
    assert!(p95 < 250.0, "95th percentile of IVT {p95} should be < 250");
    // Inside rivers it peaks at 500–1500, at every step (rivers are always somewhere).
    assert!(
        (500.0..=1600.0).contains(&max),
        "IVT maximum {max} should be in 500..=1600"
    );
    assert!(
        step_max.iter().all(|m| *m > 450.0),
        "every step should hold a river: {step_max:?}"
    );
    assert!(
        p999 > 400.0,
        "rivers should cover a visible area (p99.9 = {p999})"
    );

    let iwv = source
        .read_subset("iwv", &[0..16, 0..nlat, 0..nlon])
        .expect("iwv");
    let tropics: Vec<f32> = (0..16u64)
        .flat_map(|t| (0..nlon).map(move |j| (t * cells + 45 * nlon + j) as usize))
        .map(|i| iwv[i])
        .collect();
    let polar: Vec<f32> = (0..16u64)
        .flat_map(|t| (0..nlon).map(move |j| (t * cells + 2 * nlon + j) as usize))
        .map(|i| iwv[i])
        .collect();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(
        (35.0..65.0).contains(&mean(&tropics)),
        "equatorial IWV {} kg m-2",
        mean(&tropics)
    );
    assert!(mean(&polar) < 6.0, "polar IWV {} kg m-2", mean(&polar));

    let mslp = source
        .read_subset("mslp", &[0..16, 0..nlat, 0..nlon])
        .expect("mslp");
    let (lo, hi) = mslp
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    assert!(
        lo > 96_000.0 && hi < 104_500.0 && hi - lo > 2_000.0,
        "MSLP {lo}..{hi} Pa"
    );

    let u300 = source
        .read_subset("u", &[0..16, 7..8, 0..nlat, 0..nlon])
        .expect("u");
    let jet = u300.iter().copied().fold(0.0f32, f32::max);
    assert!(
        (35.0..75.0).contains(&jet),
        "300 hPa jet maximum {jet} m s-1"
    );
}

/// (1/g)∫ q·V dp over the stored levels, by the trapezoidal rule, written independently of the
/// generator. Tolerance: 0.5 kg m-1 s-1 absolute plus 1e-4 relative (float32 storage of the
/// levels and of the result, summed in a different order).
#[test]
fn ivt_recomputed_from_levels_matches_stored_ivt() {
    let config = SynthConfig {
        resolution_deg: 3.0,
        steps: 3,
        ..Default::default()
    };
    let (_dir, source) = store(&config);
    let levels = source.read_all("level").expect("levels");
    assert_eq!(levels, config.levels_hpa);
    let shape = source.shape("q").expect("shape");
    let (nlev, nlat, nlon) = (shape[1], shape[2], shape[3]);
    let cells = (nlat * nlon) as usize;
    for step in 0..3u64 {
        let read = |name: &str| {
            source
                .read_subset(name, &[step..step + 1, 0..nlev, 0..nlat, 0..nlon])
                .expect("level var")
        };
        let (q, u, v) = (read("q"), read("u"), read("v"));
        let stored_u = source
            .read_subset("ivt_u", &[step..step + 1, 0..nlat, 0..nlon])
            .expect("ivt_u");
        let stored_v = source
            .read_subset("ivt_v", &[step..step + 1, 0..nlat, 0..nlon])
            .expect("ivt_v");
        let mut worst = 0.0f64;
        for cell in 0..cells {
            let (mut fu, mut fv) = (0.0f64, 0.0f64);
            for k in 0..(nlev as usize - 1) {
                let dp = (levels[k] - levels[k + 1]) * 100.0;
                let (a, b) = (k * cells + cell, (k + 1) * cells + cell);
                fu += dp * 0.5 * (q[a] as f64 * u[a] as f64 + q[b] as f64 * u[b] as f64);
                fv += dp * 0.5 * (q[a] as f64 * v[a] as f64 + q[b] as f64 * v[b] as f64);
            }
            let (fu, fv) = (fu / GRAVITY, fv / GRAVITY);
            for (mine, theirs) in [(fu, stored_u[cell] as f64), (fv, stored_v[cell] as f64)] {
                let err = (mine - theirs).abs();
                assert!(
                    err <= 0.5 + 1e-4 * mine.abs(),
                    "step {step} cell {cell}: recomputed {mine}, stored {theirs}"
                );
                worst = worst.max(err);
            }
        }
        eprintln!("step {step}: worst |IVT recomputed - stored| = {worst:.2e}");
    }
}

#[test]
fn rivers_make_landfall_where_and_when_the_catalog_says() {
    let config = SynthConfig {
        resolution_deg: 1.0,
        steps: 24,
        ..Default::default()
    };
    let (_dir, source) = store(&config);
    let (nlat, nlon) = (181u64, 360u64);
    let mut checked = 0;
    for event in config.events() {
        let step = (event.landfall_h / config.step_hours as f64).round();
        if !(0.0..24.0).contains(&step) {
            continue;
        }
        let m = ivt(&source, step as u64, nlat * nlon, nlat, nlon);
        let [lon, lat] = event.landfall;
        // Strongest IVT within 8° of the landfall point, over the ocean side of the coast; 250
        // kg m-1 s-1 is the usual IVT threshold of a river, and the background p95 is ~140.
        let near = (0..nlat)
            .flat_map(|i| (0..nlon).map(move |j| (i, j)))
            .filter(|&(i, j)| {
                let (la, lo) = (90.0 - i as f64, j as f64);
                (la - lat).abs() <= 8.0 && (lon - lo) >= 0.0 && (lon - lo) <= 10.0
            })
            .map(|(i, j)| m[(i * nlon + j) as usize])
            .fold(0.0f32, f32::max);
        assert!(
            near > 300.0,
            "{} river at {lat:.1}N {lon:.1}E: IVT at landfall only {near}",
            event.basin
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "the window should hold at least two landfalls, found {checked}"
    );
}

#[test]
fn same_seed_same_bytes_other_seed_other_atmosphere() {
    let config = SynthConfig {
        resolution_deg: 5.0,
        steps: 2,
        ..Default::default()
    };
    let (_a, first) = store(&config);
    let (_b, again) = store(&config);
    let (_c, other) = store(&SynthConfig {
        seed: 7,
        ..config.clone()
    });
    let all = |s: &ZarrSource| s.read_subset("ivt_v", &[0..2, 0..37, 0..72]).expect("read");
    let (x, y, z) = (all(&first), all(&again), all(&other));
    assert!(
        x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()),
        "same seed must give identical values"
    );
    assert_ne!(x, z, "another seed must give another atmosphere");
    assert_eq!(first.describe().time.times, again.describe().time.times);
}

#[test]
fn bad_configuration_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = generate(
        &SynthConfig {
            resolution_deg: 0.7,
            ..Default::default()
        },
        &dir.path().join("x.zarr"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("resolution_deg = 0.7"), "{err}");
    let err = generate(
        &SynthConfig {
            levels_hpa: vec![1000.0, 500.0],
            ..Default::default()
        },
        &dir.path().join("y.zarr"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("850"), "{err}");
}
