//! Reads NetCDF files that xarray/scipy (CDF-1, CDF-2), netCDF4-python (CDF-5, NetCDF-4, NetCDF-4
//! classic) and xarray/h5netcdf (NetCDF-4 through h5py) wrote (`scripts/interop/make_netcdf_fixtures.py`)
//! and compares every variable, value for value, with what `xarray.open_dataset` decodes: fill
//! values and `missing_value` → NaN, packed integers unpacked, `_Unsigned` bytes, NetCDF's default
//! fill values left as they are, the time axis as instants (noleap calendar included), attributes
//! as stored. Then feeds the readers broken files: truncated, wrong magic, absurd counts, and a few
//! thousand mutated headers, none of which may panic.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::NaiveDateTime;
use isotach_connectors::cf::CfDecoding;
use isotach_connectors::{
    ConnectorError, Netcdf4File, NetcdfData, NetcdfFile, NetcdfSource, Source, TileRequest,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One file of `manifest.json`.
#[derive(Debug, Deserialize)]
struct FileEntry {
    format: String,
    attributes: Map<String, Value>,
    variables: std::collections::BTreeMap<String, VariableEntry>,
}

#[derive(Debug, Deserialize)]
struct VariableEntry {
    dims: Vec<String>,
    shape: Vec<u64>,
    /// The dtype xarray decodes to.
    dtype: String,
    /// As stored (netCDF4-python, no masking).
    attributes: Map<String, Value>,
    /// `ds[name].values` as little-endian f64 (not for time).
    bin: Option<String>,
    /// Time only: decoded instants, ISO 8601.
    times: Option<Vec<String>>,
    /// Time only: stored numbers.
    values: Option<Vec<f64>>,
}

struct Fixtures {
    root: PathBuf,
    manifest: std::collections::BTreeMap<String, FileEntry>,
    _dir: tempfile::TempDir,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("netcdf3-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temporary folder under target/tmp");
        support::run_script("make_netcdf_fixtures.py", &[dir.path().as_os_str()]);
        let text = std::fs::read_to_string(dir.path().join("manifest.json"))
            .expect("the fixture script writes manifest.json");
        Fixtures {
            root: dir.path().to_owned(),
            manifest: serde_json::from_str(&text).expect("manifest.json parses"),
            _dir: dir,
        }
    })
}

fn fixture(name: &str) -> PathBuf {
    fixtures().root.join(name)
}

fn open(name: &str) -> NetcdfSource {
    let path = fixture(name);
    NetcdfSource::open(path.to_str().expect("UTF-8 path")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read_bin(name: &str) -> Vec<f64> {
    std::fs::read(fixtures().root.join(name))
        .expect("expected values")
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Equal as xarray's dtype holds them: float32 results may differ by one unit in the last place
/// (xarray unpacks in float32, this reader in f64 then rounds once); everything else exactly. NaN
/// equals NaN.
fn same(ours: f64, theirs: f64, dtype: &str) -> bool {
    if ours.is_nan() || theirs.is_nan() {
        return ours.is_nan() && theirs.is_nan();
    }
    if dtype == "float32" {
        let (a, b) = (
            (ours as f32).to_bits() as i64,
            (theirs as f32).to_bits() as i64,
        );
        return (a - b).abs() <= 1;
    }
    ours == theirs
}

/// The file `name` through the reader of its format (told by its first bytes, as sources do).
fn open_data(name: &str) -> Box<dyn NetcdfData> {
    let path = fixture(name);
    let magic = std::fs::read(&path).expect("fixture")[..4].to_vec();
    if magic == b"\x89HDF" {
        Box::new(Netcdf4File::open(&path).unwrap_or_else(|e| panic!("{name}: {e}")))
    } else {
        Box::new(NetcdfFile::open(&path).unwrap_or_else(|e| panic!("{name}: {e}")))
    }
}

/// Compares one file with what xarray decoded from it; returns every mismatch.
fn compare_with_xarray(name: &str) -> Vec<String> {
    let entry = &fixtures().manifest[name];
    let file = open_data(name);
    let variables = file.netcdf_variables().expect("variables");
    let read_all = |var: &str| {
        let var = variables.iter().find(|v| v.name == var).expect("variable");
        let raw = file
            .read(&var.name, &vec![0; var.shape.len()], &var.shape)
            .expect("read");
        let size = var.nc_type.expect("numeric").size();
        CfDecoding::from_attributes(&var.attributes, size)
            .expect("CF attributes")
            .decode_f64(&raw)
    };
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("{name}: {what}"));
        }
    };
    check(
        file.data_model() == entry.format,
        format!("format {} != {}", file.data_model(), entry.format),
    );
    check(
        *file.global_attributes() == entry.attributes,
        format!(
            "global attributes {:?} != {:?}",
            file.global_attributes(),
            entry.attributes
        ),
    );
    let mut names: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    let expected: Vec<&str> = entry.variables.keys().map(String::as_str).collect();
    check(
        names == expected,
        format!("variables {names:?} != {expected:?}"),
    );

    for (var, want) in &entry.variables {
        let Some(ours) = variables.iter().find(|v| v.name == *var) else {
            continue;
        };
        check(
            ours.dims == want.dims,
            format!("{var}: dims {:?} != {:?}", ours.dims, want.dims),
        );
        check(
            ours.shape == want.shape,
            format!("{var}: shape {:?} != {:?}", ours.shape, want.shape),
        );
        check(
            ours.attributes == want.attributes,
            format!(
                "{var}: attributes {:?} != {:?}",
                ours.attributes, want.attributes
            ),
        );
        if want.bin.is_none() && want.times.is_none() {
            check(
                ours.nc_type.is_none(),
                format!("{var}: text read as {:?}", ours.nc_type),
            );
            continue;
        }
        let values = read_all(var);
        if let Some(bin) = &want.bin {
            let theirs = read_bin(bin);
            check(
                values.len() == theirs.len(),
                format!("{var}: {} values != {}", values.len(), theirs.len()),
            );
            let bad: Vec<usize> = (0..values.len().min(theirs.len()))
                .filter(|i| !same(values[*i], theirs[*i], &want.dtype))
                .collect();
            check(
                bad.is_empty(),
                format!(
                    "{var}: {} of {} values differ from xarray, first at {:?}: {:?} != {:?}",
                    bad.len(),
                    values.len(),
                    bad.first(),
                    bad.first().map(|i| values[*i]),
                    bad.first().map(|i| theirs[*i]),
                ),
            );
        }
        if let Some(stored) = &want.values {
            check(
                values == *stored,
                format!("{var}: {values:?} != {stored:?}"),
            );
        }
        if let Some(times) = &want.times {
            let ours: Vec<NaiveDateTime> = open(name)
                .describe()
                .time
                .times
                .iter()
                .map(|t| t.naive_utc())
                .collect();
            let theirs: Vec<NaiveDateTime> = times
                .iter()
                .map(|t| {
                    NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").expect("ISO instant")
                })
                .collect();
            check(ours == theirs, format!("time {ours:?} != {theirs:?}"));
        }
    }
    problems
}

#[test]
fn cdf1_written_by_xarray_scipy_reads_as_xarray_decodes_it() {
    let problems = compare_with_xarray("classic.nc");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn cdf2_with_padded_records_reads_as_xarray_decodes_it() {
    let problems = compare_with_xarray("offset64.nc");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_single_record_variable_has_unpadded_records() {
    let problems = compare_with_xarray("single.nc");
    assert!(problems.is_empty(), "{problems:#?}");
    let file = NetcdfFile::open(fixture("single.nc")).expect("opens");
    // 5 records of 7 shorts, 14 bytes each, end exactly at the end of the file.
    assert_eq!(file.numrecs(), 5);
    let begin = file.variable("counts").expect("counts").begin;
    assert_eq!(begin + 5 * 14, file.file_len());
    // Not a CF grid: a source refuses it, naming what is missing.
    let err = NetcdfSource::open(fixture("single.nc").to_str().expect("UTF-8"))
        .expect_err("no coordinates")
        .to_string();
    assert!(err.contains("coordinate not found"), "{err}");
}

#[test]
fn cdf5_written_by_netcdf4_reads_as_xarray_decodes_it() {
    let problems = compare_with_xarray("data64.nc");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn netcdf4_written_by_xarray_netcdf4_reads_as_xarray_decodes_it() {
    // Chunked, deflate + shuffle, fletcher32, packed int16, ubyte/int64/uint32, a string variable.
    let problems = compare_with_xarray("nc4.nc");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn netcdf4_classic_contiguous_big_endian_and_zstd_reads_as_xarray_decodes_it() {
    let problems = compare_with_xarray("nc4classic.nc");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn netcdf4_written_by_h5netcdf_reads_as_xarray_decodes_it() {
    let problems = compare_with_xarray("h5netcdf.nc");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn netcdf4_plugin_filters_read_as_xarray_decodes_them() {
    // netCDF 4.9's bzip2 and blosc filters (lz4, zstd with bit shuffle, zlib unshuffled, lz4hc,
    // blosclz on packed int16), as netCDF4-python writes them.
    let problems = compare_with_xarray("nc4filters.nc");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_filter_that_is_not_decoded_is_named_before_any_tile() {
    // h5py's LZF, which libnetcdf cannot read either: the file opens, its other variables read,
    // and the LZF one is refused by name and filter when its tiles are planned.
    let source = open("lzf.nc");
    assert_eq!(source.regions("t2m").expect("plain variable").len(), 1);
    let planned = source.regions("tp").expect_err("LZF").to_string();
    let read = source.read_all("tp").expect_err("LZF").to_string();
    for message in [&planned, &read] {
        assert!(
            message.contains("lzf.nc")
                && message.contains("tp")
                && message.contains("HDF5 filter 32000 (LZF")
                && message.contains("decoded: deflate"),
            "{message}"
        );
    }
}

#[test]
fn netcdf4_files_are_sources_like_netcdf3_ones() {
    // The format is told by the first bytes: the same call opens NetCDF-3 and NetCDF-4.
    let nc4 = open("nc4.nc");
    assert_eq!(nc4.file().data_model(), "NETCDF4");
    let names: Vec<&str> = nc4
        .describe()
        .variables
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    // Text variables are described by the file but are not data variables of the source.
    assert_eq!(names, ["big", "cls", "lsm", "sp", "t2m", "wide", "z"]);
    assert_eq!(nc4.describe().grid.lat[0], 60.0);
    let regions = nc4.regions("t2m").expect("regions");
    assert_eq!(regions.len(), 4);
    let whole = nc4.read_all("t2m").expect("t2m");
    let (rows, cols) = nc4.describe().grid.shape();
    for (region, window) in regions {
        let tile = nc4
            .read_tile(
                "t2m",
                &TileRequest {
                    step: 2,
                    region,
                    window,
                },
            )
            .expect("tile");
        for r in 0..window.rows {
            for c in 0..window.cols {
                let want = whole[2 * rows * cols + (window.row0 + r) * cols + window.col0 + c];
                let got = f64::from(tile.values.as_slice()[r * window.cols + c]);
                assert!(same(got, want, "float32"), "({r}, {c}): {got} != {want}");
            }
        }
    }
    let times: Vec<String> = open("nc4classic.nc")
        .describe()
        .time
        .times
        .iter()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .collect();
    // noleap: 365 days a year exactly.
    assert_eq!(
        times,
        ["1990-01-01", "1991-01-01", "1992-01-01", "1993-01-01"]
    );
    let err = nc4.read_all("station").expect_err("text").to_string();
    assert!(
        err.contains("station") && err.contains("not a numeric"),
        "{err}"
    );
}

#[test]
fn cf_edge_cases_decode_like_xarray() {
    // _Unsigned byte: stored -56 reads 200, the stored fill -1 means 255 and is missing.
    let classic = open("classic.nc");
    let lsm = classic.read_all("lsm").expect("lsm");
    let nlon = classic.shape("lsm").expect("shape")[1] as usize;
    assert_eq!(&lsm[..3], &[0.0, 127.0, 200.0]);
    assert!(lsm[3 * nlon + 4].is_nan());
    // Descending latitude is kept as stored.
    let lat = &classic.describe().grid.lat;
    assert_eq!((lat[0], *lat.last().expect("lat")), (60.0, -60.0));
    // noleap: 58.5 days after 2004-01-01 is 28 February noon; 59 days is 1 March.
    let times: Vec<String> = classic
        .describe()
        .time
        .times
        .iter()
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .collect();
    assert_eq!(
        times,
        ["2004-02-28 12:00", "2004-03-01 00:00", "2004-03-01 18:00"]
    );

    // NetCDF's default fill values are data unless an attribute names them (xarray does the same).
    let data64 = open("data64.nc");
    let partial = data64.read_all("partial").expect("partial");
    // NC_FILL_FLOAT, 9.9692099683868690e+36 rounded to f32.
    const NC_FILL_FLOAT: f64 = 9.969_209_968_386_869e36;
    assert_eq!(partial[59], f64::from(NC_FILL_FLOAT as f32));
    let ipartial = data64.read_all("ipartial").expect("ipartial");
    assert_eq!(ipartial[59], -2_147_483_647.0);
    let count = data64.read_all("count").expect("count");
    assert_eq!(count[7], (1u64 << 40) as f64 + 7.0);
    let big = &data64.file().global_attributes()["big"];
    assert_eq!(big.as_i64(), Some((1 << 40) + 7));
}

#[test]
fn tiles_are_256_blocks_of_decoded_values() {
    let source = open("classic.nc");
    let info = source.describe();
    let names: Vec<&str> = info.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["lsm", "sp", "t2m", "z"]);
    let coordinates: Vec<&str> = info.coordinates.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(coordinates, ["lat", "lon", "time"]);
    let sp = info.variables.iter().find(|v| v.name == "sp").expect("sp");
    assert_eq!(sp.dims, ["time", "lat", "lon"]);
    assert_eq!(sp.dtype, "int16");
    assert_eq!(sp.chunks, [1, 256, 256]);
    assert_eq!(sp.units, "Pa");

    let regions = source.regions("sp").expect("regions");
    let windows: Vec<(u32, u32, usize, usize, usize, usize)> = regions
        .iter()
        .map(|(k, w)| (k.row, k.col, w.row0, w.rows, w.col0, w.cols))
        .collect();
    assert_eq!(
        windows,
        [
            (0, 0, 0, 256, 0, 256),
            (0, 1, 0, 256, 256, 5),
            (1, 0, 256, 3, 0, 256),
            (1, 1, 256, 3, 256, 5)
        ]
    );
    let (nlat, nlon) = info.grid.shape();
    for variable in ["sp", "t2m", "z"] {
        let all = source.read_all(variable).expect("read_all");
        for step in 0..3u64 {
            for (region, window) in &regions {
                let request = TileRequest {
                    step,
                    region: *region,
                    window: *window,
                };
                let tile = source.read_tile(variable, &request).expect("tile");
                let expected: Vec<f32> = (window.row0..window.row0 + window.rows)
                    .flat_map(|r| (window.col0..window.col0 + window.cols).map(move |c| (r, c)))
                    .map(|(r, c)| all[(step as usize * nlat + r) * nlon + c] as f32)
                    .collect();
                let got = tile.values.as_slice();
                assert_eq!(got.len(), expected.len());
                assert!(
                    got.iter()
                        .zip(&expected)
                        .all(|(a, b)| a == b || (a.is_nan() && b.is_nan())),
                    "{variable} step {step} region {region:?}"
                );
                assert_eq!(
                    tile.lat_bounds,
                    [
                        info.grid.lat[window.row0],
                        info.grid.lat[window.row0 + window.rows - 1]
                    ]
                );
                assert!(tile.lat_bounds[0] > tile.lat_bounds[1], "latitude descends");
            }
        }
    }
    // A 2-D variable has no tiles; a window outside the grid is refused, naming the chunk.
    let err = source.regions("lsm").unwrap_err().to_string();
    assert!(err.contains("lsm") && err.contains("dimensions"), "{err}");
    let outside = TileRequest {
        step: 3,
        region: regions[0].0,
        window: regions[0].1,
    };
    let err = source.read_tile("sp", &outside).unwrap_err().to_string();
    assert!(err.contains("step 3"), "{err}");
}

#[test]
fn unknown_variable_lists_the_available_ones() {
    let source = open("offset64.nc");
    let err = source.read_all("ivtt").unwrap_err();
    assert!(
        matches!(&err, ConnectorError::UnknownVariable { name, available, .. }
            if name == "ivtt" && available == &["ivt", "lat", "lon", "orog", "time"]),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("offset64.nc") && message.contains("ivt, lat, lon, orog, time"));
    let err = source
        .regions("nope")
        .expect_err("unknown variable")
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn file_uris_and_in_memory_files_read_the_same() {
    let path = fixture("offset64.nc");
    let by_uri = NetcdfSource::open(&format!("file://{}", path.display())).expect("file://");
    let bytes = std::fs::read(&path).expect("fixture bytes");
    let in_memory = NetcdfFile::from_ranges("memory", Arc::new(bytes)).expect("in memory");
    let a = by_uri.read_all("ivt").expect("ivt");
    let b = in_memory
        .read_decoded("ivt", &[0, 0, 0], &in_memory.shape("ivt").expect("shape"))
        .expect("ivt");
    assert_eq!(a.len(), b.len());
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    );
    // A hyperslab across records: records 2..5, row 1, columns 3..6.
    let slab = in_memory
        .read_decoded("ivt", &[2, 1, 3], &[3, 1, 3])
        .expect("hyperslab");
    let expected: Vec<f64> = (2..5)
        .flat_map(|t| (3..6).map(move |c| (t * 5 + 1) * 7 + c))
        .map(|i| a[i])
        .collect();
    assert_eq!(slab.len(), 9);
    assert!(
        slab.iter()
            .zip(&expected)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    );
    let err = in_memory.read("ivt", &[5, 0, 0], &[2, 1, 1]).unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
}

#[test]
fn streaming_numrecs_is_computed_from_the_file_size() {
    let bytes = std::fs::read(fixture("offset64.nc")).expect("fixture bytes");
    let reference = NetcdfFile::from_ranges("reference", Arc::new(bytes.clone())).expect("opens");
    assert_eq!(reference.numrecs(), 6);
    let mut streaming = bytes;
    streaming[4..8].copy_from_slice(&[0xFF; 4]);
    let file = NetcdfFile::from_ranges("streaming", Arc::new(streaming.clone())).expect("opens");
    assert_eq!(file.numrecs(), 6);
    assert_eq!(
        file.read_all_raw("ivt").expect("ivt"),
        reference.read_all_raw("ivt").expect("ivt")
    );
    // One record fewer: 72 bytes of ivt (70, padded) and 4 of time.
    streaming.truncate(streaming.len() - 76);
    let file = NetcdfFile::from_ranges("streaming", Arc::new(streaming)).expect("opens");
    assert_eq!(file.numrecs(), 5);
    assert_eq!(file.shape("ivt").expect("shape"), [5, 5, 7]);
}

fn temp_copy(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary folder");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    (dir, path)
}

/// Opens `path` as a source, expecting an error whose message names the file.
fn open_error(path: &Path) -> String {
    let uri = path.to_str().expect("UTF-8 path");
    let err = NetcdfSource::open(uri).expect_err("a broken file must not open");
    let message = err.to_string();
    assert!(message.contains(uri), "the error names the file: {message}");
    message
}

#[test]
fn truncated_files_are_errors_naming_the_file() {
    let bytes = std::fs::read(fixture("classic.nc")).expect("fixture bytes");
    for keep in [0, 3, 7, 40, 200, bytes.len() / 2, bytes.len() - 1] {
        let (_dir, path) = temp_copy("cut.nc", &bytes[..keep]);
        let message = open_error(&path);
        assert!(
            message.contains("truncated") || message.contains("file ends"),
            "{keep} bytes kept: {message}"
        );
    }
}

#[test]
fn wrong_magic_is_an_error_naming_the_file() {
    let mut bytes = std::fs::read(fixture("offset64.nc")).expect("fixture bytes");
    bytes[3] = 3;
    let (_dir, path) = temp_copy("cdf3.nc", &bytes);
    let message = open_error(&path);
    assert!(message.contains("magic number"), "{message}");
    bytes[..4].copy_from_slice(b"\x89HDF");
    let (_dir, path) = temp_copy("netcdf4.nc", &bytes);
    let message = open_error(&path);
    assert!(message.contains("NetCDF-4"), "{message}");
}

/// Writes classic headers by hand.
struct Header {
    cdf5: bool,
    bytes: Vec<u8>,
}

impl Header {
    fn new(version: u8, numrecs: u64) -> Self {
        let mut h = Self {
            cdf5: version == 5,
            bytes: vec![b'C', b'D', b'F', version],
        };
        h.count(numrecs);
        h
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend(v.to_be_bytes());
        self
    }

    fn count(&mut self, v: u64) -> &mut Self {
        if self.cdf5 {
            self.bytes.extend(v.to_be_bytes());
        } else {
            self.bytes.extend((v as u32).to_be_bytes());
        }
        self
    }

    fn name(&mut self, name: &[u8]) -> &mut Self {
        self.count(name.len() as u64);
        self.bytes.extend(name);
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
        self
    }
}

#[test]
fn absurd_header_counts_are_refused_without_allocating() {
    // CDF-5 claiming 2^40 dimensions.
    let mut h = Header::new(5, 0);
    h.u32(0x0A).count(1 << 40);
    let (_dir, path) = temp_copy("many_dims.nc", &h.bytes);
    let message = open_error(&path);
    assert!(
        message.contains("dimension count 1099511627776"),
        "{message}"
    );

    // CDF-1 with a 2^20 x 2^20 float variable (4 TiB): far more than the file holds.
    let mut h = Header::new(1, 0);
    h.u32(0x0A).count(2);
    h.name(b"y").count(1 << 20).name(b"x").count(1 << 20);
    h.u32(0).count(0); // no global attributes
    h.u32(0x0B).count(1);
    h.name(b"huge").count(2).count(0).count(1);
    h.u32(0).count(0).u32(5).count(0).count(200);
    let (_dir, path) = temp_copy("huge_dims.nc", &h.bytes);
    let message = open_error(&path);
    assert!(
        message.contains("huge") && message.contains("past the end"),
        "{message}"
    );

    // A record variable with 2^32 - 2 records claimed.
    let mut h = Header::new(2, 0xFFFF_FFFE);
    h.u32(0x0A).count(1).name(b"time").count(0);
    h.u32(0).count(0);
    h.u32(0x0B).count(1);
    h.name(b"time")
        .count(1)
        .count(0)
        .u32(0)
        .count(0)
        .u32(6)
        .count(8);
    h.bytes.extend(96u64.to_be_bytes());
    h.bytes.resize(96 + 8 * 3, 0);
    let (_dir, path) = temp_copy("many_records.nc", &h.bytes);
    let message = open_error(&path);
    assert!(message.contains("4294967294 records"), "{message}");

    // An attribute claiming 2^30 doubles.
    let mut h = Header::new(1, 0);
    h.u32(0).count(0);
    h.u32(0x0C).count(1).name(b"history").u32(6).count(1 << 30);
    let (_dir, path) = temp_copy("huge_attribute.nc", &h.bytes);
    let message = open_error(&path);
    assert!(
        message.contains("history") && message.contains("value count"),
        "{message}"
    );
}

#[test]
fn names_that_are_not_utf8_are_replaced() {
    let mut h = Header::new(1, 0);
    h.u32(0x0A).count(1).name(b"x\xFF").count(2);
    h.u32(0x0C).count(1).name(b"ti\xC3tle").u32(2).count(3);
    h.bytes.extend(b"ab\xFF\0");
    h.u32(0x0B).count(1).name(b"v\xFE").count(1).count(0);
    h.u32(0).count(0).u32(3).count(4);
    let begin = h.bytes.len() as u32 + 4;
    h.u32(begin);
    h.bytes.extend([0, 1, 0xFF, 0xFE]);
    let file = NetcdfFile::from_ranges("names.nc", Arc::new(h.bytes)).expect("opens");
    assert_eq!(file.dimensions()[0].name, "x\u{FFFD}");
    assert_eq!(file.attributes()["ti\u{FFFD}tle"], "ab\u{FFFD}");
    let var = &file.variables()[0];
    assert_eq!(var.name, "v\u{FFFD}");
    let raw = file.read_all_raw("v\u{FFFD}").expect("values");
    assert_eq!(raw, isotach_connectors::cf::RawValues::I16(vec![1, -2]));
}

#[test]
fn mutated_headers_never_panic() {
    let mut outcomes = [0usize; 2];
    for fixture_name in ["offset64.nc", "data64.nc"] {
        let original = std::fs::read(fixture(fixture_name)).expect("fixture bytes");
        let header_len = NetcdfFile::from_ranges("original", Arc::new(original.clone()))
            .expect("opens")
            .variables()
            .iter()
            .map(|v| v.begin as usize)
            .min()
            .expect("variables");
        let mut rng = support::SplitMix64(0x15_07AC);
        for case in 0..2000 {
            let mut bytes = original.clone();
            match rng.below(4) {
                0 => bytes.truncate(rng.below(header_len + 16)),
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(header_len);
                        bytes[at] ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    let at = rng.below(header_len) & !3;
                    let value: [u8; 4] = match rng.below(4) {
                        0 => [0xFF; 4],
                        1 => [0; 4],
                        2 => [0x7F, 0xFF, 0xFF, 0xFF],
                        _ => (rng.next() as u32).to_be_bytes(),
                    };
                    let end = (at + 4).min(bytes.len());
                    bytes[at..end].copy_from_slice(&value[..end - at]);
                }
                _ => {
                    let at = rng.below(header_len);
                    bytes[at] = rng.next() as u8;
                    bytes.truncate(header_len + rng.below(original.len() - header_len + 1));
                }
            }
            let uri = format!("{fixture_name}-mutant-{case}");
            let result = std::panic::catch_unwind(|| {
                let file = match NetcdfFile::from_ranges(&uri, Arc::new(bytes.clone())) {
                    Ok(file) => file,
                    Err(e) => {
                        let message = e.to_string();
                        assert!(message.contains(&uri), "{message}");
                        return false;
                    }
                };
                for var in file.variables() {
                    let shape = file
                        .shape(&var.name)
                        .expect("a listed variable has a shape");
                    if let Ok(raw) = file.read_all_raw(&var.name) {
                        let n: u64 = shape.iter().product();
                        assert_eq!(raw.len() as u64, n, "{}", var.name);
                    }
                    let _ = file.cf_decoding(&var.name);
                }
                if let Ok(source) = NetcdfFile::from_ranges(&uri, Arc::new(bytes.clone()))
                    .and_then(|file| NetcdfSource::from_data(Box::new(file)))
                {
                    for variable in &source.describe().variables {
                        let Ok(regions) = source.regions(&variable.name) else {
                            continue;
                        };
                        for (region, window) in regions.into_iter().take(2) {
                            let request = TileRequest {
                                step: 0,
                                region,
                                window,
                            };
                            let _ = source.read_tile(&variable.name, &request);
                        }
                    }
                }
                true
            });
            match result {
                Ok(opened) => outcomes[usize::from(opened)] += 1,
                Err(_) => panic!("{uri} panicked"),
            }
        }
    }
    // Both outcomes happen: the mutations are neither all fatal nor all harmless.
    assert!(outcomes[0] > 100 && outcomes[1] > 100, "{outcomes:?}");
}

#[test]
fn mutated_netcdf4_files_never_panic() {
    // HDF5 metadata is spread through the file (superblock, object headers, B-trees, heaps) and
    // chunks sit between it: mutations anywhere hit both.
    let mut outcomes = [0usize; 3];
    for fixture_name in ["nc4classic.nc", "h5netcdf.nc", "nc4filters.nc"] {
        let original = std::fs::read(fixture(fixture_name)).expect("fixture bytes");
        let mut rng = support::SplitMix64(0x4DF5);
        for case in 0..600 {
            let mut bytes = original.clone();
            match rng.below(3) {
                0 => bytes.truncate(rng.below(original.len())),
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(bytes.len());
                        bytes[at] ^= 1 << rng.below(8);
                    }
                }
                _ => {
                    let at = rng.below(bytes.len() - 8);
                    bytes[at..at + 8].copy_from_slice(&rng.next().to_le_bytes());
                }
            }
            let uri = format!("{fixture_name}-mutant-{case}");
            let result = std::panic::catch_unwind(|| {
                let file = match Netcdf4File::from_ranges(&uri, Arc::new(bytes.clone())) {
                    Ok(file) => file,
                    Err(e) => {
                        let message = e.to_string();
                        assert!(message.contains(&uri), "{message}");
                        return 0;
                    }
                };
                let mut failed_reads = 0;
                for var in file.netcdf_variables().expect("listed at open") {
                    if var.nc_type.is_none() {
                        continue;
                    }
                    match file.read(&var.name, &vec![0; var.shape.len()], &var.shape) {
                        Ok(raw) => {
                            let n: u64 = var.shape.iter().product();
                            assert_eq!(raw.len() as u64, n, "{}", var.name);
                        }
                        Err(e) => {
                            let message = e.to_string();
                            assert!(
                                message.contains(&uri) && message.contains(&var.name),
                                "the error names the file and the variable: {message}"
                            );
                            failed_reads += 1;
                        }
                    }
                }
                if let Ok(source) = Netcdf4File::from_ranges(&uri, Arc::new(bytes.clone()))
                    .and_then(|file| NetcdfSource::from_data(Box::new(file)))
                {
                    for variable in &source.describe().variables {
                        if let Ok(regions) = source.regions(&variable.name) {
                            for (region, window) in regions.into_iter().take(2) {
                                let request = TileRequest {
                                    step: 0,
                                    region,
                                    window,
                                };
                                let _ = source.read_tile(&variable.name, &request);
                            }
                        }
                    }
                }
                if failed_reads > 0 { 1 } else { 2 }
            });
            match result {
                Ok(outcome) => outcomes[outcome] += 1,
                Err(_) => panic!("{uri} panicked"),
            }
        }
    }
    // Every outcome happens: refused at open, a variable that fails to read, and mutations that
    // only change values.
    assert!(outcomes.iter().all(|n| *n > 20), "{outcomes:?}");
}
