"""Isotach's outputs open in xarray, zarr-python and pyarrow with the right coordinates, times,
units and values."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.ipc
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "isotach"


def isotach(*args, cwd=None):
    assert BIN.exists(), f"{BIN} is missing: build it with `cargo build -p isotach`"
    return subprocess.run([str(BIN), *args], check=True, capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "s.zarr"
    isotach("generate", "--out", str(path), "--resolution-deg", "2", "--steps", "6",
            "--start", "2017-02-05T00:00:00Z")
    return path


def test_xarray_decodes_coordinates_times_and_units(store):
    ds = xr.open_zarr(store, consolidated=False)
    assert ds.sizes == {"time": 6, "lat": 91, "lon": 180, "level": 8}
    assert ds.time.values[0] == np.datetime64("2017-02-05T00:00:00")
    assert (np.diff(ds.time.values) == np.timedelta64(6, "h")).all()
    assert ds.lat.values[0] == 90.0 and ds.lat.values[-1] == -90.0
    assert ds.lon.values[0] == 0.0 and ds.lon.values[-1] == 358.0
    assert list(ds.level.values) == [1000, 925, 850, 700, 600, 500, 400, 300]
    assert ds.ivt_u.dims == ("time", "lat", "lon")
    assert ds.q.dims == ("time", "level", "lat", "lon")
    assert ds.ivt_u.attrs["units"] == "kg m-1 s-1"
    assert ds.iwv.attrs["standard_name"] == "atmosphere_mass_content_of_water_vapor"
    assert ds.mslp.attrs["units"] == "Pa"
    assert ds.lat.attrs["units"] == "degrees_north"
    assert ds.attrs["Conventions"] == "CF-1.8"


def test_xarray_copies_the_store_to_netcdf4_unchanged(store, tmp_path):
    # Archives are NetCDF: a store's attributes must all be ones NetCDF can hold.
    ds = xr.open_zarr(store, consolidated=False)
    ds.to_netcdf(tmp_path / "copy.nc", engine="netcdf4")
    with xr.open_dataset(tmp_path / "copy.nc") as copy:
        xr.testing.assert_identical(copy.load(), ds.load())


def test_ivt_recomputed_by_xarray_matches_the_stored_components(store):
    ds = xr.open_zarr(store, consolidated=False).isel(time=slice(0, 2))
    dp = -ds.level.diff("level") * 100.0  # Pa, positive
    g = 9.80665
    flux = ds.q * ds.u
    layer = 0.5 * (flux.isel(level=slice(None, -1)).values + flux.isel(level=slice(1, None)).values)
    ivt_u = (layer * dp.values[None, :, None, None]).sum(axis=1) / g
    np.testing.assert_allclose(ivt_u, ds.ivt_u.values, rtol=1e-4, atol=0.5)


def test_run_writes_frames_and_a_stats_table_pandas_reads(store, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
name = "interop"
[source]
uri = "{store}"
variables = ["ivt_u", "ivt_v"]
[[step]]
op = "magnitude"
inputs = ["ivt_u", "ivt_v"]
output = "ivt"
[[sink]]
kind = "frames"
path = "{tmp_path / 'frames'}"
width_px = 320
height_px = 200
layers = [{{ variable = "ivt", range = [0, 1000] }}]
""")
    isotach("run", str(spec))
    frames = sorted((tmp_path / "frames").glob("ivt_*.png"))
    assert [f.name for f in frames] == [f"ivt_{i:05}.png" for i in range(6)]
    table = pyarrow.ipc.open_file(tmp_path / "frames" / "ivt_stats.arrow").read_all()
    assert table.schema.metadata[b"units"] == b"kg m-1 s-1"
    df = table.to_pandas()
    assert list(df.step) == list(range(6))
    assert df.time.iloc[0] == pd.Timestamp("2017-02-05T00:00:00Z")
    ds = xr.open_zarr(store, consolidated=False)
    ivt = np.hypot(ds.ivt_u, ds.ivt_v)
    np.testing.assert_allclose(df["max"], ivt.max(dim=("lat", "lon")).values, atol=0.01)
    weights = np.cos(np.deg2rad(ds.lat))
    mean = ivt.weighted(weights).mean(dim=("lat", "lon")).values
    # Isotach integrates exact cell areas (clipped at the poles); cos(lat) weights differ by < 0.5%.
    np.testing.assert_allclose(df["mean"], mean, rtol=5e-3)
    parquet = pd.read_parquet(tmp_path / "frames" / "ivt_stats.parquet")
    # Parquet has no second-resolution timestamps: the same instants arrive in milliseconds.
    pd.testing.assert_frame_equal(parquet, df, check_dtype=False)
    assert parquet.time.iloc[0] == pd.Timestamp("2017-02-05T00:00:00Z")
