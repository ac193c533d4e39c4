#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine with Rust: installs what the tests need (Mesa's
# software Vulkan so that wgpu finds an adapter without a GPU; Xvfb, xwd, xdotool and the X11
# libraries that winit loads, for the windowed wall nodes; python3-venv), builds the Python
# environment of the interop tests, then runs every Rust and Python test. Nothing is skipped: with
# no graphics adapter the rendering tests fail, saying how to install one.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else echo "test.sh: root is needed to run: $*" >&2; return 1
    fi
}

packages=()
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || packages+=(libvulkan1)
compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || packages+=(mesa-vulkan-drivers)
python3 -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
# Windowed wall nodes under a private X server, screenshots of it, closing windows, SIGINT.
command -v Xvfb >/dev/null || packages+=(xvfb)
command -v xwd >/dev/null || packages+=(x11-apps)
command -v xdotool >/dev/null || packages+=(xdotool)
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || packages+=(procps)
for lib_package in libX11.so.6:libx11-6 libX11-xcb.so.1:libx11-xcb1 libXcursor.so.1:libxcursor1 \
    libXi.so.6:libxi6 libxkbcommon-x11.so.0:libxkbcommon-x11-0; do
    ldconfig -p 2>/dev/null | grep -qF "${lib_package%%:*}" || packages+=("${lib_package##*:}")
done
# The TLS tests make their certificates with openssl.
command -v openssl >/dev/null || packages+=(openssl)
if [ ${#packages[@]} -gt 0 ]; then
    echo "test.sh: installing ${packages[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# lavapipe warns on every start without a private runtime dir.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
    export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/isotach-runtime-$(id -u)"
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi

venv=.venv
stamp="$venv/.requirements"
if ! cmp -s tests/python/requirements.txt "$stamp" 2>/dev/null; then
    echo "test.sh: building the Python environment in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
    cp tests/python/requirements.txt "$stamp"
fi

# The S3 tests run against a real signature-checking server on 127.0.0.1.
s3s_version=0.14.1
tools=.ci/cache/tools
if ! "$tools/bin/s3s-fs" --version 2>/dev/null | grep -q "$s3s_version"; then
    echo "test.sh: building the S3 test server s3s-fs $s3s_version (a few minutes, once)"
    cargo install --quiet s3s-fs --version "$s3s_version" --features binary --locked --root "$tools"
fi

# Coastlines the renderer draws: Natural Earth land from the npm package world-atlas (once, cached
# in .ci/cache/coastlines).
viz/scripts/fetch-coastlines.sh

cargo build -p isotach
cargo test --workspace
"$venv/bin/python" -m pytest tests/python -q
