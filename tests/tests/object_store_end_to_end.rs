//! `isotach run` on a store in S3 (a real signature-checking server, credentials from the standard
//! environment variables), narrowed to a box across the dateline: the frames equal those of the
//! same run on the local copy, byte for byte; and the same for a NetCDF-4 copy that xarray wrote.

#[path = "../../connectors/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use isotach_tests::{generate, isotach_bin, isotach_ok};
use support::servers::{ACCESS_KEY, SECRET_KEY, s3_server};

fn spec(dir: &Path, uri: &str, frames: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{frames}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
name = "pacific-box"
[source]
uri = "{uri}"
variables = ["ivt_u", "ivt_v"]
region = {{ lat = [10.0, 70.0], lon = [150.0, -110.0] }}
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[sink]]
kind = "frames"
path = "{frames}"
width_px = 320
height_px = 200
layers = [{{ variable = "ivt", range = [0, 1000] }}]
"#
        ),
    )
    .expect("write spec");
    path
}

fn run_with_credentials(dir: &Path, spec: &Path, port: u16, secret: &str) -> Output {
    Command::new(isotach_bin())
        .args(["run", spec.to_str().expect("utf-8")])
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("start isotach")
}

/// Runs `spec` against the S3 server with the right credentials; a failure shows `what` and stderr.
fn run_from_s3(dir: &Path, spec: &Path, port: u16, what: &str) {
    let out = run_with_credentials(dir, spec, port, SECRET_KEY);
    assert!(
        out.status.success(),
        "run from {what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first `steps` frames in the folders `a` and `b` under `dir` are byte-identical.
fn assert_same_frames(dir: &Path, a: &str, b: &str, steps: usize) {
    for step in 0..steps {
        let name = format!("ivt_{step:05}.png");
        let first = std::fs::read(dir.join(a).join(&name)).expect("frame");
        let second = std::fs::read(dir.join(b).join(&name)).expect("frame");
        assert!(
            first == second,
            "{name} differs between the {a} and the {b} run"
        );
    }
}

#[test]
fn a_run_from_s3_draws_what_the_local_run_draws() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("s3");
    std::fs::create_dir_all(root.join("era5")).expect("bucket");
    generate(dir.path(), "s3/era5/season.zarr", 2, 3);
    let server = s3_server(&root);

    let remote = spec(dir.path(), "s3://era5/season.zarr", "remote");
    run_from_s3(dir.path(), &remote, server.port, "S3");
    let local = spec(dir.path(), "s3/era5/season.zarr", "local");
    isotach_ok(dir.path(), &["run", local.to_str().expect("utf-8")]);
    assert_same_frames(dir.path(), "remote", "local", 3);

    let out = run_with_credentials(dir.path(), &remote, server.port, "not-the-secret");
    assert!(!out.status.success(), "a wrong secret must fail the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("s3://era5/season.zarr") && stderr.contains("refused the credentials"),
        "{stderr}"
    );
}

#[test]
fn a_netcdf4_copy_in_s3_draws_what_the_zarr_store_draws() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("s3");
    std::fs::create_dir_all(root.join("era5")).expect("bucket");
    generate(dir.path(), "season.zarr", 2, 3);
    // What a scientist's archive holds: xarray's NetCDF-4, chunked per step, deflate + shuffle.
    let convert = Command::new(support::python())
        .args([
            "-c",
            "import sys, xarray as xr\n\
             ds = xr.open_zarr(sys.argv[1])\n\
             enc = {v: {'zlib': True, 'shuffle': True, 'chunksizes': (1,) + ds[v].shape[1:]}\n\
                    for v in ds.data_vars if ds[v].dims[0] == 'time'}\n\
             ds.to_netcdf(sys.argv[2], engine='netcdf4', format='NETCDF4', encoding=enc)",
        ])
        .arg(dir.path().join("season.zarr"))
        .arg(root.join("era5/season.nc"))
        .output()
        .expect("start python");
    assert!(
        convert.status.success(),
        "xarray could not write the NetCDF-4 copy:\n{}",
        String::from_utf8_lossy(&convert.stderr)
    );
    let server = s3_server(&root);

    let remote = spec(dir.path(), "s3://era5/season.nc", "netcdf4");
    run_from_s3(dir.path(), &remote, server.port, "the NetCDF-4 file in S3");
    let zarr = spec(dir.path(), "season.zarr", "zarr");
    isotach_ok(dir.path(), &["run", zarr.to_str().expect("utf-8")]);
    assert_same_frames(dir.path(), "netcdf4", "zarr", 3);
}
