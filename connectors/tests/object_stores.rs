//! Zarr over real servers on 127.0.0.1: S3 through `s3s-fs` (it checks SigV4 signatures) and
//! HTTP through a server that honours range requests. Reads must equal local reads.

mod support;

use isotach_connectors::{NcType, NetcdfSource, Source, StoreOptions, TileRequest, ZarrSource};
use support::servers::{ACCESS_KEY, SECRET_KEY, http_server, s3_server};
use support::{same, write_store};

/// Every tile of every step read through `remote` equals the same tile read from disk.
fn assert_same_as_local(remote: &ZarrSource, local: &ZarrSource) {
    assert_eq!(remote.describe().grid, local.describe().grid);
    assert_eq!(remote.describe().time, local.describe().time);
    let regions = local.regions("ivt").expect("regions");
    assert_eq!(remote.regions("ivt").expect("regions"), regions);
    assert_eq!(regions.len(), 12);
    for step in 0..3 {
        for (region, window) in &regions {
            let request = TileRequest {
                step,
                region: *region,
                window: *window,
            };
            let a = remote.read_tile("ivt", &request).expect("remote tile");
            let b = local.read_tile("ivt", &request).expect("local tile");
            assert!(
                same(a.values.as_slice(), b.values.as_slice()),
                "tile {region:?} of step {step} differs"
            );
        }
    }
}

fn s3_options(port: u16, secret: &str) -> StoreOptions {
    StoreOptions {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(secret.into()),
        anonymous: false,
    }
}

#[test]
fn s3_reads_equal_local_reads_consolidated_or_listed() {
    let root = tempfile::tempdir().expect("tempdir");
    let bucket = root.path().join("era5");
    write_store(&bucket.join("consolidated.zarr"), true);
    write_store(&bucket.join("nested/listed.zarr"), false);
    let server = s3_server(root.path());
    let options = s3_options(server.port, SECRET_KEY);
    for key in ["consolidated.zarr", "nested/listed.zarr"] {
        let remote = ZarrSource::open_with(&format!("s3://era5/{key}"), &options)
            .unwrap_or_else(|e| panic!("open s3://era5/{key}: {e}"));
        let local = ZarrSource::open(bucket.join(key).to_str().expect("utf-8")).expect("local");
        assert_same_as_local(&remote, &local);
    }
}

#[test]
fn s3_wrong_credentials_are_a_clear_error() {
    let root = tempfile::tempdir().expect("tempdir");
    write_store(&root.path().join("era5/data.zarr"), true);
    let server = s3_server(root.path());
    let err = ZarrSource::open_with("s3://era5/data.zarr", &s3_options(server.port, "wrong"))
        .expect_err("a wrong secret must be refused");
    let message = err.to_string();
    assert!(message.contains("s3://era5/data.zarr"), "{message}");
    assert!(message.contains("403"), "{message}");
    assert!(message.contains("refused the credentials"), "{message}");

    let anonymous = StoreOptions {
        anonymous: true,
        access_key_id: None,
        secret_access_key: None,
        ..s3_options(server.port, SECRET_KEY)
    };
    let err = ZarrSource::open_with("s3://era5/data.zarr", &anonymous)
        .expect_err("unsigned requests to a private bucket must be refused");
    assert!(err.to_string().contains("refused the credentials"), "{err}");
}

#[test]
fn s3_missing_store_and_bucket_are_named() {
    let root = tempfile::tempdir().expect("tempdir");
    write_store(&root.path().join("era5/data.zarr"), true);
    let server = s3_server(root.path());
    let options = s3_options(server.port, SECRET_KEY);
    let err = ZarrSource::open_with("s3://era5/absent.zarr", &options).expect_err("absent");
    assert!(
        err.to_string().contains("s3://era5/absent.zarr")
            && err.to_string().contains("is not a Zarr store"),
        "{err}"
    );
    let err = ZarrSource::open_with("s3://nobucket/data.zarr", &options).expect_err("no bucket");
    assert!(err.to_string().contains("s3://nobucket/data.zarr"), "{err}");
}

#[test]
fn http_reads_equal_local_reads_and_unlistable_stores_need_consolidation() {
    let root = tempfile::tempdir().expect("tempdir");
    write_store(&root.path().join("consolidated.zarr"), true);
    write_store(&root.path().join("listed.zarr"), false);
    let server = http_server(root.path());
    let base = format!("http://127.0.0.1:{}", server.port);
    let remote = ZarrSource::open(&format!("{base}/consolidated.zarr")).expect("http open");
    let local = ZarrSource::open(
        root.path()
            .join("consolidated.zarr")
            .to_str()
            .expect("utf-8"),
    )
    .expect("local");
    assert_same_as_local(&remote, &local);

    let err = ZarrSource::open(&format!("{base}/listed.zarr")).expect_err("cannot list");
    assert!(
        err.to_string().contains("consolidated") && err.to_string().contains("listed.zarr"),
        "{err}"
    );
    let err = ZarrSource::open(&format!("{base}/absent.zarr")).expect_err("absent");
    assert!(err.to_string().contains("is not a Zarr store"), "{err}");
}

/// Every variable of `remote` equals the same variable of `local`, value for value.
fn assert_netcdf_same(remote: &NetcdfSource, local: &NetcdfSource) {
    assert_eq!(remote.describe().time, local.describe().time);
    assert_eq!(remote.describe().grid, local.describe().grid);
    assert_eq!(remote.file().data_model(), local.file().data_model());
    let names: Vec<String> = local
        .variables()
        .values()
        .filter(|v| v.nc_type.is_some_and(|t| t != NcType::Char))
        .map(|v| v.name.clone())
        .collect();
    assert!(!names.is_empty());
    for name in &names {
        let a = remote.read_all(name).expect("remote read");
        let b = local.read_all(name).expect("local read");
        assert_eq!(a.len(), b.len(), "{name}");
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())),
            "{name} differs"
        );
    }
}

#[test]
fn netcdf_files_read_the_same_over_s3_and_http() {
    let root = tempfile::tempdir().expect("tempdir");
    let bucket = root.path().join("archive");
    std::fs::create_dir_all(&bucket).expect("bucket");
    support::run_script("make_netcdf_fixtures.py", &[bucket.as_os_str()]);
    let s3 = s3_server(root.path());
    let http = http_server(root.path());
    let options = s3_options(s3.port, SECRET_KEY);
    for file in [
        "classic.nc",
        "offset64.nc",
        "data64.nc",
        "nc4.nc",
        "nc4classic.nc",
        "h5netcdf.nc",
        "nc4filters.nc",
    ] {
        let local = NetcdfSource::open(bucket.join(file).to_str().expect("utf-8")).expect("local");
        let over_s3 = NetcdfSource::open_with(&format!("s3://archive/{file}"), &options)
            .unwrap_or_else(|e| panic!("s3 {file}: {e}"));
        assert_netcdf_same(&over_s3, &local);
        let over_http =
            NetcdfSource::open(&format!("http://127.0.0.1:{}/archive/{file}", http.port))
                .unwrap_or_else(|e| panic!("http {file}: {e}"));
        assert_netcdf_same(&over_http, &local);
    }
    let err = NetcdfSource::open_with("s3://archive/absent.nc", &options).expect_err("absent");
    assert!(err.to_string().contains("s3://archive/absent.nc"), "{err}");
}
