//! The per-cell temporal operators (rolling, normalize, anomaly, threshold): streamed through
//! timely with steps arriving out of order, on 1 and 3 workers, they equal a from-scratch
//! computation over the whole array bit for bit, and they agree with xarray and numpy.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use isotach_core::{RegionKey, Tile, TileValues, TileWindow};
use isotach_engine::operators::{
    Anomaly, CellHistory, Climatology, ClimatologyPeriod, ClimatologyTable, Normalize,
    NormalizeStats, Rolling, RunningMoments, Threshold, ThresholdLevel, percentile_of_sorted,
};
use isotach_engine::{EngineError, ErrorSlot, TileBundle};
use support::{Array, assert_close, python_arrays};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::core::UnorderedInput;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{ProbeHandle, Stream};

const ROWS: usize = 2;
const COLS: usize = 3;
const CELLS: usize = ROWS * COLS;
const REGIONS: [RegionKey; 3] = [
    RegionKey { row: 0, col: 0 },
    RegionKey { row: 0, col: 1 },
    RegionKey { row: 1, col: 0 },
];
/// Steps sent before the dataflow may catch up: the in-flight window of the feeder.
const CHUNK: u64 = 4;

/// The input of one run: `values[step][region][cell]` and each step's day since 2000-01-01.
struct Data {
    days: Vec<i64>,
    values: Vec<Vec<Vec<f32>>>,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(seed: u64) -> f64 {
    (splitmix(seed) >> 11) as f64 / (1u64 << 53) as f64
}

impl Data {
    /// Values in −20..40 with about one in ten missing.
    fn new(days: Vec<i64>, seed: u64) -> Self {
        let values = (0..days.len() as u64)
            .map(|t| {
                (0..REGIONS.len() as u64)
                    .map(|r| {
                        (0..CELLS as u64)
                            .map(|c| {
                                let key = seed ^ (t << 40) ^ (r << 20) ^ c;
                                if unit(key ^ 0x5555) < 0.1 {
                                    f32::NAN
                                } else {
                                    (-20.0 + 60.0 * unit(key)) as f32
                                }
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self { days, values }
    }

    /// 30 steps five days apart from 4 January 2000: January to May of a leap year.
    fn five_daily() -> Self {
        Self::new((0..30).map(|t| 3 + 5 * t).collect(), 7)
    }

    fn steps(&self) -> usize {
        self.days.len()
    }

    fn times(&self) -> Arc<Vec<DateTime<Utc>>> {
        let epoch: DateTime<Utc> = "2000-01-01T00:00:00Z".parse().expect("epoch");
        Arc::new(
            self.days
                .iter()
                .map(|d| epoch + Duration::days(*d))
                .collect(),
        )
    }

    fn bundle(&self, step: u64, r: usize) -> TileBundle {
        let region = REGIONS[r];
        TileBundle {
            step,
            region,
            tiles: vec![Tile {
                variable: "x".into(),
                units: "K".into(),
                step,
                region,
                window: TileWindow {
                    row0: region.row as usize * ROWS,
                    rows: ROWS,
                    col0: region.col as usize * COLS,
                    cols: COLS,
                },
                lat_bounds: [0.0, 1.0],
                lon_bounds: [0.0, 2.0],
                values: TileValues::from_vec(self.values[step as usize][r].clone()),
            }],
        }
    }

    /// The whole array, `[step][region × cell]`, for Python.
    fn array(&self) -> Array {
        let values = self.values.iter().flatten().flatten().copied().collect();
        Array::new(values, &[self.steps(), REGIONS.len() * CELLS])
    }

    fn days_array(&self) -> Array {
        Array::new(
            self.days.iter().map(|d| *d as f32).collect(),
            &[self.steps()],
        )
    }

    /// The series of one cell of one region.
    fn series(&self, r: usize, c: usize) -> Vec<f32> {
        self.values.iter().map(|s| s[r][c]).collect()
    }
}

/// The output tile of every (step, region).
type Outputs = BTreeMap<(u64, RegionKey), Vec<f32>>;

/// Streams `data` through `build` on `workers` workers. Worker 0 sends the steps in chunks of
/// [`CHUNK`] steps in flight at once, each chunk out of order (and regions in varying order),
/// stepping the worker after each step sent so that operators see later steps before earlier
/// ones, and lets up to two chunks be in flight. Checks that every output is emitted at its own
/// step, once. Nothing panics inside the workers (a panicking worker would leave its peers
/// waiting): problems are collected and asserted after the run.
fn run_streaming<B>(workers: usize, data: &Arc<Data>, output: &'static str, build: B) -> Outputs
where
    B: for<'s> Fn(Stream<'s, u64, Vec<TileBundle>>, ErrorSlot) -> Stream<'s, u64, Vec<TileBundle>>
        + Send
        + Sync
        + 'static,
{
    let outputs: Arc<Mutex<Outputs>> = Arc::default();
    let problems: Arc<Mutex<Vec<String>>> = Arc::default();
    let errors = ErrorSlot::default();
    let (worker_outputs, worker_problems, worker_errors, worker_data) = (
        outputs.clone(),
        problems.clone(),
        errors.clone(),
        data.clone(),
    );
    timely::execute(timely::Config::process(workers), move |worker| {
        let probe = ProbeHandle::new();
        let seen = worker_outputs.clone();
        let problems = worker_problems.clone();
        let (mut handle, mut capability) = worker.dataflow::<u64, _, _>(|scope| {
            let ((handle, capability), stream) =
                scope.new_unordered_input::<CapacityContainerBuilder<Vec<TileBundle>>>();
            build(stream, worker_errors.clone())
                .inspect_core(move |event| {
                    let Ok((stamp, bundles)) = event else {
                        return;
                    };
                    let mut problems = problems.lock().expect("problems");
                    let time = stamp.least().copied();
                    for bundle in bundles {
                        if Some(bundle.step) != time {
                            problems.push(format!("step {} emitted at {time:?}", bundle.step));
                        }
                        let Some(tile) = bundle.tile(output) else {
                            problems.push(format!("no {output:?} at step {}", bundle.step));
                            continue;
                        };
                        let values = tile.values.as_slice().to_vec();
                        let mut seen = seen.lock().expect("outputs");
                        if seen.insert((bundle.step, bundle.region), values).is_some() {
                            problems.push(format!("step {} emitted twice", bundle.step));
                        }
                    }
                })
                .probe_with(&probe);
            (handle, capability)
        });
        if worker.index() == 0 {
            let steps = worker_data.steps() as u64;
            for start in (0..steps).step_by(CHUNK as usize) {
                let end = (start + CHUNK).min(steps);
                // Within a chunk: the third step first, then the first, the fourth, the second.
                let order = [2, 0, 3, 1].map(|i| start + i);
                for step in order.into_iter().filter(|s| *s < end) {
                    {
                        let at = capability.delayed(&step);
                        let mut session = handle.activate();
                        let mut session = session.session(&at);
                        for r in 0..REGIONS.len() {
                            let r = if step % 2 == 0 {
                                r
                            } else {
                                REGIONS.len() - 1 - r
                            };
                            session.give(worker_data.bundle(step, r));
                        }
                    }
                    worker.step();
                }
                capability.downgrade(&end);
                while probe.less_than(&start.saturating_sub(CHUNK)) {
                    worker.step();
                }
            }
        }
        drop(capability);
        drop(handle);
        while worker.step() {}
    })
    .expect("timely starts")
    .join()
    .into_iter()
    .for_each(|r| r.expect("worker"));
    if let Some(error) = errors.take() {
        panic!("the dataflow recorded an error: {error}");
    }
    let problems = problems.lock().expect("problems");
    assert!(problems.is_empty(), "{problems:?}");
    let outputs = outputs.lock().expect("outputs").clone();
    assert_eq!(
        outputs.len(),
        data.steps() * REGIONS.len(),
        "one output per step and region"
    );
    outputs
}

/// Asserts bit-identical values, NaN where NaN.
fn assert_bits(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

fn assert_outputs_bits(what: &str, a: &Outputs, b: &Outputs) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for ((key, x), y) in a.iter().zip(b.values()) {
        assert_bits(&format!("{what} at {key:?}"), x, y);
    }
}

/// The outputs as one `[step][region × cell]` array, like [`Data::array`].
fn flatten(outputs: &Outputs, steps: usize) -> Vec<f32> {
    (0..steps as u64)
        .flat_map(|t| {
            REGIONS
                .iter()
                .flat_map(move |r| outputs[&(t, *r)].iter().copied())
        })
        .collect()
}

/// Builds `[step][region][cell]` references from a per-cell series function.
fn reference(data: &Data, per_cell: impl Fn(&[f32]) -> Vec<f32>) -> Outputs {
    let mut out = Outputs::new();
    for (r, region) in REGIONS.iter().enumerate() {
        let series: Vec<Vec<f32>> = (0..CELLS).map(|c| per_cell(&data.series(r, c))).collect();
        for t in 0..data.steps() {
            out.insert((t as u64, *region), series.iter().map(|s| s[t]).collect());
        }
    }
    out
}

const WINDOW: usize = 3;

fn rolling_outputs(workers: usize, data: &Arc<Data>) -> Outputs {
    run_streaming(workers, data, "x_mean", |s, e| {
        s.rolling("x".into(), "x_mean".into(), WINDOW, e)
    })
}

#[test]
fn rolling_streamed_equals_from_scratch_on_any_worker_count() {
    let data = Arc::new(Data::five_daily());
    let one = rolling_outputs(1, &data);
    let three = rolling_outputs(3, &data);
    assert_outputs_bits("rolling, 1 vs 3 workers", &one, &three);
    let expected = reference(&data, |x| {
        (0..x.len())
            .map(|t| {
                if t + 1 < WINDOW {
                    return f32::NAN;
                }
                let sum: f64 = x[t + 1 - WINDOW..=t].iter().map(|v| f64::from(*v)).sum();
                (sum / WINDOW as f64) as f32
            })
            .collect()
    });
    assert_outputs_bits("rolling vs from scratch", &one, &expected);
    // The fixture really exercises both sides of min_periods.
    let flat = flatten(&one, data.steps());
    assert!(flat.iter().any(|v| v.is_nan()) && flat.iter().any(|v| v.is_finite()));
}

#[test]
fn rolling_matches_xarray() {
    let data = Arc::new(Data::five_daily());
    let ours = flatten(&rolling_outputs(2, &data), data.steps());
    let py = python_arrays(
        &format!(
            "import xarray as xr\n\
             da = xr.DataArray(inputs['x'], dims=('time', 'cell'))\n\
             outputs['mean'] = da.rolling(time={WINDOW}).mean().values"
        ),
        &[("x", data.array())],
    );
    assert_close(
        "rolling mean vs xarray",
        &ours,
        &py["mean"].values,
        1e-5,
        1e-6,
    );
}

fn normalize_outputs(workers: usize, data: &Arc<Data>) -> Outputs {
    run_streaming(workers, data, "z", |s, e| {
        s.normalize("x".into(), "z".into(), NormalizeStats::Running, e)
    })
}

#[test]
fn running_normalize_streamed_equals_from_scratch_on_any_worker_count() {
    let data = Arc::new(Data::five_daily());
    let one = normalize_outputs(1, &data);
    let three = normalize_outputs(3, &data);
    assert_outputs_bits("normalize, 1 vs 3 workers", &one, &three);

    // The same Welford core driven step by step outside the dataflow: bit for bit.
    let mut sequential = Outputs::new();
    for (r, region) in REGIONS.iter().enumerate() {
        let mut moments = RunningMoments::default();
        for t in 0..data.steps() {
            let x = TileValues::from_vec(data.values[t][r].clone());
            let z = moments.push_and_score(&x).expect("same length");
            sequential.insert((t as u64, *region), z.as_slice().to_vec());
        }
    }
    assert_outputs_bits("normalize vs sequential core", &one, &sequential);

    // Two-pass statistics recomputed from scratch at every step.
    let two_pass = reference(&data, |x| {
        (0..x.len())
            .map(|t| {
                let seen: Vec<f64> = x[..=t]
                    .iter()
                    .filter(|v| !v.is_nan())
                    .map(|v| f64::from(*v))
                    .collect();
                let n = seen.len() as f64;
                let mean = seen.iter().sum::<f64>() / n;
                let var = seen.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                ((f64::from(x[t]) - mean) / var.sqrt()) as f32
            })
            .collect()
    });
    let (a, b) = (
        flatten(&one, data.steps()),
        flatten(&two_pass, data.steps()),
    );
    assert_close("normalize vs two-pass", &a, &b, 1e-5, 1e-5);
    // The first step of every cell is 0 / 0.
    assert!(a[..REGIONS.len() * CELLS].iter().all(|v| v.is_nan()));
}

#[test]
fn running_normalize_matches_xarray_cumulative() {
    let data = Arc::new(Data::five_daily());
    let ours = flatten(&normalize_outputs(2, &data), data.steps());
    let py = python_arrays(
        "import warnings, xarray as xr\n\
         warnings.simplefilter('ignore')\n\
         da = xr.DataArray(inputs['x'], dims=('time', 'cell'))\n\
         c = da.cumulative('time')\n\
         outputs['z'] = ((da - c.mean()) / c.std()).values",
        &[("x", data.array())],
    );
    assert_close(
        "running z-score vs xarray",
        &ours,
        &py["z"].values,
        1e-4,
        1e-4,
    );
}

#[test]
fn supplied_normalize_and_fixed_threshold_are_plain_maps() {
    let data = Arc::new(Data::five_daily());
    let z = run_streaming(3, &data, "z", |s, e| {
        s.normalize(
            "x".into(),
            "z".into(),
            NormalizeStats::Supplied {
                mean: 10.0,
                std: 4.0,
            },
            e,
        )
    });
    let expected = reference(&data, |x| {
        x.iter()
            .map(|v| ((f64::from(*v) - 10.0) / 4.0) as f32)
            .collect()
    });
    assert_outputs_bits("supplied normalize", &z, &expected);

    let mask = run_streaming(3, &data, "hot", |s, e| {
        s.threshold("x".into(), "hot".into(), ThresholdLevel::Value(25.0), e)
    });
    let expected = reference(&data, |x| {
        x.iter()
            .map(|v| match v {
                v if v.is_nan() => f32::NAN,
                v if *v >= 25.0 => 1.0,
                _ => 0.0,
            })
            .collect()
    });
    assert_outputs_bits("fixed threshold", &mask, &expected);
}

const PERCENTILE: f64 = 90.0;

fn percentile_outputs(workers: usize, data: &Arc<Data>) -> Outputs {
    run_streaming(workers, data, "extreme", |s, e| {
        s.threshold(
            "x".into(),
            "extreme".into(),
            ThresholdLevel::Percentile(PERCENTILE),
            e,
        )
    })
}

/// `nanpercentile(x[:t+1], p)` of one cell's series, from a fresh sort at every step.
fn expanding_percentiles(x: &[f32], p: f64) -> Vec<f32> {
    (0..x.len())
        .map(|t| {
            let mut seen: Vec<f32> = x[..=t].iter().copied().filter(|v| !v.is_nan()).collect();
            seen.sort_by(f32::total_cmp);
            percentile_of_sorted(&seen, p)
        })
        .collect()
}

#[test]
fn percentile_threshold_streamed_equals_from_scratch_on_any_worker_count() {
    let data = Arc::new(Data::five_daily());
    let one = percentile_outputs(1, &data);
    let three = percentile_outputs(3, &data);
    assert_outputs_bits("percentile threshold, 1 vs 3 workers", &one, &three);
    let expected = reference(&data, |x| {
        let levels = expanding_percentiles(x, PERCENTILE);
        x.iter()
            .zip(levels)
            .map(|(v, level)| match v {
                v if v.is_nan() => f32::NAN,
                v if *v >= level => 1.0,
                _ => 0.0,
            })
            .collect()
    });
    assert_outputs_bits("percentile threshold vs from scratch", &one, &expected);
    let flat = flatten(&one, data.steps());
    assert!(flat.contains(&1.0) && flat.contains(&0.0));
}

#[test]
fn percentile_threshold_matches_numpy_nanpercentile() {
    let data = Arc::new(Data::five_daily());
    let percentiles = [0.0, 12.5, 37.5, 50.0, 90.0, 100.0];
    let mut script = String::from(
        "import warnings\nwarnings.simplefilter('ignore')\nx = inputs['x']\n\
         T = x.shape[0]\n",
    );
    for (i, p) in percentiles.iter().enumerate() {
        script.push_str(&format!(
            "outputs['level{i}'] = np.stack([np.nanpercentile(x[:t + 1], {p:?}, axis=0) \
             for t in range(T)])\n"
        ));
    }
    script.push_str(&format!(
        "lv = np.stack([np.nanpercentile(x[:t + 1], {PERCENTILE:?}, axis=0) for t in range(T)])\n\
         outputs['mask'] = np.where(np.isnan(x), np.nan, (x >= lv).astype('f4'))\n"
    ));
    let py = python_arrays(&script, &[("x", data.array())]);

    // The incremental sorted history gives numpy's levels bit for bit.
    for (i, p) in percentiles.iter().enumerate() {
        let mut levels = Vec::new();
        let mut histories: Vec<CellHistory> = vec![CellHistory::default(); REGIONS.len()];
        for t in 0..data.steps() {
            for (r, history) in histories.iter_mut().enumerate() {
                let x = TileValues::from_vec(data.values[t][r].clone());
                history.push(&x).expect("same length");
                levels.extend(history.percentiles(*p));
            }
        }
        assert_bits(
            &format!("p{p} levels vs numpy"),
            &levels,
            &py[&format!("level{i}")].values,
        );
    }
    let ours = flatten(&percentile_outputs(2, &data), data.steps());
    assert_bits("p90 exceedance vs numpy", &ours, &py["mask"].values);
}

/// Anomaly outputs and the final climatology (records sorted by region and period).
fn anomaly_outputs(
    workers: usize,
    data: &Arc<Data>,
    by: ClimatologyPeriod,
) -> (Outputs, Vec<Climatology>) {
    let table: Arc<Mutex<ClimatologyTable>> = Arc::default();
    let (times, sink) = (data.times(), table.clone());
    let outputs = run_streaming(workers, data, "x_anom", move |s, e| {
        let sink = sink.clone();
        let (bundles, climatology) = s.anomaly("x".into(), "x_anom".into(), by, times.clone(), e);
        climatology.inspect(move |(record, _time, diff)| {
            sink.lock().expect("table").update(record, *diff);
        });
        bundles
    });
    let records = table.lock().expect("table").records().cloned().collect();
    (outputs, records)
}

/// Per cell: (final climatology by period, running anomalies), in f64 from scratch.
fn naive_anomalies(x: &[f32], periods: &[u16]) -> (BTreeMap<u16, f64>, Vec<f32>) {
    let mean_of = |t: usize| {
        let same: Vec<f64> = (0..=t)
            .filter(|s| periods[*s] == periods[t] && !x[*s].is_nan())
            .map(|s| f64::from(x[s]))
            .collect();
        same.iter().sum::<f64>() / same.len() as f64
    };
    let anomalies = (0..x.len())
        .map(|t| (f64::from(x[t]) - mean_of(t)) as f32)
        .collect();
    // The last step of each period sees all of it.
    let last = periods
        .iter()
        .enumerate()
        .map(|(t, p)| (*p, mean_of(t)))
        .collect();
    (last, anomalies)
}

#[test]
fn anomaly_streamed_equals_from_scratch_on_any_worker_count() {
    let data = Arc::new(Data::five_daily());
    let (one, climatology_one) = anomaly_outputs(1, &data, ClimatologyPeriod::Month);
    let (three, climatology_three) = anomaly_outputs(3, &data, ClimatologyPeriod::Month);
    assert_outputs_bits("anomaly, 1 vs 3 workers", &one, &three);
    assert_eq!(
        climatology_one, climatology_three,
        "exact sums on any worker count"
    );

    let periods: Vec<u16> = data
        .times()
        .iter()
        .map(|t| ClimatologyPeriod::Month.of(*t))
        .collect();
    assert_eq!(periods.first(), Some(&1));
    assert_eq!(periods.last(), Some(&5), "crosses four month boundaries");
    // One record per region and month, each with the month's steps.
    assert_eq!(climatology_one.len(), REGIONS.len() * 5);
    for record in &climatology_one {
        let steps = periods.iter().filter(|p| **p == record.period).count();
        assert_eq!(record.sums.steps, steps as i64, "{record:?}");
    }
    let expected = reference(&data, |x| naive_anomalies(x, &periods).1);
    assert_close(
        "anomaly vs from scratch",
        &flatten(&one, data.steps()),
        &flatten(&expected, data.steps()),
        1e-5,
        1e-6,
    );
    for record in &climatology_one {
        let r = REGIONS
            .iter()
            .position(|k| *k == record.region)
            .expect("known region");
        let expected: Vec<f32> = (0..CELLS)
            .map(|c| naive_anomalies(&data.series(r, c), &periods).0[&record.period] as f32)
            .collect();
        assert_close(
            &format!("climatology {:?} month {}", record.region, record.period),
            &record.mean(),
            &expected,
            1e-6,
            1e-7,
        );
    }
    // The first step of each month has anomaly exactly 0 where the value is present.
    for (key, values) in &one {
        if key.0 == 0 {
            let x = &data.values[0][REGIONS.iter().position(|r| *r == key.1).expect("region")];
            for (a, v) in values.iter().zip(x) {
                assert!(if v.is_nan() { a.is_nan() } else { *a == 0.0 });
            }
        }
    }
}

/// The climatology as `[period][region × cell]` for the given periods.
fn climatology_array(records: &[Climatology], periods: &[u16]) -> Vec<f32> {
    periods
        .iter()
        .flat_map(|p| {
            REGIONS.iter().flat_map(move |region| {
                records
                    .iter()
                    .find(|c| c.region == *region && c.period == *p)
                    .map(Climatology::mean)
                    .unwrap_or_else(|| vec![f32::NAN; CELLS])
            })
        })
        .collect()
}

const TIME_COORD: &str = "import warnings, pandas as pd, xarray as xr\n\
     warnings.simplefilter('ignore')\n\
     time = pd.Timestamp('2000-01-01') + pd.to_timedelta(inputs['days'].astype('int64'), unit='D')\n\
     da = xr.DataArray(inputs['x'], dims=('time', 'cell'), coords={'time': time})\n";

#[test]
fn monthly_anomaly_matches_xarray_groupby_and_expanding_numpy() {
    let data = Arc::new(Data::five_daily());
    let (anomalies, records) = anomaly_outputs(2, &data, ClimatologyPeriod::Month);
    let py = python_arrays(
        &format!(
            "{TIME_COORD}\
             clim = da.groupby('time.month').mean()\n\
             outputs['clim'] = clim.values\n\
             outputs['months'] = clim.month.values\n\
             m = da.time.dt.month.values\n\
             x = inputs['x'].astype('f8')\n\
             outputs['anomaly'] = np.stack([x[t] - np.nanmean(x[:t + 1][m[:t + 1] == m[t]], axis=0) \
                 for t in range(len(m))])\n"
        ),
        &[("x", data.array()), ("days", data.days_array())],
    );
    let months: Vec<u16> = py["months"].values.iter().map(|m| *m as u16).collect();
    assert_eq!(months, vec![1, 2, 3, 4, 5]);
    assert_close(
        "final climatology vs xarray groupby('time.month').mean()",
        &climatology_array(&records, &months),
        &py["clim"].values,
        1e-5,
        1e-6,
    );
    assert_close(
        "running anomaly vs expanding numpy",
        &flatten(&anomalies, data.steps()),
        &py["anomaly"].values,
        1e-5,
        1e-6,
    );
}

#[test]
fn day_of_year_climatology_matches_xarray_across_leap_years() {
    // 1 March, 4 July and 31 December of 2019 to 2025: days 60/61, 185/186 and 365/366.
    let epoch: DateTime<Utc> = "2000-01-01T00:00:00Z".parse().expect("epoch");
    let days: Vec<i64> = (2019..=2025)
        .flat_map(|y| {
            [(3, 1), (7, 4), (12, 31)].map(|(m, d)| {
                let date = chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date");
                (date.and_hms_opt(12, 0, 0).expect("noon").and_utc() - epoch).num_days()
            })
        })
        .collect();
    let data = Arc::new(Data::new(days, 11));
    let (anomalies, records) = anomaly_outputs(3, &data, ClimatologyPeriod::DayOfYear);
    let py = python_arrays(
        &format!(
            "{TIME_COORD}\
             clim = da.groupby('time.dayofyear').mean()\n\
             outputs['clim'] = clim.values\n\
             outputs['days'] = clim.dayofyear.values\n\
             d = da.time.dt.dayofyear.values\n\
             x = inputs['x'].astype('f8')\n\
             outputs['anomaly'] = np.stack([x[t] - np.nanmean(x[:t + 1][d[:t + 1] == d[t]], axis=0) \
                 for t in range(len(d))])\n"
        ),
        &[("x", data.array()), ("days", data.days_array())],
    );
    let doys: Vec<u16> = py["days"].values.iter().map(|d| *d as u16).collect();
    assert_eq!(doys, vec![60, 61, 185, 186, 365, 366]);
    assert_close(
        "final climatology vs xarray groupby('time.dayofyear').mean()",
        &climatology_array(&records, &doys),
        &py["clim"].values,
        1e-5,
        1e-6,
    );
    assert_close(
        "running day-of-year anomaly vs expanding numpy",
        &flatten(&anomalies, data.steps()),
        &py["anomaly"].values,
        1e-5,
        1e-6,
    );
}

#[test]
fn bad_parameters_and_missing_inputs_are_errors_naming_them() {
    let data = Arc::new(Data::five_daily());
    let errors = ErrorSlot::default();
    let slot = errors.clone();
    timely::example(move |scope| {
        use timely::dataflow::operators::ToStream;
        vec![data.bundle(0, 0)]
            .to_stream(scope)
            .rolling("x".into(), "m".into(), 0, slot.clone());
    });
    let message = errors.take().expect("window 0 is an error").to_string();
    assert!(
        message.contains("window") && message.contains('0'),
        "{message}"
    );

    let data = Arc::new(Data::five_daily());
    let errors = ErrorSlot::default();
    let slot = errors.clone();
    timely::example(move |scope| {
        use timely::dataflow::operators::ToStream;
        vec![data.bundle(0, 0), data.bundle(0, 1)]
            .to_stream(scope)
            .threshold(
                "wind".into(),
                "m".into(),
                ThresholdLevel::Percentile(50.0),
                slot.clone(),
            );
    });
    let error = errors.take().expect("missing input is an error");
    assert!(
        matches!(&error, EngineError::Operator { step: 0, .. })
            && error.to_string().contains("\"wind\""),
        "{error}"
    );

    let errors = ErrorSlot::default();
    let slot = errors.clone();
    timely::example(move |scope| {
        use timely::dataflow::operators::ToStream;
        Vec::<TileBundle>::new().to_stream(scope).threshold(
            "x".into(),
            "m".into(),
            ThresholdLevel::Percentile(101.0),
            slot.clone(),
        );
    });
    let message = errors.take().expect("p101 is an error").to_string();
    assert!(message.contains("101"), "{message}");
}
