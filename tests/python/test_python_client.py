"""The Python client example (examples/python/submit_and_watch.py), generated from the project's
.proto files with grpcio-tools, against a real `isotach serve`: it submits a spec, follows the
events, and opens the Zarr result with xarray; a wrong token is refused as UNAUTHENTICATED; over TLS
it trusts the server's CA."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "isotach"
EXAMPLE = ROOT / "examples" / "python" / "submit_and_watch.py"
SECRET = "python-client-test-token"


def start_server(base, tls=""):
    assert BIN.exists(), f"{BIN} is missing: build it with `cargo build -p isotach`"
    data = base / "data"
    data.mkdir()
    subprocess.run([str(BIN), "generate", "--out", str(data / "s.zarr"), "--resolution-deg", "3",
                    "--steps", "4"], check=True, capture_output=True)
    (base / "service.toml").write_text(
        f'data_roots = ["data"]\n[[token]]\nname = "py"\nsecret = "{SECRET}"\n{tls}')
    proc = subprocess.Popen(
        [str(BIN), "serve", "--data-dir", str(base / "state"), "--config",
         str(base / "service.toml"), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, f"the server did not start: {line!r}"
    address = line.rsplit(" ", 1)[-1].strip()
    return proc, address, data


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("service")
    proc, address, data = start_server(base)
    yield address, data, base
    proc.terminate()
    proc.wait(timeout=30)


def run_example(address, data, base, token, *extra):
    return subprocess.run(
        [sys.executable, str(EXAMPLE), "--server", address, "--token", token,
         "--store", "s.zarr", "--out", "out/ivt.zarr", "--out-local", str(data / "out/ivt.zarr"),
         "--cache", str(base / "client"), *extra],
        capture_output=True, text=True, timeout=300)


def test_the_python_client_submits_watches_and_opens_the_result(server):
    address, data, base = server
    done = run_example(address, data, base, SECRET)
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("job ") and ("QUEUED" in lines[0] or "RUNNING" in lines[0]), lines[0]
    assert any(" accepted" in l for l in lines), done.stdout
    assert sum(" completed" in l for l in lines) == 4, done.stdout
    assert any(" succeeded" in l for l in lines), done.stdout
    assert "opened" in lines[-1] and "'time': 4, 'lat': 61, 'lon': 120" in lines[-1], lines[-1]
    ds = xr.open_zarr(data / "out/ivt.zarr")
    src = xr.open_zarr(data / "s.zarr")
    expected = (src.ivt_u ** 2 + src.ivt_v ** 2) ** 0.5
    assert abs(ds.ivt - expected).max() < 1e-3


def test_a_wrong_token_is_refused(server):
    address, data, base = server
    refused = run_example(address, data, base, "not-the-token-at-all")
    assert refused.returncode == 2
    assert "UNAUTHENTICATED" in refused.stderr, refused.stderr


def test_over_tls_the_client_trusts_the_servers_ca(tmp_path):
    certs = tmp_path / "certs"
    subprocess.run(["bash", str(ROOT / "tests" / "tls" / "make-certs.sh"), str(certs)], check=True)
    proc, address, data = start_server(
        tmp_path, f'[tls]\ncert = "{certs / "server.pem"}"\nkey = "{certs / "server.key"}"\n')
    try:
        port = address.rsplit(":", 1)[1]
        done = run_example(f"localhost:{port}", data, tmp_path, SECRET, "--ca",
                           str(certs / "ca.pem"))
        assert done.returncode == 0, done.stderr
        assert any(" succeeded" in l for l in done.stdout.splitlines()), done.stdout
        # Without the CA, the cleartext client gets no answer from the TLS server.
        plain = run_example(f"localhost:{port}", data, tmp_path, SECRET)
        assert plain.returncode != 0
        assert "UNAVAILABLE" in plain.stderr, plain.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)
