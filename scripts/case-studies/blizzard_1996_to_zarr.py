"""The January 1996 North American blizzard, from NCL's sample data to a CF-annotated Zarr store.

NCAR's NCL / NCAR Graphics ships six NetCDF-3 files of the storm (Debian package
`libncarg-data`, /usr/share/ncarg/data/cdf/): 64 six-hourly analyses from 1996-01-05 00 UTC on a
1.25° (lat) × 2.5° (lon) grid over North America, 20–60°N, 140–52.5°W. NCL's example vc09n.ncl
animates them as "the January 1996 snow storm". The files carry no units, no calendar and no
standard names: each has its variable, a `timestep` dimension (hours after `reftime`, the text
"1996 01 05 00:00"), `lat`, `lon` and `_FillValue = -9999`. This script merges them into one store
that Isotach (and xarray) read with a real time axis:

| file | variable | units (inferred from the values: see the case study's README) |
|---|---|---|
| Pstorm.cdf | `slp`, sea-level pressure | Pa (960–1044 hPa, sea-level values over the Rockies too) |
| Tstorm.cdf | `t`, temperature near the surface | K |
| Ustorm.cdf, Vstorm.cdf | `u`, `v`, near-surface wind | m s-1 |
| U500storm.cdf, V500storm.cdf | `u500`, `v500`, wind at 500 hPa | m s-1 |

Values are copied unchanged (float32); -9999 becomes NaN (the corners outside the analysis
domain on every step, and four whole steps that are missing in the files: `t` and `v` at
1996-01-09 06 UTC, `v500` at 01-14 00 UTC, `v` at 01-14 06 UTC).

Usage: python blizzard_1996_to_zarr.py SOURCE_DIR OUT.zarr
"""

import hashlib
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

# SHA-256 of each source file as libncarg-data 6.6.2.dfsg.1-1 (Debian 12) ships it: the bytes this
# case study was written against.
FILES = {
    "Pstorm.cdf": ("p", "slp", "b788360247015255de8eb46c4e2be04ea06d7713c2f4af9c85820e568506e934"),
    "Tstorm.cdf": ("t", "t", "85c860ea1b0815505fc006c4e2156791d7d855ec6957e50830bab4fc10ea7996"),
    "Ustorm.cdf": ("u", "u", "bc48e58747245f9218c86b840ebbd1512326f654a2fab954d4704442b62a82ba"),
    "Vstorm.cdf": ("v", "v", "c35ade1ba2fd89eb62fd694d0280190e870731f56bf77ba0056c9b420854ed5c"),
    "U500storm.cdf": ("u", "u500", "6175dbcdc27b0435e4f7aaaf0902ad842abc0994a2c2e7d58cf21b499b1ca915"),
    "V500storm.cdf": ("v", "v500", "bd991a911fc8b6d452d9ee0a9080c700d2be91049a24112ed3825d63b660a5a4"),
}

ATTRS = {
    "slp": ("Pa", "Sea-level pressure", "air_pressure_at_mean_sea_level"),
    "t": ("K", "Temperature near the surface", "air_temperature"),
    "u": ("m s-1", "Eastward wind near the surface", "eastward_wind"),
    "v": ("m s-1", "Northward wind near the surface", "northward_wind"),
    "u500": ("m s-1", "Eastward wind at 500 hPa", "eastward_wind"),
    "v500": ("m s-1", "Northward wind at 500 hPa", "northward_wind"),
}

TIME_UNITS = "hours since 1996-01-05 00:00:00"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(source: Path, out: Path) -> xr.Dataset:
    variables = {}
    hours = lat = lon = None
    for name, (var, new, digest) in FILES.items():
        path = source / name
        if not path.is_file():
            sys.exit(f"blizzard_1996_to_zarr: {path} is missing")
        got = sha256(path)
        if got != digest:
            sys.exit(
                f"blizzard_1996_to_zarr: {path} has SHA-256 {got}, expected {digest} "
                "(libncarg-data 6.6.2.dfsg.1-1): the case study was written for those bytes"
            )
        with xr.open_dataset(path, decode_times=False) as ds:
            reftime = ds["reftime"].values.item().decode().strip()
            if reftime != "1996 01 05 00:00":
                sys.exit(f"blizzard_1996_to_zarr: {path}: reftime {reftime!r}, expected '1996 01 05 00:00'")
            values = ds[var].values.astype(np.float32)  # -9999 already NaN (its _FillValue)
            if hours is None:
                hours, lat, lon = ds["timestep"].values, ds["lat"].values, ds["lon"].values
            elif not (
                np.array_equal(hours, ds["timestep"].values)
                and np.array_equal(lat, ds["lat"].values)
                and np.array_equal(lon, ds["lon"].values)
            ):
                sys.exit(f"blizzard_1996_to_zarr: {path} is on another grid or time axis")
        units, long_name, standard_name = ATTRS[new]
        variables[new] = xr.Variable(
            ("time", "lat", "lon"),
            values,
            {
                "units": units,
                "long_name": long_name,
                "standard_name": standard_name,
                "source": f"{name} variable {var}",
            },
        )
    time = pd.Timestamp("1996-01-05T00:00:00") + pd.to_timedelta(hours.astype(np.int64), unit="h")
    ds = xr.Dataset(
        variables,
        coords={
            "time": ("time", time.values, {"standard_name": "time", "long_name": "time"}),
            "lat": ("lat", lat.astype(np.float64), {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"}),
            "lon": ("lon", lon.astype(np.float64), {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}),
        },
        attrs={
            "Conventions": "CF-1.8",
            "title": "The January 1996 North American blizzard (NCL sample data)",
            "source": "NCAR Command Language sample data, Debian package libncarg-data "
            "(/usr/share/ncarg/data/cdf/{P,T,U,V,U500,V500}storm.cdf, reftime 1996-01-05 00 UTC)",
            "history": "merged by scripts/case-studies/blizzard_1996_to_zarr.py: values unchanged, "
            "-9999 as NaN, time from reftime + timestep hours, units and names added",
            "comment": "The source files carry no units or level names; they were inferred from "
            "the values (see examples/case_studies/blizzard-1996/README.md).",
        },
    )
    encoding = {name: {"chunks": (8, lat.size, lon.size)} for name in variables}
    encoding["time"] = {"units": TIME_UNITS, "calendar": "standard", "dtype": "int32"}
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    with warnings.catch_warnings():
        # Consolidated metadata is not yet part of the Zarr v3 spec; Isotach reads it (HTTP needs it).
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        ds.to_zarr(tmp, mode="w", encoding=encoding, consolidated=True, zarr_format=3)
    tmp.rename(out)
    return ds


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    if out.exists():
        sys.exit(f"blizzard_1996_to_zarr: {out} exists; remove it first")
    out.parent.mkdir(parents=True, exist_ok=True)
    ds = convert(source, out)
    print(
        f"wrote {out}: {', '.join(ds.data_vars)} on {ds.sizes['time']} steps "
        f"({str(ds.time.values[0])[:16]} .. {str(ds.time.values[-1])[:16]}) × "
        f"{ds.sizes['lat']} × {ds.sizes['lon']}"
    )


if __name__ == "__main__":
    main()
