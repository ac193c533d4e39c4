#!/usr/bin/env bash
# Data of the blizzard-1996 case study (examples/case_studies/blizzard-1996/): NCAR's analyses of the
# January 1996 North American blizzard, as NCL ships them in Debian's package libncarg-data, merged
# into one CF-annotated Zarr store by blizzard_1996_to_zarr.py (beside this script).
#
#   scripts/case-studies/fetch-blizzard-1996.sh [OUT.zarr]     # default: data/blizzard-1996.zarr
#
# The six source files (Pstorm.cdf, Tstorm.cdf, Ustorm.cdf, Vstorm.cdf, U500storm.cdf,
# V500storm.cdf) are taken from /usr/share/ncarg/data/cdf when the package is installed
# (`apt-get install libncarg-data`), else from .ci/cache/case-studies/libncarg-data, else the
# package is fetched with `apt-get download` (nothing is installed) and only those files are
# unpacked into that cache. The converter checks each file's SHA-256. Idempotent: an existing OUT
# is kept. Needs a Python with xarray and zarr: the test environment .venv that scripts/test.sh
# builds from tests/python/requirements.txt (or set PYTHON).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$repo/data/blizzard-1996.zarr}"
python="${PYTHON:-$repo/.venv/bin/python}"
files=(Pstorm.cdf Tstorm.cdf Ustorm.cdf Vstorm.cdf U500storm.cdf V500storm.cdf)
cache="$repo/.ci/cache/case-studies/libncarg-data"
hint="install the package (apt-get install libncarg-data) or make 'apt-get download libncarg-data' work (apt-get update)"

say() { echo "fetch-blizzard-1996: $*" >&2; }

if [ -e "$out" ]; then
    say "$out exists; kept"
    exit 0
fi

have_all() {
    local f
    for f in "${files[@]}"; do [ -f "$1/$f" ] || return 1; done
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else say "root is needed to run: $*"; return 1
    fi
}

src=""
for dir in /usr/share/ncarg/data/cdf "$cache/usr/share/ncarg/data/cdf"; do
    if have_all "$dir"; then src="$dir"; break; fi
done

if [ -z "$src" ]; then
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
        say "NCL's sample files are not here and this machine has no apt-get/dpkg-deb: $hint"
        exit 1
    }
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    chmod 755 "$tmp"   # apt's sandbox user writes the download
    say "fetching Debian's libncarg-data (about 27 MB) with apt-get download"
    if ! (cd "$tmp" && apt-get download -qq libncarg-data) 2>"$tmp/apt.log"; then
        # A fresh machine may have no package lists yet.
        say "apt-get download failed ($(tr '\n' ' ' <"$tmp/apt.log")); updating the package lists"
        as_root apt-get update -qq || { say "apt-get update failed: $hint"; exit 1; }
        (cd "$tmp" && apt-get download -qq libncarg-data) || { say "apt-get download libncarg-data failed: $hint"; exit 1; }
    fi
    deb="$(ls "$tmp"/libncarg-data_*.deb)"
    mkdir -p "$cache"
    members=()
    for f in "${files[@]}"; do members+=("./usr/share/ncarg/data/cdf/$f"); done
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$cache" "${members[@]}"
    say "unpacked ${files[*]} from $(basename "$deb") into $cache"
    src="$cache/usr/share/ncarg/data/cdf"
fi

if [ ! -x "$python" ]; then
    say "no Python at $python: run scripts/test.sh once (it builds .venv from tests/python/requirements.txt) or set PYTHON to a Python with xarray and zarr"
    exit 1
fi
"$python" "$repo/scripts/case-studies/blizzard_1996_to_zarr.py" "$src" "$out"
