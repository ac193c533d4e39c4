#!/usr/bin/env python3
"""Writes NetCDF fixtures with the tools scientists use, and what xarray decodes from them.

Usage: make_netcdf_fixtures.py OUT_DIR

Files (all with time, lat, lon coordinates):
  classic.nc   CDF-1, xarray + scipy: several record variables (float32 with NaNs, float64 with
               missing_value, int16 packed with float32 scale_factor/add_offset/_FillValue and a
               record slab of an odd number of bytes), a byte with _Unsigned and _FillValue,
               descending latitude, time in "days since ..." on the noleap calendar.
  offset64.nc  CDF-2, xarray + scipy: two record variables (int16 slabs of 70 bytes, padded to 72,
               and the int32 time), float64 packing, standard calendar.
  single.nc    CDF-1, xarray + scipy: exactly one record variable (int16 slabs of 14 bytes: records
               are not padded), no coordinates.
  data64.nc    CDF-5, netCDF4-python: int64, ubyte, ushort, uint, uint64 variables, a float and an
               int record variable with unwritten records (NetCDF's default fill values, which
               xarray leaves unmasked), an int64 global attribute.
  nc4.nc       NetCDF-4, xarray + netCDF4: the variables of classic.nc chunked and compressed
               (deflate with shuffle; fletcher32 on one), plus int64, ubyte and
               uint32 variables, a string variable and a list-of-strings attribute; unlimited time.
  nc4classic.nc  NetCDF-4 classic model, netCDF4-python: contiguous (unchunked) variables, a
               big-endian one, a zstd-compressed one, descending latitude, packed int16, noleap
               int32 time.
  h5netcdf.nc  NetCDF-4, xarray + h5netcdf (h5py, not libnetcdf): gzip-compressed float32 and a
               packed int16, no unlimited dimension.
  nc4filters.nc  NetCDF-4, netCDF4-python: netCDF 4.9's plugin filters, one variable each: bzip2,
               blosc lz4 (byte shuffle), blosc zstd (bit shuffle, float64), blosc zlib (no
               shuffle), blosc lz4hc and blosclz (no shuffle, packed int16).
  lzf.nc       NetCDF-4 layout written by h5netcdf with h5py's LZF filter, which libnetcdf cannot
               read either: not in the manifest; the tests expect it refused by name.

For each file, OUT_DIR/manifest.json records the format, the global attributes, and per variable
its dimensions, shape, dtype as xarray decodes it, its attributes as stored (netCDF4, no masking)
and the file holding `ds[name].values` as little-endian float64 (NaN for missing); the time
coordinate is recorded as ISO 8601 instants and as stored numbers.
"""

import json
import math
import sys
import warnings
from pathlib import Path

import cftime
import h5netcdf
import netCDF4
import numpy as np
import xarray as xr

OUT = Path(sys.argv[1])
CFTIME = xr.coders.CFDatetimeCoder(use_cftime=True)


def jsonable(value):
    """An attribute value as the Rust reader shows it: text, numbers, lists; NaN as "NaN"."""
    if isinstance(value, (bytes, str)):
        return value.decode() if isinstance(value, bytes) else value
    array = np.asarray(value)
    if array.ndim == 0:
        item = array.item()
        if isinstance(item, float) and not math.isfinite(item):
            return "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
        return item
    return [jsonable(v) for v in array]


def stored_attributes(path):
    """Attributes exactly as stored, read with netCDF4-python (no masking, no decoding)."""
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        variables = {
            name: {k: jsonable(var.getncattr(k)) for k in var.ncattrs()}
            for name, var in nc.variables.items()
        }
        return {k: jsonable(nc.getncattr(k)) for k in nc.ncattrs()}, variables, nc.data_model


def iso(t):
    if isinstance(t, cftime.datetime):
        return t.isoformat()
    return np.datetime_as_string(t, unit="ms")


def record(path, expect_format, checks=(), unlimited=("time",), second_engine=True):
    """What xarray decodes from `path`, written next to it, plus sanity checks of xarray itself."""
    global_attrs, var_attrs, data_model = stored_attributes(path)
    assert data_model == expect_format, (path, data_model)
    entry = {"format": data_model, "attributes": global_attrs, "variables": {}}
    with xr.open_dataset(path, decode_times=CFTIME) as ds:
        assert set(ds.encoding.get("unlimited_dims") or ()) == set(unlimited), ds.encoding
        for name, var in ds.variables.items():
            info = {
                "dims": list(var.dims),
                "shape": list(var.shape),
                "dtype": str(var.dtype),
                "attributes": var_attrs[name],
            }
            if name == "time":
                info["times"] = [iso(t) for t in var.values]
            elif var.dtype.kind in "OSU":
                pass  # text: described, never read as data
            else:
                values = np.asarray(var.values, dtype="<f8")
                bin_name = f"{path.name}.{name}.bin"
                (OUT / bin_name).write_bytes(values.tobytes())
                info["bin"] = bin_name
            entry["variables"][name] = info
        for check in checks:
            check(ds)
    if "time" in entry["variables"]:
        with xr.open_dataset(path, decode_times=False) as raw:
            entry["variables"]["time"]["values"] = [float(v) for v in raw["time"].values]
    # A second engine reads CDF-1 and CDF-2 (scipy) and NetCDF-4 (h5netcdf): both engines must
    # agree, or the fixture is suspect.
    other = {"NETCDF3_CLASSIC": "scipy", "NETCDF3_64BIT_OFFSET": "scipy", "NETCDF4": "h5netcdf"}
    if data_model in other and second_engine:
        with xr.open_dataset(path, engine=other[data_model], decode_times=CFTIME) as a, (
            xr.open_dataset(path, engine="netcdf4", decode_times=CFTIME)
        ) as b:
            xr.testing.assert_identical(a.drop_encoding(), b.drop_encoding())
    return entry


def grid(nlat, nlon, descending):
    lat = np.linspace(60.0, -60.0, nlat) if descending else np.linspace(-30.0, 30.0, nlat)
    lon = np.linspace(0.0, 359.0, nlon)
    return lat, lon


def classic(path):
    rng = np.random.default_rng(1)
    nt, nlat, nlon = 3, 259, 261  # two block rows and two block columns of 256
    lat, lon = grid(nlat, nlon, descending=True)
    times = [
        cftime.DatetimeNoLeap(2004, 2, 28, 12),
        cftime.DatetimeNoLeap(2004, 3, 1, 0),
        cftime.DatetimeNoLeap(2004, 3, 1, 18),
    ]
    shape = (nt, nlat, nlon)
    t2m = (250 + 40 * rng.random(shape)).astype("f4")
    t2m[0, 0, :5] = np.nan
    t2m[2, -1, -1] = np.nan
    z = 1000 * rng.standard_normal(shape)
    z[1, 10:12, 20:30] = np.nan  # stored as missing_value -999
    sp = (98000 + 4000 * rng.random(shape)).astype("f4")
    sp[0, 5, 5] = np.nan  # stored as _FillValue
    lsm = np.floor(256 * rng.random((nlat, nlon))).astype("f4")
    lsm[lsm == 255] = 254
    lsm[3, 4] = np.nan  # stored as -1 with _Unsigned
    lsm[0, :3] = [0, 127, 200]
    ds = xr.Dataset(
        {
            "t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "2 metre temperature"}),
            "z": (("time", "lat", "lon"), z, {"units": "m2 s-2", "long_name": "Geopotential"}),
            "sp": (("time", "lat", "lon"), sp, {"units": "Pa", "long_name": "Surface pressure"}),
            "lsm": (("lat", "lon"), lsm, {"long_name": "Land-sea mask class"}),
        },
        coords={
            "time": ("time", times),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
        attrs={
            "title": "Isotach NetCDF-3 classic fixture",
            "Conventions": "CF-1.8",
            "version": np.int32(3),
            "resolution": np.array([0.5, 0.25]),
        },
    )
    encoding = {
        "time": {"units": "days since 2004-01-01 00:00:00", "calendar": "noleap", "dtype": "f8"},
        "z": {"_FillValue": None, "missing_value": -999.0},
        "sp": {
            "dtype": "int16",
            "scale_factor": np.float32(0.125),
            "add_offset": np.float32(100000.0),
            "_FillValue": np.int16(-32767),
        },
        "lsm": {"dtype": "int8", "_Unsigned": "true", "_FillValue": 255},
        "lat": {"_FillValue": None},
        "lon": {"_FillValue": None},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_netcdf(
            path,
            format="NETCDF3_CLASSIC",
            engine="scipy",
            unlimited_dims=["time"],
            encoding=encoding,
        )

    def decoded_as_written(decoded):
        assert decoded["t2m"].dtype == np.float32
        assert np.isnan(decoded["z"].values[1, 10, 20])
        assert np.isnan(decoded["sp"].values[0, 5, 5]) and decoded["sp"].dtype == np.float32
        assert np.isnan(decoded["lsm"].values[3, 4])
        assert list(decoded["lsm"].values[0, :3]) == [0, 127, 200]

    return record(path, "NETCDF3_CLASSIC", [decoded_as_written])


def offset64(path):
    rng = np.random.default_rng(2)
    nt, nlat, nlon = 6, 5, 7  # int16 records of 70 bytes: not a multiple of 4
    lat, lon = grid(nlat, nlon, descending=False)
    ivt = 800 * rng.random((nt, nlat, nlon))
    ivt[2, 1, 1] = np.nan
    orog = 3000 * rng.random((nlat, nlon))
    orog[0, 0] = np.nan
    ds = xr.Dataset(
        {
            "ivt": (("time", "lat", "lon"), ivt, {"units": "kg m-1 s-1"}),
            "orog": (("lat", "lon"), orog, {"units": "m"}),
        },
        coords={
            "time": ("time", np.datetime64("1979-01-01T00") + np.arange(nt) * np.timedelta64(6, "h")),
            "lat": ("lat", lat),
            "lon": ("lon", lon),
        },
        attrs={"history": "written by make_netcdf_fixtures.py"},
    )
    encoding = {
        "time": {"units": "hours since 1979-01-01", "dtype": "i4"},
        "ivt": {"dtype": "int16", "scale_factor": 0.025, "add_offset": 0.0, "_FillValue": -32768},
    }
    ds.to_netcdf(
        path, format="NETCDF3_64BIT", engine="scipy", unlimited_dims=["time"], encoding=encoding
    )
    return record(path, "NETCDF3_64BIT_OFFSET")


def single(path):
    nrec, nx = 5, 7
    counts = np.arange(nrec * nx, dtype="i2").reshape(nrec, nx) * 1000 - 9000
    counts[1, 2] = -1
    ds = xr.Dataset(
        {"counts": (("record", "x"), counts, {"long_name": "only record variable"})},
        attrs={"comment": "one record variable: records are not padded"},
    )
    ds.to_netcdf(
        path,
        format="NETCDF3_CLASSIC",
        engine="scipy",
        unlimited_dims=["record"],
        encoding={"counts": {"_FillValue": np.int16(-1)}},
    )

    def one_record_variable(decoded):
        assert list(decoded.variables) == ["counts"]
        assert np.isnan(decoded["counts"].values[1, 2])

    return record(path, "NETCDF3_CLASSIC", [one_record_variable], unlimited=("record",))


def data64(path):
    nt, nlat, nlon = 4, 3, 5
    lat, lon = grid(nlat, nlon, descending=True)
    with netCDF4.Dataset(path, "w", format="NETCDF3_64BIT_DATA") as nc:
        nc.title = "CDF-5 fixture"
        nc.setncattr("big", np.int64(2**40 + 7))
        nc.createDimension("time", None)
        nc.createDimension("lat", nlat)
        nc.createDimension("lon", nlon)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        time.calendar = "standard"
        nc.createVariable("lat", "f4", ("lat",))[:] = lat
        nc.createVariable("lon", "f4", ("lon",))[:] = lon
        shape = (nt, nlat, nlon)
        count = nc.createVariable("count", "i8", ("time", "lat", "lon"))
        count.units = "1"
        count[:] = (2**40 + np.arange(np.prod(shape))).reshape(shape)
        flags = nc.createVariable("flags", "u1", ("time", "lat", "lon"), fill_value=np.uint8(255))
        flags.set_auto_maskandscale(False)
        f = (np.arange(np.prod(shape)) * 37 % 256).astype("u1").reshape(shape)
        f[1, 1, 1] = 255  # the fill value: missing
        flags[:] = f
        nc.createVariable("u16", "u2", ("lat", "lon"))[:] = (
            np.arange(nlat * nlon, dtype="u2").reshape(nlat, nlon) * 4000
        )
        nc.createVariable("u32", "u4", ("lat", "lon"))[:] = (
            np.arange(nlat * nlon, dtype="u4").reshape(nlat, nlon) * 300_000_000
        )
        nc.createVariable("u64", "u8", ("lat", "lon"))[:] = (
            np.arange(nlat * nlon, dtype="u8").reshape(nlat, nlon) * 2**60
        )
        # Records 2 and 3 of these are never written: they hold NetCDF's default fill values.
        partial = nc.createVariable("partial", "f4", ("time", "lat", "lon"))
        partial.units = "K"
        ipartial = nc.createVariable("ipartial", "i4", ("time", "lat", "lon"))
        partial[0:2] = np.arange(2 * nlat * nlon, dtype="f4").reshape(2, nlat, nlon)
        ipartial[0:2] = -np.arange(2 * nlat * nlon, dtype="i4").reshape(2, nlat, nlon)
        time[:] = np.arange(nt) * 1.25

    def default_fill_kept(decoded):
        # xarray masks only what _FillValue / missing_value name, not NetCDF's default fills.
        assert float(decoded["partial"].values[3, 0, 0]) == float(np.float32(9.9692099683868690e36))
        assert int(decoded["ipartial"].values[3, 0, 0]) == -2147483647
        assert np.isnan(decoded["flags"].values).any()

    return record(path, "NETCDF3_64BIT_DATA", [default_fill_kept])


def nc4(path):
    """The variables of classic.nc, chunked and compressed, and the types only NetCDF-4 has."""
    rng = np.random.default_rng(4)
    nt, nlat, nlon = 3, 259, 261
    lat, lon = grid(nlat, nlon, descending=True)
    shape = (nt, nlat, nlon)
    t2m = (250 + 40 * rng.random(shape)).astype("f4")
    t2m[0, 0, :5] = np.nan
    z = 1000 * rng.standard_normal(shape)
    z[1, 10:12, 20:30] = np.nan  # stored as missing_value -999
    sp = (98000 + 4000 * rng.random(shape)).astype("f4")
    sp[0, 5, 5] = np.nan  # stored as _FillValue
    lsm = np.floor(255 * rng.random((nlat, nlon))).astype("f4")
    lsm[3, 4] = np.nan
    big = (2**40 + np.arange(nlat * nlon, dtype="i8")).reshape(nlat, nlon)
    cls = (np.arange(nlat * nlon) % 256).astype("u1").reshape(nlat, nlon)
    ds = xr.Dataset(
        {
            "t2m": (("time", "lat", "lon"), t2m, {"units": "K", "long_name": "2 metre temperature"}),
            "z": (("time", "lat", "lon"), z, {"units": "m2 s-2"}),
            "sp": (("time", "lat", "lon"), sp, {"units": "Pa"}),
            "lsm": (("lat", "lon"), lsm, {"long_name": "Land-sea mask class"}),
            "big": (("lat", "lon"), big, {"long_name": "int64 counts"}),
            "cls": (("lat", "lon"), cls),
            "wide": (("lat", "lon"), cls.astype("u4") * 16_000_000),
            "station": (("station",), np.array(["Reykjavik", "Tromsø", "Ny-Ålesund"], dtype=object)),
        },
        coords={
            "time": ("time", np.datetime64("2017-02-07T00") + np.arange(nt) * np.timedelta64(6, "h")),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
        attrs={
            "title": "Isotach NetCDF-4 fixture",
            "Conventions": "CF-1.8",
            "sources": ["ERA5-like", "generated"],
            "version": np.int64(4),
        },
    )
    deflate = {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": (1, 128, 128)}
    encoding = {
        "time": {"units": "hours since 2017-02-07 00:00:00", "calendar": "standard", "dtype": "f8"},
        "t2m": {**deflate, "fletcher32": True},
        "z": {**deflate, "_FillValue": None, "missing_value": -999.0},
        "sp": {
            **deflate,
            "dtype": "int16",
            "scale_factor": np.float32(0.125),
            "add_offset": np.float32(100000.0),
            "_FillValue": np.int16(-32767),
        },
        "lsm": {"dtype": "u1", "_FillValue": np.uint8(255), "zlib": True},
        "big": {"zlib": True, "chunksizes": (100, 100)},
        "lat": {"_FillValue": None},
        "lon": {"_FillValue": None},
    }
    ds.to_netcdf(path, format="NETCDF4", engine="netcdf4", unlimited_dims=["time"], encoding=encoding)

    def decoded_as_written(decoded):
        assert np.isnan(decoded["z"].values[1, 10, 20])
        assert np.isnan(decoded["sp"].values[0, 5, 5]) and decoded["sp"].dtype == np.float32
        assert np.isnan(decoded["lsm"].values[3, 4])
        assert decoded["big"].dtype == np.int64

    return record(path, "NETCDF4", [decoded_as_written])


def nc4classic(path):
    nt, nlat, nlon = 4, 6, 8
    lat, lon = grid(nlat, nlon, descending=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as nc:
        nc.history = "written by make_netcdf_fixtures.py"
        nc.createDimension("time", None)
        nc.createDimension("latitude", nlat)
        nc.createDimension("longitude", nlon)
        time = nc.createVariable("time", "i4", ("time",))
        time.units = "days since 1990-01-01"
        time.calendar = "noleap"
        nc.createVariable("latitude", "f8", ("latitude",), contiguous=True)[:] = lat
        nc.createVariable("longitude", "f8", ("longitude",), compression=None)[:] = lon
        ivt = nc.createVariable("ivt", "i2", ("time", "latitude", "longitude"), fill_value=np.int16(-32768))
        ivt.scale_factor = 0.05
        ivt.add_offset = 500.0
        ivt.units = "kg m-1 s-1"
        values = 500 + 400 * np.sin(np.arange(nt * nlat * nlon).reshape(nt, nlat, nlon) / 7.0)
        values = np.ma.masked_array(values, mask=np.zeros(values.shape, bool))
        values.mask[1, 2, 3] = True
        ivt[:] = values
        orog = nc.createVariable(
            "orog", ">f4", ("latitude", "longitude"), contiguous=True, endian="big"
        )
        orog.units = "m"
        orog[:] = np.arange(nlat * nlon, dtype="f4").reshape(nlat, nlon) * 10
        # netCDF 4.9's zstd filter (HDF5 filter 32015).
        tp = nc.createVariable(
            "tp", "f4", ("time", "latitude", "longitude"), compression="zstd"
        )
        tp.units = "m"
        tp[:] = np.cos(np.arange(nt * nlat * nlon, dtype="f4").reshape(nt, nlat, nlon) / 5.0)
        time[:] = np.arange(nt) * 365

    return record(path, "NETCDF4_CLASSIC")


def h5netcdf_file(path):
    rng = np.random.default_rng(5)
    nt, nlat, nlon = 2, 90, 180
    lat, lon = grid(nlat, nlon, descending=False)
    tcwv = (40 * rng.random((nt, nlat, nlon))).astype("f4")
    tcwv[1, 45, :10] = np.nan
    ds = xr.Dataset(
        {
            "tcwv": (("time", "lat", "lon"), tcwv, {"units": "kg m-2"}),
            "mslp": (("time", "lat", "lon"), 101000 + 2000 * rng.standard_normal((nt, nlat, nlon))),
        },
        coords={
            "time": ("time", np.datetime64("2021-09-01T12") + np.arange(nt) * np.timedelta64(1, "D")),
            "lat": ("lat", lat),
            "lon": ("lon", lon),
        },
        attrs={"institution": "Isotach tests"},
    )
    encoding = {
        "tcwv": {"compression": "gzip", "compression_opts": 6, "chunksizes": (1, 45, 90)},
        "mslp": {"dtype": "int16", "scale_factor": 0.5, "add_offset": 101000.0, "_FillValue": -32768},
        "time": {"units": "days since 2021-09-01 12:00"},
    }
    ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)
    return record(path, "NETCDF4", unlimited=())


def nc4filters(path):
    # The blosc filter refuses to store a chunk it cannot compress: smooth fields, and chunks of
    # 720 values (a whole step for the packed int16 one).
    nt, nlat, nlon = 3, 40, 72
    lat, lon = grid(nlat, nlon, descending=True)
    t, y, x = np.meshgrid(np.arange(nt), np.arange(nlat), np.arange(nlon), indexing="ij")
    wave = np.round(np.sin(x / 12.0 + t) * np.cos(y / 10.0), 2)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("latitude", nlat)
        nc.createDimension("longitude", nlon)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "hours since 2022-01-01 00:00"
        time[:] = np.arange(nt) * 6
        nc.createVariable("latitude", "f8", ("latitude",))[:] = lat
        nc.createVariable("longitude", "f8", ("longitude",))[:] = lon
        dims = ("time", "latitude", "longitude")
        for name, dtype, options, values in [
            ("t_bzip2", "f4", {"compression": "bzip2"}, 280 + 10 * wave),
            ("t_blosc_lz4", "f4", {"compression": "blosc_lz4", "blosc_shuffle": 1}, 270 + wave),
            ("q_blosc_zstd", "f8", {"compression": "blosc_zstd", "blosc_shuffle": 2}, 1e-3 * wave),
            ("t_blosc_zlib", "f4", {"compression": "blosc_zlib", "blosc_shuffle": 0}, 250 - wave),
            ("t_blosc_lz4hc", "f4", {"compression": "blosc_lz4hc"}, 260 + 2 * wave),
        ]:
            var = nc.createVariable(
                name, dtype, dims, chunksizes=(1, 20, 36), fill_value=np.array(-9999, dtype),
                **options,
            )
            var.units = "K" if name.startswith("t_") else "kg kg-1"
            values = np.ma.masked_array(values, mask=np.zeros(values.shape, bool))
            values.mask[1, 2, 3] = True
            var[:] = values
        ivt = nc.createVariable(
            "ivt", "i2", dims, compression="blosc_lz", blosc_shuffle=0,
            chunksizes=(1, nlat, nlon), fill_value=np.int16(-32768),
        )
        ivt.scale_factor = 0.05
        ivt.add_offset = 500.0
        ivt.units = "kg m-1 s-1"
        ivt[:] = 500 + 400 * wave

    def plugin_filters_written(decoded):
        with netCDF4.Dataset(path) as nc:
            assert nc["t_bzip2"].filters()["bzip2"]
            assert nc["q_blosc_zstd"].filters()["blosc"]["shuffle"] == 2
            assert nc["ivt"].filters()["blosc"]["compressor"] == "blosc_lz"
        assert np.isnan(decoded["t_bzip2"].values[1, 2, 3])

    # h5py decodes none of these filters, so no second engine checks this file.
    return record(path, "NETCDF4", [plugin_filters_written], second_engine=False)


def lzf(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # h5netcdf warns that LZF is not a netCDF filter
        with h5netcdf.File(path, "w", invalid_netcdf=True) as f:
            f.dimensions = {"time": 2, "lat": 3, "lon": 4}
            f.create_variable("time", ("time",), data=np.arange(2.0))
            f["time"].attrs["units"] = "hours since 2000-01-01"
            f.create_variable("lat", ("lat",), data=np.array([10.0, 0.0, -10.0]))
            f.create_variable("lon", ("lon",), data=np.arange(4.0) * 90)
            f.create_variable("t2m", ("time", "lat", "lon"), data=np.ones((2, 3, 4), "f4"))
            f.create_variable(
                "tp", ("time", "lat", "lon"), data=np.zeros((2, 3, 4), "f4"), compression="lzf"
            )


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {
        "classic.nc": classic(OUT / "classic.nc"),
        "offset64.nc": offset64(OUT / "offset64.nc"),
        "single.nc": single(OUT / "single.nc"),
        "data64.nc": data64(OUT / "data64.nc"),
        "nc4.nc": nc4(OUT / "nc4.nc"),
        "nc4classic.nc": nc4classic(OUT / "nc4classic.nc"),
        "h5netcdf.nc": h5netcdf_file(OUT / "h5netcdf.nc"),
        "nc4filters.nc": nc4filters(OUT / "nc4filters.nc"),
    }
    lzf(OUT / "lzf.nc")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, allow_nan=False))


if __name__ == "__main__":
    main()
