#!/usr/bin/env python3
"""Submit a pipeline to an Isotach job server from Python, follow its events, open the result.

The client code is generated from the project's .proto files with the standard Python gRPC tools
(grpcio-tools) into a cache folder the first time the script runs; nothing generated is committed.

    .venv/bin/python examples/python/submit_and_watch.py \\
        --server 127.0.0.1:50051 --token SECRET --store data/demo.zarr --out out/python/ivt.zarr

The spec is built as protobuf messages (isotach.v1.PipelineSpec): IVT magnitude from ivt_u and
ivt_v, written to a Zarr store, which the script opens with xarray once the job has succeeded.
Paths are as the server sees them (relative paths are taken from its first data root). For a
server with TLS, pass `--ca CA.pem` (the CA that signed its certificate) and the host name its
certificate names, e.g. `--server localhost:50051`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "proto"


def generated_modules(cache: Path):
    """isotach.v1's pipeline_pb2, job_pb2 and job_pb2_grpc, generated into `cache` if missing."""
    out = cache / "isotach" / "v1"
    sources = sorted((PROTO / "isotach" / "v1").glob("*.proto"))
    stale = not (out / "job_pb2_grpc.py").exists() or any(
        src.stat().st_mtime > (out / "job_pb2_grpc.py").stat().st_mtime for src in sources
    )
    if stale:
        import grpc_tools
        from grpc_tools import protoc

        cache.mkdir(parents=True, exist_ok=True)
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO}",
            f"-I{well_known}",
            f"--python_out={cache}",
            f"--grpc_python_out={cache}",
            *[str(src.relative_to(PROTO)) for src in sources],
        ]
        if protoc.main(args) != 0:
            sys.exit(f"generating the Python client from {PROTO} failed")
        for package in (cache / "isotach", out):
            (package / "__init__.py").touch()
    sys.path.insert(0, str(cache))
    return (
        importlib.import_module("isotach.v1.pipeline_pb2"),
        importlib.import_module("isotach.v1.job_pb2"),
        importlib.import_module("isotach.v1.job_pb2_grpc"),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051", help="host:port of isotach serve")
    parser.add_argument("--token", required=True, help="a bearer token from the server's config")
    parser.add_argument("--ca", help="PEM file of the CA that signed the server's certificate: "
                        "connect over TLS (a server with [tls] in its config)")
    parser.add_argument("--store", required=True, help="the source store, as the server sees it")
    parser.add_argument("--out", required=True, help="the Zarr store to write, as the server sees it")
    parser.add_argument("--out-local", help="where this machine reads --out (default: --out)")
    parser.add_argument("--cache", default=str(ROOT / "target" / "python-client"),
                        help="folder for the generated client")
    args = parser.parse_args()

    import grpc

    pipeline, job, job_grpc = generated_modules(Path(args.cache))
    spec = pipeline.PipelineSpec(
        name="python-ivt",
        source=pipeline.SourceSpec(uri=args.store, variables=["ivt_u", "ivt_v"]),
        steps=[
            pipeline.Step(
                magnitude=pipeline.Step.Magnitude(inputs=["ivt_u", "ivt_v"], output="ivt")
            )
        ],
        sinks=[pipeline.Sink(zarr=pipeline.Sink.Zarr(path=args.out, variables=["ivt"]))],
    )
    auth = [("authorization", f"Bearer {args.token}")]
    if args.ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=Path(args.ca).read_bytes())
        channel = grpc.secure_channel(args.server, credentials)
    else:
        channel = grpc.insecure_channel(args.server)
    with channel:
        jobs = job_grpc.JobServiceStub(channel)
        try:
            submitted = jobs.Submit(job.SubmitJobRequest(spec=spec), metadata=auth)
        except grpc.RpcError as e:
            print(f"submit refused: {e.code().name}: {e.details()}", file=sys.stderr)
            return 2
        print(f"job {submitted.id} {job.JobState.Name(submitted.state)}", flush=True)
        final = None
        for event in jobs.Watch(job.WatchJobRequest(id=submitted.id), metadata=auth):
            kind = event.WhichOneof("event")
            detail = getattr(event, kind)
            if kind == "progress":
                print(f"  {event.seq:>4} progress {detail.stage}: {detail.done}/{detail.total} "
                      f"({detail.rate_per_s:.1f}/s)", flush=True)
            elif kind == "step_completed":
                print(f"  {event.seq:>4} step {detail.step} completed", flush=True)
            else:
                print(f"  {event.seq:>4} {kind} {str(detail).strip()}", flush=True)
            if kind in ("succeeded", "failed", "cancelled", "interrupted"):
                final = kind
                break
    if final != "succeeded":
        print(f"job {submitted.id} ended {final}", file=sys.stderr)
        return 1

    import xarray as xr

    ds = xr.open_zarr(args.out_local or args.out)
    ivt = ds["ivt"]
    print(f"opened {args.out_local or args.out}: ivt {dict(ivt.sizes)} [{ivt.attrs.get('units')}], "
          f"time {str(ds.time.values[0])[:16]} .. {str(ds.time.values[-1])[:16]}, "
          f"max {float(ivt.max()):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
