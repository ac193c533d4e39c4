//! The decoded-chunk cache of `ZarrSource`: a chunk that spans several steps is decoded once for
//! all its steps, even when many threads ask for it at once; the cache stays within its byte
//! bound; a step that is a contiguous range of its chunk is a slice of the chunk's buffer; and
//! every value equals a from-scratch read (chunks spanning steps, partial edge chunks, levels,
//! shards, boxes with descending latitude and across the dateline).

mod support;

use std::sync::{Arc, Barrier};

use isotach_connectors::{
    ReadOptions, SelectedSource, Source, TileRequest, VariableLayout, ZarrSource, read_tiles,
};
use isotach_core::{Tile, TileWindow};
use serde_json::json;
use support::{ivt_value, json_map, same, test_grid, write_coordinates, write_store_with};

const STEPS: u64 = 12;
/// Chunks of 6 steps; 19 rows cut 7, 7, 5 and 36 columns 10, 10, 10, 6: partial edge chunks.
const CHUNKS: [u64; 3] = [6, 7, 10];
/// Chunks of the store: 2 along time, 3 × 4 over the grid.
const BLOCKS: u64 = 2 * 3 * 4;

fn store(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("cached.zarr");
    write_store_with(&path, STEPS, CHUNKS, true);
    path.to_str().expect("utf-8").to_owned()
}

fn open(uri: &str) -> Arc<ZarrSource> {
    Arc::new(ZarrSource::open(uri).expect("open"))
}

/// A source that keeps nothing: every read goes straight to zarrs for its window.
fn uncached(uri: &str) -> Arc<ZarrSource> {
    let source = open(uri);
    assert_eq!(source.offer_cache_bytes(0), 0);
    source
}

fn requests(source: &dyn Source, steps: u64) -> Vec<(String, TileRequest)> {
    let regions = source.regions("ivt").expect("regions");
    (0..steps)
        .flat_map(|step| {
            regions.iter().map(move |(region, window)| {
                (
                    "ivt".to_owned(),
                    TileRequest {
                        step,
                        region: *region,
                        window: *window,
                    },
                )
            })
        })
        .collect()
}

/// What the store holds in `window` of `step`, from the formula it was written with.
fn truth(step: u64, window: TileWindow) -> Vec<f32> {
    let mut values = Vec::with_capacity(window.len());
    for r in window.row0..window.row0 + window.rows {
        for c in window.col0..window.col0 + window.cols {
            values.push(ivt_value(step, r * 36 + c));
        }
    }
    values
}

fn assert_tile(tile: &Tile, want: &[f32]) {
    assert!(
        same(tile.values.as_slice(), want),
        "step {} window {:?}: {:?} vs {:?}",
        tile.step,
        tile.window,
        &tile.values.as_slice()[..want.len().min(4)],
        &want[..want.len().min(4)]
    );
}

fn read(source: &dyn Source, request: &TileRequest) -> Tile {
    source.read_tile("ivt", request).expect("tile")
}

#[test]
fn a_chunk_spanning_steps_is_decoded_once_for_all_its_steps_from_many_threads_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One chunk holds the whole store (96 steps of the whole grid), so that its decode lasts
    // long enough for the readers to meet it. Eight threads read every step, each starting at
    // a different one, all released together: one decode, every other read served from it.
    const WHOLE: u64 = 96;
    let whole = dir.path().join("whole.zarr");
    write_store_with(&whole, WHOLE, [WHOLE, 19, 36], true);
    for round in 0..40 {
        let source = open(whole.to_str().expect("utf-8"));
        let (region, window) = source.regions("ivt").expect("regions")[0];
        let barrier = Barrier::new(8);
        std::thread::scope(|scope| {
            for thread in 0..8u64 {
                let (source, barrier) = (&source, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    for i in 0..WHOLE {
                        let step = (thread * 12 + i) % WHOLE;
                        let request = TileRequest {
                            step,
                            region,
                            window,
                        };
                        assert_tile(&read(source.as_ref(), &request), &truth(step, window));
                    }
                });
            }
        });
        let stats = source.chunk_cache_stats();
        assert_eq!(
            (stats.decodes, stats.hits),
            (1, 8 * WHOLE - 1),
            "round {round}: {stats:?}"
        );
    }

    let uri = store(&dir);
    let source = open(&uri);
    // Every step of every region through the concurrent reader: each chunk decoded once.
    let all = requests(source.as_ref(), STEPS);
    let tiles = all.len() as u64;
    let reader = read_tiles(
        source.clone(),
        all,
        ReadOptions {
            concurrency: 4,
            ..ReadOptions::default()
        },
    );
    let mut seen = 0u64;
    for tile in reader {
        let tile = tile.expect("tile");
        assert_tile(&tile, &truth(tile.step, tile.window));
        seen += 1;
    }
    assert_eq!(seen, tiles);
    let stats = source.chunk_cache_stats();
    assert_eq!(stats.decodes, BLOCKS, "{stats:?}");
    assert_eq!(stats.hits, tiles - BLOCKS, "{stats:?}");
    assert_eq!(stats.evictions, 0, "{stats:?}");
}

#[test]
fn the_cache_stays_within_its_byte_bound_and_reads_around_it_rather_than_decode_a_chunk_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = store(&dir);
    let source = open(&uri);
    // Room for two and a half chunks of 6 × 7 × 10 f32, while a step touches 12 chunks.
    let chunk_bytes = 6 * 7 * 10 * 4;
    let bound = chunk_bytes * 5 / 2;
    assert_eq!(source.offer_cache_bytes(bound), bound);
    let all = requests(source.as_ref(), STEPS);
    for (_, request) in &all {
        assert_tile(
            &read(source.as_ref(), request),
            &truth(request.step, request.window),
        );
        let stats = source.chunk_cache_stats();
        assert!(
            stats.bytes <= bound && stats.chunks <= 2,
            "over the bound of {bound} B: {stats:?}"
        );
    }
    // The first two regions' chunks were admitted, in each of the two layers of 6 steps (the
    // first layer's dropped for the second's); every other tile was read around the cache. A
    // plain LRU would have decoded a chunk for every one of the 144 tiles.
    let stats = source.chunk_cache_stats();
    assert_eq!(
        (stats.decodes, stats.evictions, stats.hits, stats.bypasses),
        (4, 2, 2 * 12 - 4, all.len() as u64 - 2 * 12),
        "{stats:?}"
    );

    // A smaller offer shrinks the cache at once.
    source.offer_cache_bytes(chunk_bytes);
    let stats = source.chunk_cache_stats();
    assert!(stats.bytes <= chunk_bytes && stats.chunks <= 1, "{stats:?}");

    // A bound below one chunk: nothing is kept, every tile is read around the cache and is
    // still right.
    source.offer_cache_bytes(chunk_bytes - 1);
    let decodes = source.chunk_cache_stats().decodes;
    for (_, request) in requests(source.as_ref(), 2) {
        assert_tile(
            &read(source.as_ref(), &request),
            &truth(request.step, request.window),
        );
    }
    let stats = source.chunk_cache_stats();
    assert_eq!((stats.decodes, stats.bytes), (decodes, 0), "{stats:?}");

    // The reader offers the source part of its budget, never all of it; each chunk is decoded
    // at most once.
    let budget = 4 * chunk_bytes;
    let fresh = open(&uri);
    let reader = read_tiles(
        fresh.clone(),
        requests(fresh.as_ref(), STEPS),
        ReadOptions {
            concurrency: 3,
            memory_budget_bytes: budget,
        },
    );
    for tile in reader {
        let tile = tile.expect("tile");
        assert_tile(&tile, &truth(tile.step, tile.window));
    }
    let stats = fresh.chunk_cache_stats();
    assert!(
        stats.capacity_bytes >= budget / 2 && stats.capacity_bytes < budget,
        "{stats:?}"
    );
    assert!(stats.bytes <= stats.capacity_bytes, "{stats:?}");
    assert!(stats.decodes <= BLOCKS && stats.bypasses > 0, "{stats:?}");
}

#[test]
fn a_step_that_is_a_contiguous_range_of_its_chunk_shares_the_chunk_buffer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = store(&dir);
    let source = open(&uri);
    let regions = source.regions("ivt").expect("regions");
    let tile = |step: u64, row0: usize, col0: usize| {
        let (region, window) = *regions
            .iter()
            .find(|(_, w)| w.row0 == row0 && w.col0 == col0)
            .expect("region");
        let tile = read(
            source.as_ref(),
            &TileRequest {
                step,
                region,
                window,
            },
        );
        assert_tile(&tile, &truth(step, window));
        tile
    };
    let buffer = |t: &Tile| {
        let inner = t.values.0.values().inner().clone();
        (inner.data_ptr(), inner.ptr_offset())
    };

    // Chunk [0, 0, 0] (7 × 10, the tile's extent) and chunk [1, 2, 0] (the last row of chunks:
    // 5 valid rows of 7, the whole width): every step is a slice at step × rows × 10 values.
    for (row0, first_step, rows) in [(0, 0, 7), (14, 6, 7)] {
        let (base, offset) = buffer(&tile(first_step, row0, 0));
        assert_eq!(offset, 0);
        for k in 1..6 {
            let (ptr, offset) = buffer(&tile(first_step + k, row0, 0));
            assert_eq!(ptr, base, "row {row0}, step {}", first_step + k);
            assert_eq!(
                offset,
                k as usize * rows * 10 * 4,
                "step {}",
                first_step + k
            );
        }
    }
    // Chunk [0, 0, 3]: 6 valid columns of 10, so a step is a sub-rectangle: copied, each tile
    // into a buffer of its own.
    let (a, b) = (buffer(&tile(0, 0, 30)), buffer(&tile(1, 0, 30)));
    assert_ne!(a.0, b.0);
    assert_eq!((a.1, b.1), (0, 0));
    // Copies come from the one decode too.
    assert_eq!(source.chunk_cache_stats().decodes, 3);

    // A box whose window lies in one run of columns hands the store's tile on: still a slice.
    let boxed = SelectedSource::new(source.clone(), [-10.0, 90.0], [0.0, 90.0]).expect("select");
    let (region, window) = boxed.regions("ivt").expect("regions")[0];
    assert_eq!((window.rows, window.cols), (7, 10));
    let (base, _) = buffer(&tile(2, 0, 0));
    let selected = read(
        &boxed,
        &TileRequest {
            step: 2,
            region,
            window,
        },
    );
    assert_eq!(buffer(&selected), (base, 2 * 70 * 4));
    assert_eq!(selected.lat_bounds, [90.0, 30.0]);
    assert_eq!(selected.lon_bounds, [0.0, 90.0]);
}

/// Every tile of every step of `variable` read by `cached` (through `read_tiles`) and by
/// `fresh`, compared value for value; `truth` checks the value of (step, selected window).
fn compare_all(
    cached: Arc<dyn Source>,
    fresh: &dyn Source,
    steps: u64,
    truth: impl Fn(u64, TileWindow) -> Vec<f32>,
) -> usize {
    let all = requests(cached.as_ref(), steps);
    let count = all.len();
    let options = ReadOptions {
        concurrency: 3,
        ..ReadOptions::default()
    };
    let mut seen = 0;
    for tile in read_tiles(cached, all, options) {
        let tile = tile.expect("tile");
        let request = TileRequest {
            step: tile.step,
            region: tile.region,
            window: tile.window,
        };
        let again = fresh.read_tile("ivt", &request).expect("fresh tile");
        assert!(
            same(tile.values.as_slice(), again.values.as_slice()),
            "step {} window {:?} differs from a from-scratch read",
            tile.step,
            tile.window
        );
        assert_eq!(
            (tile.lat_bounds, tile.lon_bounds),
            (again.lat_bounds, again.lon_bounds)
        );
        assert_tile(&tile, &truth(tile.step, tile.window));
        seen += 1;
    }
    assert_eq!(seen, count);
    count
}

#[test]
fn boxes_with_descending_latitude_and_across_the_dateline_equal_a_from_scratch_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = store(&dir);
    let cached = open(&uri);
    let fresh = uncached(&uri);
    compare_all(cached.clone(), fresh.as_ref(), STEPS, truth);
    assert_eq!(cached.chunk_cache_stats().decodes, BLOCKS);

    let (lat, lon) = test_grid();
    for (lat_box, lon_box) in [
        // Descending latitude, rows 4..15 cutting chunk rows 0, 1 and 2.
        ([-55.0, 55.0], [25.0, 125.0]),
        // Across the dateline in -180..180 terms, and across the store's seam at 0°/360°.
        ([-30.0, 30.0], [160.0, 200.0]),
        ([-85.0, 85.0], [-40.0, 40.0]),
        ([0.0, 90.0], [320.0, 400.0]),
    ] {
        let boxed: Arc<dyn Source> = Arc::new(
            SelectedSource::new(cached.clone() as Arc<dyn Source>, lat_box, lon_box)
                .expect("select"),
        );
        let plain = SelectedSource::new(fresh.clone() as Arc<dyn Source>, lat_box, lon_box)
            .expect("select");
        let grid = boxed.describe().grid.clone();
        assert!(grid.lat.windows(2).all(|w| w[0] > w[1]), "descending");
        let box_truth = |step: u64, w: TileWindow| {
            let mut values = Vec::new();
            for i in w.row0..w.row0 + w.rows {
                let row = lat.iter().position(|l| *l == grid.lat[i]).expect("row");
                for j in w.col0..w.col0 + w.cols {
                    let col = lon
                        .iter()
                        .position(|l| (l - grid.lon[j]).rem_euclid(360.0) == 0.0)
                        .expect("column");
                    values.push(ivt_value(step, row * 36 + col));
                }
            }
            values
        };
        let tiles = compare_all(boxed, &plain, STEPS, box_truth);
        assert!(tiles > 0, "box {lat_box:?} {lon_box:?}");
    }
    // The boxes were cut from the chunks already decoded.
    assert_eq!(cached.chunk_cache_stats().decodes, BLOCKS);
}

#[test]
fn windows_over_several_chunks_and_variables_on_levels_are_assembled_from_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("levels.zarr");
    let writer = write_coordinates(&path, STEPS as usize);
    let levels = [1000.0, 850.0, 500.0];
    writer
        .write_coordinate("level", &levels, json_map(json!({"units": "hPa"})))
        .expect("level");
    // Two levels per chunk: a tile (every level) spans two chunks along level.
    let layout = VariableLayout {
        dims: ["time", "level", "lat", "lon"].map(String::from).to_vec(),
        shape: vec![STEPS, 3, 19, 36],
        chunks: vec![4, 2, 7, 10],
    };
    let q = writer
        .create_variable("q", &layout, json_map(json!({"units": "kg kg-1"})))
        .expect("q");
    let value = |step: u64, level: usize, k: usize| ivt_value(step + 5 * level as u64, k);
    for step in 0..STEPS {
        let values: Vec<f32> = (0..3)
            .flat_map(|level| (0..19 * 36).map(move |k| value(step, level, k)))
            .collect();
        q.write_step(step, &values).expect("write step");
    }
    writer.consolidate().expect("consolidate");
    let uri = path.to_str().expect("utf-8");
    let cached = open(uri);
    let fresh = uncached(uri);

    for (region, window) in cached.regions("q").expect("regions") {
        for step in 0..STEPS {
            let request = TileRequest {
                step,
                region,
                window,
            };
            let tile = cached.read_tile("q", &request).expect("tile");
            let again = fresh.read_tile("q", &request).expect("fresh");
            let mut want = Vec::new();
            for level in 0..3 {
                for r in window.row0..window.row0 + window.rows {
                    for c in window.col0..window.col0 + window.cols {
                        want.push(value(step, level, r * 36 + c));
                    }
                }
            }
            assert!(same(tile.values.as_slice(), &want), "{request:?}");
            assert!(same(again.values.as_slice(), &want), "{request:?}");
        }
    }
    // 3 chunks along time × 2 along level × 3 × 4 over the grid, each decoded once.
    assert_eq!(cached.chunk_cache_stats().decodes, 3 * 2 * 3 * 4);

    // A window across chunk boundaries in every dimension.
    let ranges = [3..9, 1..3, 5..16, 8..33];
    let got = cached.read_subset("q", &ranges).expect("subset");
    let mut want = Vec::new();
    for step in ranges[0].clone() {
        for level in ranges[1].clone() {
            for r in ranges[2].clone() {
                for c in ranges[3].clone() {
                    want.push(value(step, level as usize, (r * 36 + c) as usize));
                }
            }
        }
    }
    assert!(same(&got, &want));
    assert!(same(
        &fresh.read_subset("q", &ranges).expect("subset"),
        &want
    ));
}

#[test]
fn inner_chunks_of_shards_spanning_steps_are_decoded_once() {
    use zarrs::array::ArrayBuilder;
    use zarrs::array::codec::ZstdCodec;
    use zarrs::array::data_type;
    use zarrs::filesystem::FilesystemStore;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sharded.zarr");
    let writer = write_coordinates(&path, STEPS as usize);
    drop(writer);
    let store = Arc::new(FilesystemStore::new(&path).expect("store"));
    let array = ArrayBuilder::new(
        vec![STEPS, 19, 36],
        [6, 14, 20].as_slice(),
        data_type::float32(),
        f32::NAN,
    )
    .subchunk_shape(vec![3, 7, 10])
    .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false))])
    .dimension_names(Some(["time", "lat", "lon"]))
    .attributes(json_map(json!({"units": "kg m-1 s-1"})))
    .build(store, "/ivt")
    .expect("array");
    array.store_metadata().expect("metadata");
    let values: Vec<f32> = (0..STEPS)
        .flat_map(|step| (0..19 * 36).map(move |k| ivt_value(step, k)))
        .collect();
    array
        .store_array_subset(&[0..STEPS, 0..19, 0..36], &values)
        .expect("write");
    let uri = path.to_str().expect("utf-8");
    let cached = open(uri);
    let fresh = uncached(uri);
    compare_all(cached.clone(), fresh.as_ref(), STEPS, truth);
    // Inner chunks 3 × 7 × 10: 4 along time, 3 × 4 over the grid (edge ones partial).
    assert_eq!(cached.chunk_cache_stats().decodes, 4 * 3 * 4);

    // A corrupt shard: the error names it and the inner chunk; its neighbours still read.
    std::fs::write(path.join("ivt/c/1/0/0"), [7u8; 300]).expect("corrupt shard");
    let source = open(uri);
    let (region, window) = source.regions("ivt").expect("regions")[0];
    let request = |step| TileRequest {
        step,
        region,
        window,
    };
    let err = source
        .read_tile("ivt", &request(7))
        .expect_err("corrupt")
        .to_string();
    assert!(
        err.contains(uri)
            && err.contains("chunk [1, 0, 0]")
            && err.contains("inner chunk [2, 0, 0]"),
        "{err}"
    );
    assert_tile(&read(source.as_ref(), &request(5)), &truth(5, window));
}
