//! Boxes by coordinate values (descending latitude, either longitude convention, across the
//! dateline and the seam of the store) and the concurrent, budgeted tile reader.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use isotach_connectors::{
    ReadOptions, Result, SelectedSource, Source, TileRequest, ZarrSource, read_tiles,
};
use isotach_core::{DatasetInfo, RegionKey, Tile, TileWindow};
use support::{same, write_store};

fn store() -> (tempfile::TempDir, Arc<dyn Source>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.zarr");
    write_store(&path, true);
    let source = ZarrSource::open(path.to_str().expect("utf-8")).expect("open");
    (dir, Arc::new(source))
}

/// The whole field of one step, assembled from a source's own regions.
fn assemble(source: &dyn Source, step: u64) -> Vec<f32> {
    let (rows, cols) = source.describe().grid.shape();
    let mut field = vec![f32::INFINITY; rows * cols];
    for (region, window) in source.regions("ivt").expect("regions") {
        let tile = source
            .read_tile(
                "ivt",
                &TileRequest {
                    step,
                    region,
                    window,
                },
            )
            .expect("tile");
        for r in 0..window.rows {
            for c in 0..window.cols {
                let at = (window.row0 + r) * cols + window.col0 + c;
                assert!(field[at].is_infinite(), "cell {at} covered twice");
                field[at] = tile.values.as_slice()[r * window.cols + c];
            }
        }
    }
    assert!(
        field.iter().all(|v| !v.is_infinite()),
        "a cell was not covered"
    );
    field
}

#[test]
fn a_box_across_the_seam_reads_the_cells_it_names() {
    let (_dir, full) = store();
    let whole = assemble(full.as_ref(), 1);
    let grid = full.describe().grid.clone();
    for lon in [[-40.0, 40.0], [320.0, 40.0], [320.0, 400.0]] {
        let boxed = SelectedSource::new(full.clone(), [-30.0, 30.0], lon).expect("select");
        let sel = boxed.describe().grid.clone();
        assert_eq!(sel.lat, vec![30.0, 20.0, 10.0, 0.0, -10.0, -20.0, -30.0]);
        let expected_lon: Vec<f64> = (0..9).map(|j| lon[0] + 10.0 * j as f64).collect();
        assert_eq!(sel.lon, expected_lon, "box {lon:?}");
        let part = assemble(&boxed, 1);
        for (i, lat) in sel.lat.iter().enumerate() {
            for (j, lon) in sel.lon.iter().enumerate() {
                let row = grid.lat.iter().position(|l| l == lat).expect("row");
                let col = grid
                    .lon
                    .iter()
                    .position(|l| (l - lon).rem_euclid(360.0) == 0.0)
                    .expect("column");
                let (got, want) = (part[i * 9 + j], whole[row * 36 + col]);
                assert!(same(&[got], &[want]), "({lat}, {lon}): {got} vs {want}");
            }
        }
        let keys: HashSet<_> = boxed
            .regions("ivt")
            .expect("regions")
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(keys.len(), boxed.regions("ivt").expect("regions").len());
    }
}

#[test]
fn a_box_inside_one_chunk_row_keeps_descending_latitude() {
    let (_dir, full) = store();
    let boxed = SelectedSource::new(full.clone(), [55.0, 85.0], [95.0, 125.0]).expect("select");
    assert_eq!(boxed.describe().grid.lat, vec![80.0, 70.0, 60.0]);
    assert_eq!(boxed.describe().grid.lon, vec![100.0, 110.0, 120.0]);
    let regions = boxed.regions("ivt").expect("regions");
    // Rows 1..4 sit in chunk row 0; columns 10..13 in chunk column 1.
    assert_eq!(regions.len(), 1);
    let err = SelectedSource::new(full, [11.0, 12.0], [0.0, 5.0]).expect_err("empty box");
    assert!(err.to_string().contains("[11.0, 12.0]"), "{err}");
}

#[test]
fn the_tile_reader_returns_every_request_once_within_its_budget() {
    let (_dir, source) = store();
    let regions = source.regions("ivt").expect("regions");
    let mut requests = Vec::new();
    for step in 0..3 {
        for (region, window) in &regions {
            requests.push((
                "ivt".to_owned(),
                TileRequest {
                    step,
                    region: *region,
                    window: *window,
                },
            ));
        }
    }
    // A budget smaller than one tile still makes progress, one tile at a time.
    for options in [
        ReadOptions {
            concurrency: 3,
            memory_budget_bytes: 1,
        },
        ReadOptions::default(),
    ] {
        let mut seen = HashSet::new();
        for tile in read_tiles(source.clone(), requests.clone(), options) {
            let tile = tile.expect("tile");
            let request = TileRequest {
                step: tile.step,
                region: tile.region,
                window: tile.window,
            };
            let direct = source.read_tile("ivt", &request).expect("direct");
            assert!(same(tile.values.as_slice(), direct.values.as_slice()));
            assert!(
                seen.insert((tile.step, tile.region)),
                "tile delivered twice"
            );
        }
        assert_eq!(seen.len(), requests.len());
    }

    let mut bad = requests[..2].to_vec();
    bad[1].0 = "nope".into();
    let results: Vec<_> = read_tiles(source.clone(), bad, ReadOptions::default()).collect();
    assert_eq!(results.len(), 2);
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("one error");
    assert!(
        err.to_string().contains("\"nope\"") && err.to_string().contains("ivt"),
        "{err}"
    );
}

#[test]
fn dropping_the_reader_early_stops_it() {
    let (_dir, source) = store();
    let (region, window) = source.regions("ivt").expect("regions")[0];
    let requests = vec![
        (
            "ivt".to_owned(),
            TileRequest {
                step: 0,
                region,
                window,
            }
        );
        1000
    ];
    let mut reader = read_tiles(
        source,
        requests,
        ReadOptions {
            concurrency: 2,
            memory_budget_bytes: 4 * window.len() as u64,
        },
    );
    assert!(reader.next().is_some());
    drop(reader);
}

/// A source that records how many of its reads overlap and on which threads they run.
struct Watched {
    inner: Arc<dyn Source>,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    threads: Mutex<HashSet<ThreadId>>,
}

impl Source for Watched {
    fn describe(&self) -> &DatasetInfo {
        self.inner.describe()
    }

    fn regions(&self, variable: &str) -> Result<Vec<(RegionKey, TileWindow)>> {
        self.inner.regions(variable)
    }

    fn read_tile(&self, variable: &str, request: &TileRequest) -> Result<Tile> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        self.threads
            .lock()
            .expect("threads")
            .insert(std::thread::current().id());
        // Long enough for the readers to overlap.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let tile = self.inner.read_tile(variable, request);
        self.running.fetch_sub(1, Ordering::SeqCst);
        tile
    }
}

#[test]
fn the_consumer_is_one_of_the_readers_and_no_more_than_the_concurrency_read_at_once() {
    let (_dir, inner) = store();
    let (region, window) = inner.regions("ivt").expect("regions")[0];
    let requests: Vec<_> = (0..3)
        .flat_map(|step| {
            (0..20).map(move |_| {
                (
                    "ivt".to_owned(),
                    TileRequest {
                        step,
                        region,
                        window,
                    },
                )
            })
        })
        .collect();
    for concurrency in [1, 3] {
        let watched = Arc::new(Watched {
            inner: inner.clone(),
            running: AtomicUsize::new(0),
            most_at_once: AtomicUsize::new(0),
            threads: Mutex::new(HashSet::new()),
        });
        let options = ReadOptions {
            concurrency,
            ..ReadOptions::default()
        };
        let consumer = std::thread::current().id();
        let mut tiles = 0;
        for tile in read_tiles(watched.clone(), requests.clone(), options) {
            tile.expect("tile");
            tiles += 1;
        }
        assert_eq!(tiles, requests.len());
        let threads = watched.threads.lock().expect("threads").clone();
        assert!(
            threads.contains(&consumer),
            "concurrency {concurrency}: the consumer read nothing"
        );
        assert!(
            threads.len() <= concurrency,
            "{} threads read",
            threads.len()
        );
        let most = watched.most_at_once.load(Ordering::SeqCst);
        assert!(
            most <= concurrency,
            "concurrency {concurrency}: {most} reads at once"
        );
        if concurrency == 1 {
            assert_eq!(
                threads.len(),
                1,
                "concurrency 1 reads on the consumer alone"
            );
        }
    }
}
