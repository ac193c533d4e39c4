#!/usr/bin/env python3
"""Writes the Zarr interop fixtures: small stores made by zarr-python 3 and xarray, with what xarray
decodes from each of them.

    make_zarr_fixtures.py OUTDIR [--only NAME[,NAME...]]

Every store holds the coordinates `time`, `lat`, `lon` (or `latitude`, `longitude`) and one or more
(time, lat, lon) variables of shape 3 x 19 x 36 in chunks of 2 x 8 x 10 (so the edge chunks are
partial). The layouts cover every codec and layout the Rust reader claims (v2: blosc lz4/zstd/
blosclz/lz4hc with each shuffle, zstd, gzip, zlib, bz2, none, big-endian, order F; v3: zstd with and
without checksums, blosc, gzip, bz2, sharding, transpose, big-endian), the CF conventions xarray
applies (NaN, packed int16, missing_value, standard and noleap calendars, descending latitude, both
longitude conventions), missing chunks, and codecs zarrs 0.23 cannot decode.

For every readable store, `OUTDIR/<store>.expected/<array>.f64` holds what
`xr.open_zarr(store, mask_and_scale=True)` shows for each array (`.values` as little-endian float64,
C order); for the time coordinate, its stored numbers, with the instants xarray decodes (or, for
noleap without cftime installed, the same calendar arithmetic) in the manifest.
`OUTDIR/manifest.json` lists the stores. Output is deterministic (fixed seed): runs are
byte-identical but for the mtime that numcodecs writes into gzip headers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import shutil
import sys
import warnings
from pathlib import Path

import numcodecs
import numpy as np
import pandas as pd
import xarray as xr
import zarr
import zarr.codecs as zc
import zarr.codecs.numcodecs as znc

SEED = 20240917
NT, NLAT, NLON = 3, 19, 36
CHUNKS = (2, 8, 10)
DIMS = ("time", "lat", "lon")
STANDARD_UNITS = "hours since 1980-01-14 14:00:00"
# 1980 is a leap year: the third step lies after 29 February.
STANDARD_HOURS = np.array([0, 6, 1128], dtype=np.int64)
NOLEAP_UNITS = "days since 2000-01-01"
# Days 58, 59 and 60 of a 365-day year: 28 February, 1 March, 2 March (no 29 February).
NOLEAP_DAYS = np.array([58, 59, 60], dtype=np.int64)

# Zarr-python warns that v3 consolidated metadata is not in the spec, and numcodecs codecs in v3
# are not in the spec either: both are what we mean to write.
warnings.simplefilter("ignore")


class Fixture:
    """One store: how to write it and what the manifest says about it."""

    def __init__(self, name, family, fmt, codec, write, consolidated=False, unreadable=None):
        self.name = name
        self.family = family
        self.fmt = fmt
        self.codec = codec
        self.write = write
        self.consolidated = consolidated
        self.unreadable = unreadable  # (array, codec name expected in the error)


def rng_for(name: str) -> np.random.Generator:
    """A generator per store, so that `--only` writes the same bytes as a full run."""
    return np.random.default_rng([SEED, *name.encode()])


def field(rng: np.random.Generator, base=280.0, amplitude=25.0, dtype="f4") -> np.ndarray:
    """A smooth temperature-like field with noise in the low bits."""
    lat = np.linspace(90, -90, NLAT)[None, :, None]
    lon = np.arange(NLON)[None, None, :] * 10.0
    t = np.arange(NT)[:, None, None]
    smooth = base + amplitude * np.cos(np.deg2rad(lat)) + 5 * np.sin(np.deg2rad(lon + 30 * t))
    return (smooth + rng.normal(0, 1.5, (NT, NLAT, NLON))).astype(dtype)


def coords(
    *, descending=True, lon180=False, long_names=False, calendar="standard"
) -> dict[str, xr.DataArray]:
    lat_name, lon_name = ("latitude", "longitude") if long_names else ("lat", "lon")
    lat = np.linspace(90, -90, NLAT) if descending else np.linspace(-90, 90, NLAT)
    lon = np.arange(-180, 180, 10.0) if lon180 else np.arange(0, 360, 10.0)
    if calendar == "standard":
        start = np.datetime64("1980-01-14T14:00:00", "ns")
        time = xr.DataArray(start + STANDARD_HOURS.astype("timedelta64[h]"), dims="time")
        time.attrs["standard_name"] = "time"
    else:
        # Written as numbers with their CF attributes: xarray needs cftime (not in the test
        # environment) to encode noleap dates, and the stored numbers are what matters.
        time = xr.DataArray(
            NOLEAP_DAYS,
            dims="time",
            attrs={"units": NOLEAP_UNITS, "calendar": "noleap", "standard_name": "time"},
        )
    return {
        "time": time,
        lat_name: xr.DataArray(
            lat, dims=lat_name, attrs={"units": "degrees_north", "standard_name": "latitude"}
        ),
        lon_name: xr.DataArray(
            lon, dims=lon_name, attrs={"units": "degrees_east", "standard_name": "longitude"}
        ),
    }


def dataset(data: dict[str, np.ndarray], **coord_options) -> xr.Dataset:
    c = coords(**coord_options)
    dims = tuple(c)
    variables = {
        name: xr.DataArray(values, dims=dims, attrs={"units": "K", "long_name": name})
        for name, values in data.items()
    }
    return xr.Dataset(variables, coords=c)


def time_encoding(ds: xr.Dataset) -> dict:
    if np.issubdtype(ds["time"].dtype, np.datetime64):
        return {"time": {"units": STANDARD_UNITS, "calendar": "standard", "dtype": "int64"}}
    return {}


def xarray_store(fmt: int, encoding_of_var: dict, consolidated=False, extra_vars=None, **coord_options):
    """A writer: `t2m` (float32) encoded with `encoding_of_var`, plus `extra_vars`."""

    def write(path: Path, rng: np.random.Generator):
        data = {"t2m": field(rng)}
        encoding = {"t2m": {"chunks": CHUNKS, **encoding_of_var}}
        for name, (values, enc) in (extra_vars or {}).items():
            data[name] = values(rng)
            encoding[name] = {"chunks": CHUNKS, **enc}
        ds = dataset(data, **coord_options)
        encoding.update(time_encoding(ds))
        ds.to_zarr(path, mode="w", zarr_format=fmt, consolidated=consolidated, encoding=encoding)

    return write


def zarr_arrays(fmt: int, arrays: dict, consolidated=False):
    """A writer: coordinates through xarray, then arrays made with `zarr.create_array`.

    `arrays` maps a name to (dtype, values(rng), create_array keyword arguments).
    """

    def write(path: Path, rng: np.random.Generator):
        ds = dataset({})
        ds.to_zarr(path, mode="w", zarr_format=fmt, consolidated=False, encoding=time_encoding(ds))
        group = zarr.open_group(path, mode="a", zarr_format=fmt)
        for name, (dtype, values, kwargs) in arrays.items():
            attributes = {"units": "K", "long_name": name}
            if fmt == 2:
                attributes["_ARRAY_DIMENSIONS"] = list(DIMS)
            else:
                kwargs = {"dimension_names": list(DIMS), **kwargs}
            kwargs = {"chunks": CHUNKS, "fill_value": np.nan, **kwargs}
            array = group.create_array(
                name, shape=(NT, NLAT, NLON), dtype=dtype, attributes=attributes, **kwargs
            )
            array[:] = values(rng)
        if consolidated:
            zarr.consolidate_metadata(path, zarr_format=fmt)

    return write


def delete_chunks(write, *keys: str):
    """A writer that deletes chunk (or shard) files after `write`: xarray reads them as fill."""

    def wrapped(path: Path, rng: np.random.Generator):
        write(path, rng)
        for key in keys:
            (path / key).unlink()

    return wrapped


def ints(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(-3000, 3000, (NT, NLAT, NLON)).astype("i2")


def with_nans(rng: np.random.Generator) -> np.ndarray:
    values = field(rng)
    values[rng.random(values.shape) < 0.05] = np.nan
    return values


def with_hole(rng: np.random.Generator) -> np.ndarray:
    """A field whose inner chunk (1, 8:16, 10:20) is all NaN: zarr-python does not store it."""
    values = field(rng)
    values[1, 8:16, 10:20] = np.nan
    return values


def packed_source(rng: np.random.Generator) -> np.ndarray:
    """Surface pressure in Pa as float64, with missing values, to be packed into int16."""
    values = 101325.0 + rng.normal(0, 1500, (NT, NLAT, NLON))
    values[rng.random(values.shape) < 0.05] = np.nan
    return values


def with_missing_value(rng: np.random.Generator) -> np.ndarray:
    """Precipitation with -999 where missing (declared by the `missing_value` attribute)."""
    values = np.abs(rng.normal(0, 3, (NT, NLAT, NLON))).astype("f4")
    values[rng.random(values.shape) < 0.05] = -999.0
    return values


def cf_store(fmt: int, consolidated: bool, **coord_options):
    """NaN floats, packed int16 with _FillValue, a float with missing_value."""

    def write(path: Path, rng: np.random.Generator):
        ds = dataset(
            {"t2m": with_nans(rng), "sp": packed_source(rng), "tp": with_missing_value(rng)},
            **coord_options,
        )
        ds["sp"].attrs.update(units="Pa", long_name="surface pressure")
        ds["tp"].attrs.update(units="mm", long_name="precipitation", missing_value=-999.0)
        encoding = {
            "t2m": {"chunks": CHUNKS},
            "sp": {
                "chunks": CHUNKS,
                "dtype": "int16",
                "scale_factor": 0.1,
                "add_offset": 100000.0,
                "_FillValue": -32767,
            },
            "tp": {"chunks": CHUNKS},
        }
        encoding.update(time_encoding(ds))
        ds.to_zarr(path, mode="w", zarr_format=fmt, consolidated=consolidated, encoding=encoding)

    return write


def fixtures() -> list[Fixture]:
    out = []
    blosc_shuffles = {
        "shuffle": numcodecs.Blosc.SHUFFLE,
        "bitshuffle": numcodecs.Blosc.BITSHUFFLE,
        "noshuffle": numcodecs.Blosc.NOSHUFFLE,
    }
    for cname in ["lz4", "zstd", "blosclz", "lz4hc"]:
        for shuffle_name, shuffle in blosc_shuffles.items():
            if cname == "lz4hc" and shuffle_name != "shuffle":
                continue
            codec = numcodecs.Blosc(cname=cname, clevel=5, shuffle=shuffle)
            out.append(
                Fixture(
                    f"v2_blosc_{cname}_{shuffle_name}",
                    "v2_blosc",
                    2,
                    f"blosc {cname} {shuffle_name}",
                    xarray_store(2, {"compressors": (codec,)}, consolidated=cname == "zstd"),
                    consolidated=cname == "zstd",
                )
            )
    v2_compressors = {
        "zstd": numcodecs.Zstd(level=3),
        "gzip": numcodecs.GZip(level=5),
        "zlib": numcodecs.Zlib(level=5),
        "bz2": numcodecs.BZ2(level=5),
    }
    for name, codec in v2_compressors.items():
        consolidated = name in ("zstd", "zlib")
        out.append(
            Fixture(
                f"v2_{name}",
                "v2_compressors",
                2,
                name,
                xarray_store(2, {"compressors": (codec,)}, consolidated=consolidated),
                consolidated=consolidated,
            )
        )
    out.append(
        Fixture(
            "v2_none",
            "v2_compressors",
            2,
            "no compressor",
            xarray_store(2, {"compressors": None}),
        )
    )
    zstd2 = numcodecs.Zstd(level=3)
    for consolidated in (False, True):
        suffix = "consolidated" if consolidated else "unconsolidated"
        out.append(
            Fixture(
                f"v2_layout_{suffix}",
                "v2_layout",
                2,
                "big-endian >f4 and >i2, order F, zstd",
                zarr_arrays(
                    2,
                    {
                        "t2m_be": (">f4", field, {"compressors": zstd2}),
                        "z_be": (">i2", ints, {"compressors": zstd2, "fill_value": -32768}),
                        "t2m_f": ("<f4", field, {"compressors": zstd2, "order": "F"}),
                        "t2m_be_f": (">f4", field, {"compressors": None, "order": "F"}),
                        "z_f": ("<i2", ints, {"compressors": zstd2, "order": "F", "fill_value": None}),
                    },
                    consolidated=consolidated,
                ),
                consolidated=consolidated,
            )
        )

    v3_codecs = {
        "zstd": [zc.ZstdCodec(level=3)],
        "zstd_checksum": [zc.ZstdCodec(level=3, checksum=True)],
        "zstd_crc32c": [zc.ZstdCodec(level=3), zc.Crc32cCodec()],
        "blosc_lz4_bitshuffle": [zc.BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")],
        "blosc_zstd_shuffle": [zc.BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
        "gzip": [zc.GzipCodec(level=5)],
        "bz2": [znc.BZ2(level=5)],
        "none": None,
    }
    for name, codecs in v3_codecs.items():
        consolidated = name in ("zstd_crc32c", "gzip")
        out.append(
            Fixture(
                f"v3_{name}",
                "v3_codecs",
                3,
                name.replace("_", " "),
                xarray_store(3, {"compressors": codecs}, consolidated=consolidated),
                consolidated=consolidated,
            )
        )
    for name, codec in {
        "zstd": zc.ZstdCodec(level=3),
        "blosc": zc.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
    }.items():
        out.append(
            Fixture(
                f"v3_sharded_{name}",
                "v3_sharding",
                3,
                f"sharding_indexed (inner chunks 1x8x10 in shards 2x16x20) with {name}",
                xarray_store(
                    3,
                    {"chunks": (1, 8, 10), "shards": (2, 16, 20), "compressors": [codec]},
                    consolidated=name == "blosc",
                ),
                consolidated=name == "blosc",
            )
        )
    zstd3 = [zc.ZstdCodec(level=3)]
    for consolidated in (False, True):
        suffix = "consolidated" if consolidated else "unconsolidated"
        out.append(
            Fixture(
                f"v3_layout_{suffix}",
                "v3_layout",
                3,
                "transpose, big-endian bytes, both",
                zarr_arrays(
                    3,
                    {
                        "t2m_transposed": (
                            "<f4",
                            field,
                            {"filters": [zc.TransposeCodec(order=(2, 0, 1))], "compressors": zstd3},
                        ),
                        "t2m_be": (
                            "<f4",
                            field,
                            {"serializer": zc.BytesCodec(endian="big"), "compressors": zstd3},
                        ),
                        "z_be_transposed": (
                            "<i2",
                            ints,
                            {
                                "filters": [zc.TransposeCodec(order=(1, 2, 0))],
                                "serializer": zc.BytesCodec(endian="big"),
                                "compressors": zstd3,
                                "fill_value": -32768,
                            },
                        ),
                    },
                    consolidated=consolidated,
                ),
                consolidated=consolidated,
            )
        )

    out += [
        Fixture(
            "cf_v2",
            "cf",
            2,
            "CF: NaN, packed int16, missing_value; descending lat, lon 0..360, standard calendar",
            cf_store(2, consolidated=True),
            consolidated=True,
        ),
        Fixture(
            "cf_v3",
            "cf",
            3,
            "CF: NaN, packed int16, missing_value; descending lat, lon 0..360, standard calendar",
            cf_store(3, consolidated=False),
        ),
        Fixture(
            "cf_v3_lon180",
            "cf",
            3,
            "CF: latitude/longitude names, ascending lat, lon -180..180",
            cf_store(3, consolidated=True, descending=False, lon180=True, long_names=True),
            consolidated=True,
        ),
        Fixture(
            "cf_v2_noleap",
            "cf",
            2,
            "CF: days since 2000-01-01, calendar noleap",
            cf_store(2, consolidated=False, calendar="noleap"),
        ),
        Fixture(
            "cf_v3_noleap",
            "cf",
            3,
            "CF: days since 2000-01-01, calendar noleap, lon -180..180",
            cf_store(3, consolidated=False, calendar="noleap", lon180=True),
        ),
    ]

    out += [
        Fixture(
            "v2_missing_chunk",
            "missing_chunk",
            2,
            "zstd, chunk t2m/1.0.1 deleted",
            delete_chunks(xarray_store(2, {"compressors": (numcodecs.Zstd(level=3),)}), "t2m/1.0.1"),
        ),
        Fixture(
            "v3_missing_chunk",
            "missing_chunk",
            3,
            "zstd, chunk t2m/c/1/0/1 deleted",
            delete_chunks(xarray_store(3, {"compressors": zstd3}), "t2m/c/1/0/1"),
        ),
        Fixture(
            "v3_sharded_missing_shard",
            "missing_chunk",
            3,
            "sharded zstd: shard t2m/c/0/1/1 deleted; t2m_hole has an all-NaN inner chunk, "
            "left out of its shard's index",
            delete_chunks(
                xarray_store(
                    3,
                    {"chunks": (1, 8, 10), "shards": (2, 16, 20), "compressors": zstd3},
                    extra_vars={
                        "t2m_hole": (
                            with_hole,
                            {"chunks": (1, 8, 10), "shards": (2, 16, 20), "compressors": zstd3},
                        )
                    },
                ),
                "t2m/c/0/1/1",
            ),
        ),
    ]

    out += [
        Fixture(
            "v2_lz4",
            "unreadable",
            2,
            "numcodecs lz4",
            xarray_store(2, {"compressors": (numcodecs.LZ4(),)}),
            unreadable=("t2m", "lz4"),
        ),
        Fixture(
            "v2_lzma",
            "unreadable",
            2,
            "numcodecs lzma",
            xarray_store(2, {"compressors": (numcodecs.LZMA(),)}),
            unreadable=("t2m", "lzma"),
        ),
        Fixture(
            "v2_delta",
            "unreadable",
            2,
            "numcodecs delta filter, then zstd",
            xarray_store(
                2,
                {"filters": (numcodecs.Delta(dtype="<f4"),), "compressors": (numcodecs.Zstd(),)},
            ),
            unreadable=("t2m", "delta"),
        ),
        Fixture(
            "v3_zlib_nolevel",
            "unreadable",
            3,
            'numcodecs.zlib with "configuration": {}',
            xarray_store(3, {"compressors": [znc.Zlib()]}),
            unreadable=("t2m", "numcodecs.zlib"),
        ),
    ]
    return out


def noleap_iso(days: float, epoch=dt.datetime(2000, 1, 1)) -> str:
    """The date `days` after `epoch` on a 365-day calendar, as cftime prints it."""
    starts = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
    day0 = starts[epoch.month - 1] + epoch.day - 1
    seconds = round(days * 86400) + (epoch.year * 365 + day0) * 86400
    total_days, in_day = divmod(seconds, 86400)
    year, day_of_year = divmod(total_days, 365)
    month = max(i for i, s in enumerate(starts) if s <= day_of_year)
    date = dt.datetime(year, month + 1, day_of_year - starts[month] + 1) + dt.timedelta(
        seconds=in_day
    )
    return date.strftime("%Y-%m-%dT%H:%M:%SZ")


def time_instants(path: Path, fmt: int, consolidated: bool) -> tuple[list[str], dict]:
    raw = xr.open_zarr(path, zarr_format=fmt, consolidated=consolidated, decode_times=False)
    attrs = dict(raw["time"].attrs)
    if attrs.get("calendar") == "noleap":
        instants = [noleap_iso(float(v)) for v in raw["time"].values]
        if importlib.util.find_spec("cftime") is not None:  # Cross-check where it is installed.
            decoded = xr.open_zarr(
                path,
                zarr_format=fmt,
                consolidated=consolidated,
                decode_times=xr.coders.CFDatetimeCoder(use_cftime=True),
            )
            check = [t.isoformat() + "Z" for t in decoded["time"].values]
            assert check == instants, (check, instants)
    else:
        decoded = xr.open_zarr(path, zarr_format=fmt, consolidated=consolidated, decode_times=True)
        values = decoded["time"].values
        assert np.issubdtype(values.dtype, np.datetime64), values.dtype
        instants = [s + "Z" for s in np.datetime_as_string(values, unit="s")]
    return instants, {k: attrs[k] for k in ("units", "calendar") if k in attrs}


def expected(path: Path, out: Path, fixture: Fixture) -> dict:
    """Writes what xarray decodes and returns the manifest entry."""
    fmt, consolidated = fixture.fmt, fixture.consolidated
    ds = xr.open_zarr(
        path, zarr_format=fmt, consolidated=consolidated, mask_and_scale=True, decode_times=False
    )
    raw = xr.open_zarr(
        path, zarr_format=fmt, consolidated=consolidated, mask_and_scale=False, decode_times=False
    )
    instants, time_attrs = time_instants(path, fmt, consolidated)
    directory = out / f"{fixture.name}.expected"
    directory.mkdir()
    arrays = []
    for name in sorted(ds.variables):
        var = ds[name]
        values = np.ascontiguousarray(var.values, dtype="<f8")
        values.tofile(directory / f"{name}.f64")
        stored = raw[name]
        packed = "scale_factor" in stored.attrs or "add_offset" in stored.attrs
        arrays.append(
            {
                "name": name,
                "role": "time" if name == "time" else ("coord" if name in ds.coords else "data"),
                "dims": list(var.dims),
                "shape": list(var.shape),
                "dtype": str(stored.dtype),
                "decoded_dtype": str(var.dtype),
                "packed": packed,
                "nan_count": int(np.isnan(values).sum()),
                "expected": f"{fixture.name}.expected/{name}.f64",
            }
        )
    return {
        "arrays": arrays,
        "variables": [{"name": n, "dims": list(ds[n].dims)} for n in sorted(ds.data_vars)],
        "time": {"instants": instants, **time_attrs},
    }


def check_unreadable(path: Path, fixture: Fixture):
    """The store must be valid for zarr-python, so only the Rust side's codec support is tested."""
    ds = xr.open_zarr(path, zarr_format=fixture.fmt, consolidated=fixture.consolidated)
    ds.load()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--only", help="comma-separated store names to write")
    args = parser.parse_args()
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)

    chosen = fixtures()
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {f.name for f in chosen}
        if unknown:
            parser.error(f"unknown stores {sorted(unknown)} (have: {[f.name for f in chosen]})")
        chosen = [f for f in chosen if f.name in wanted]

    stores = []
    for fixture in chosen:
        path = out / f"{fixture.name}.zarr"
        for stale in (path, out / f"{fixture.name}.expected"):
            if stale.exists():
                shutil.rmtree(stale)
        fixture.write(path, rng_for(fixture.name))
        entry = {
            "name": fixture.name,
            "path": path.name,
            "family": fixture.family,
            "format": fixture.fmt,
            "consolidated": fixture.consolidated,
            "codec": fixture.codec,
        }
        if fixture.unreadable:
            check_unreadable(path, fixture)
            array, codec = fixture.unreadable
            entry["readable"] = False
            entry["unreadable"] = {"array": array, "codec": codec}
        else:
            entry["readable"] = True
            entry.update(expected(path, out, fixture))
        stores.append(entry)

    manifest = {
        "generator": "scripts/interop/make_zarr_fixtures.py",
        "versions": {
            "zarr": zarr.__version__,
            "numcodecs": numcodecs.__version__,
            "xarray": xr.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "seed": SEED,
        "stores": stores,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
