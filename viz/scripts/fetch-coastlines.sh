#!/usr/bin/env bash
# Installs the coastline data the renderer draws: Natural Earth land polygons (1:110m, 1:50m,
# 1:10m) as TopoJSON from the npm package world-atlas, into .ci/cache/coastlines/world-atlas of
# the workspace (or the directory given as $1 / $ISOTACH_COASTLINE_DIR). Idempotent: does nothing
# when the pinned version is already there. Uses `npm pack` (which checks the registry's integrity
# hash) when npm exists, else curl (or Python) against the registry tarball with the pinned SHA-1.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=2.0.2
# registry.npmjs.org's dist.shasum of world-atlas-2.0.2.tgz.
sha1=4bca4a578f3a413bd409c3f07f2054fe7375824f
dest="${1:-${ISOTACH_COASTLINE_DIR:-.ci/cache/coastlines/world-atlas}}"
stamp="$dest/.version"

if [ "$(cat "$stamp" 2>/dev/null)" = "$version" ] \
    && [ -f "$dest/land-110m.json" ] && [ -f "$dest/land-50m.json" ] && [ -f "$dest/land-10m.json" ]; then
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="$work/world-atlas-$version.tgz"
echo "fetch-coastlines: downloading world-atlas $version (Natural Earth land, 2 MB download)"
if command -v npm >/dev/null; then
    (cd "$work" && npm pack --silent "world-atlas@$version" >/dev/null)
elif command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$tarball" "https://registry.npmjs.org/world-atlas/-/world-atlas-$version.tgz"
else
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
        "https://registry.npmjs.org/world-atlas/-/world-atlas-$version.tgz" "$tarball"
fi
echo "$sha1  $tarball" | sha1sum -c --quiet - || {
    echo "fetch-coastlines: $tarball does not have the expected SHA-1 $sha1" >&2
    exit 1
}
tar -xzf "$tarball" -C "$work" package/land-110m.json package/land-50m.json package/land-10m.json \
    package/LICENSE
mkdir -p "$dest"
for f in land-110m.json land-50m.json land-10m.json LICENSE; do
    mv -f "$work/package/$f" "$dest/$f"
done
echo "$version" > "$stamp"
echo "fetch-coastlines: installed in $dest"
