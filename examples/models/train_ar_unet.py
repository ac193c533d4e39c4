#!/usr/bin/env python3
"""Train the atmospheric-river segmentation U-Net shipped as examples/models/ar_unet.onnx.

Run from the repository root, after `cargo build` (it drives target/debug/isotach):

    python3 -m venv .venv-train
    .venv-train/bin/pip install -r examples/models/requirements.txt
    .venv-train/bin/python examples/models/train_ar_unet.py

Steps, all deterministic (fixed seeds, CPU, 2 threads):
 1. `isotach generate` writes synthetic atmospheres (0.5°, 6-hourly) for the training seeds and a
    held-out seed, under data/ar-train/.
 2. `isotach run` labels each with examples/models/ar_labels.toml: IVT >= 250 kg m-1 s-1 objects
    tested per step against the Guan & Waliser-style criterion. A cell is labelled 1 when its
    object component passes the criterion at that step (catalog `is_ar` of that (step, node)).
 3. Trains a compact U-Net on random 256×256 patches (wrapped in longitude, edge rows replicated
    at the poles).
 4. Writes the ONNX graph (opset 17; Mul, Conv, Relu, MaxPool, ConvTranspose, Concat, Sigmoid)
    from the trained weights, with symbolic N, H, W.
 5. Checks onnxruntime against torch.
 6. Measures IoU (threshold 0.5) against the detector's labels on the held-out seed, whole-field
    inference through onnxruntime, and writes examples/models/ar_unet.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# At most 2 threads everywhere (shared 2-core machine); set before numpy/torch load.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "examples" / "models"
LABEL_SPEC = MODELS / "ar_labels.toml"
SPEC_STORE = "data/ar-train/store.zarr"  # placeholders in ar_labels.toml
SPEC_OUT = "out/ar-labels/store"

NORM = 1.0 / 500.0  # IVT scale applied inside the graph
THRESHOLD_IVT = 250.0
EARTH_RADIUS_KM = 6371.0
PATCH = 256
HALO = 16


# --------------------------------------------------------------------------------------------
# 1–2. Data and labels
# --------------------------------------------------------------------------------------------


def sh(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def generate_and_label(binary: Path, seed: int, steps: int, res: float, reuse: bool) -> Path:
    """Generates one store and labels it; returns the .npz holding ivt and the 0/1 labels."""
    tag = f"seed-{seed}-res{res:g}-steps{steps}"
    store = f"data/ar-train/{tag}.zarr"
    out = f"out/ar-labels/{tag}"
    cache = REPO / "data" / "ar-train" / f"{tag}.npz"
    if reuse and cache.exists():
        print(f"reusing {cache.relative_to(REPO)}", flush=True)
        return cache
    (REPO / "data" / "ar-train").mkdir(parents=True, exist_ok=True)
    sh([str(binary), "generate", "--out", store, "--resolution-deg", f"{res:g}",
        "--steps", str(steps), "--seed", str(seed), "--force"])
    spec_text = LABEL_SPEC.read_text()
    for placeholder in (SPEC_STORE, SPEC_OUT):
        if placeholder not in spec_text:
            sys.exit(f"{LABEL_SPEC} no longer contains the path {placeholder!r} to template")
    spec_text = spec_text.replace(SPEC_STORE, store).replace(SPEC_OUT, out)
    spec_path = REPO / out / "ar_labels.toml"
    if (REPO / out).exists():
        import shutil

        shutil.rmtree(REPO / out)
    spec_path.parent.mkdir(parents=True)
    spec_path.write_text(spec_text)
    sh([str(binary), "run", str(spec_path.relative_to(REPO)), "--workers", "2"])
    ivt, labels, stats = read_labels(REPO / out / "fields.zarr", REPO / out / "catalog.parquet")
    print(f"  {tag}: {ivt.shape}, AR cells {labels.mean():.4f}, object cells "
          f"{stats['object_fraction']:.4f}, records {stats['records']} "
          f"({stats['ar_records']} AR)", flush=True)
    np.savez(cache, ivt=ivt, labels=labels, lat=stats["lat"])
    # The source store (levels included) is large and no longer needed.
    import shutil

    shutil.rmtree(REPO / store)
    return cache


def components_wrapped(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of `mask`, periodic in longitude, numbered 1.. by their first cell
    in raster order (the engine's numbering)."""
    from scipy import ndimage

    lab, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return lab, 0
    parent = np.arange(n + 1)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    nlat = mask.shape[0]
    first, last = lab[:, 0], lab[:, -1]
    for r in range(nlat):
        if first[r] == 0:
            continue
        for rr in (r - 1, r, r + 1):
            if 0 <= rr < nlat and last[rr] != 0:
                a, b = find(int(first[r])), find(int(last[rr]))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(n + 1)])
    merged = roots[lab].ravel()
    # Renumber 1.. by each component's first cell in raster order.
    first = np.full(n + 1, merged.size, dtype=np.int64)
    inside = np.flatnonzero(merged)
    np.minimum.at(first, merged[inside], inside)
    present = np.flatnonzero(first < merged.size)
    present = present[present > 0]
    remap = np.zeros(n + 1, dtype=np.int64)
    remap[present[np.argsort(first[present])]] = np.arange(1, len(present) + 1)
    return remap[merged].reshape(mask.shape), len(present)


def row_areas_km2(lat: np.ndarray, dlon_deg: float) -> np.ndarray:
    dlat = np.deg2rad(abs(float(lat[1] - lat[0])))
    dlon = np.deg2rad(abs(dlon_deg))
    phi = np.deg2rad(lat.astype(np.float64))
    south = np.maximum(phi - dlat / 2, -np.pi / 2)
    north = np.minimum(phi + dlat / 2, np.pi / 2)
    return EARTH_RADIUS_KM**2 * dlon * (np.sin(north) - np.sin(south))


def read_labels(fields: Path, catalog: Path):
    """ivt [T, lat, lon] and 0/1 AR labels from the engine's label field and catalog.

    The label field holds object ids (NaN outside kept components); ids follow objects through
    time, so a split object has several components under one id, and the per-step verdict
    `is_ar` belongs to the (step, component) node. Components at step t are numbered by their
    first cell in raster order and their nodes are consecutive, so the k-th component of step t
    is the catalog row of step t with the k-th smallest node. The areas are checked against the
    catalog's to make sure the two numberings agree.
    """
    import pandas as pd
    import xarray as xr

    ds = xr.open_zarr(fields, consolidated=False)
    ivt = ds["ivt"].values.astype(np.float32)
    ar_id = ds["ar_id"].values
    lat = ds["lat"].values
    lon = ds["lon"].values
    cat = pd.read_parquet(catalog)
    if cat["is_ar"].isna().any():
        sys.exit("catalog has no AR verdicts: the label spec needs a criterion")
    areas = row_areas_km2(lat, float(lon[1] - lon[0]))
    labels = np.zeros(ivt.shape, dtype=np.uint8)
    by_step = {int(s): g.sort_values("node") for s, g in cat.groupby("step")}
    for t in range(ivt.shape[0]):
        comp, n = components_wrapped(~np.isnan(ar_id[t]))
        recs = by_step.get(t)
        n_recs = 0 if recs is None else len(recs)
        if n != n_recs:
            sys.exit(f"step {t}: {n} components in the label field, {n_recs} catalog records")
        if n == 0:
            continue
        comp_area = np.bincount(comp.ravel(), weights=np.repeat(areas, comp.shape[1]),
                                minlength=n + 1)[1:]
        rec_area = recs["area_km2"].to_numpy()
        if not np.allclose(comp_area, rec_area, rtol=1e-6):
            sys.exit(f"step {t}: component areas {comp_area} differ from the catalog {rec_area}")
        is_ar = np.concatenate([[False], recs["is_ar"].to_numpy(dtype=bool)])
        labels[t] = is_ar[comp]
    stats = {
        "object_fraction": float((~np.isnan(ar_id)).mean()),
        "records": int(len(cat)),
        "ar_records": int(cat["is_ar"].sum()),
        "lat": lat,
    }
    return ivt, labels, stats


# --------------------------------------------------------------------------------------------
# 3. Model and training
# --------------------------------------------------------------------------------------------

CHANNELS = (8, 16, 32, 64)  # per level: full, /2, /4, /8 resolution


def build_model():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.c2 = nn.Conv2d(cout, cout, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.c2(torch.relu(self.c1(x))))

    class UNet(nn.Module):
        def __init__(self, ch=CHANNELS):
            super().__init__()
            self.enc = nn.ModuleList()
            cin = 1
            for c in ch:
                self.enc.append(Block(cin, c))
                cin = c
            self.up = nn.ModuleList()
            self.dec = nn.ModuleList()
            for c_hi, c_lo in zip(reversed(ch[:-1]), reversed(ch[1:])):
                self.up.append(nn.ConvTranspose2d(c_lo, c_hi, 2, stride=2))
                self.dec.append(Block(2 * c_hi, c_hi))
            self.head = nn.Conv2d(ch[0], 1, 1)

        def forward(self, ivt):  # logits
            x = ivt * NORM
            skips = []
            for i, blk in enumerate(self.enc):
                if i > 0:
                    x = torch.max_pool2d(x, 2)
                x = blk(x)
                skips.append(x)
            skips.pop()
            for up, dec in zip(self.up, self.dec):
                x = dec(torch.cat([up(x), skips.pop()], dim=1))
            return self.head(x)

    return UNet()


def pad_field(x: np.ndarray, top: int, bottom: int, side: int) -> np.ndarray:
    """Pads [..., lat, lon]: edge rows replicated at the poles, wrapped in longitude."""
    rows = np.clip(np.arange(-top, x.shape[-2] + bottom), 0, x.shape[-2] - 1)
    cols = np.arange(-side, x.shape[-1] + side) % x.shape[-1]
    return x[..., rows[:, None], cols[None, :]]


def sample_patches(ivt, labels, rng, n):
    """n random 256×256 patches, rows clipped at the poles (up to a halo beyond), lon wrapped."""
    T, H, W = ivt.shape
    xs = np.empty((n, 1, PATCH, PATCH), np.float32)
    ys = np.empty((n, 1, PATCH, PATCH), np.float32)
    for i in range(n):
        t = rng.integers(T)
        r0 = rng.integers(-HALO, H + HALO - PATCH + 1)
        c0 = rng.integers(W)
        rows = np.clip(np.arange(r0, r0 + PATCH), 0, H - 1)
        cols = np.arange(c0, c0 + PATCH) % W
        xs[i, 0] = ivt[t][rows[:, None], cols[None, :]]
        ys[i, 0] = labels[t][rows[:, None], cols[None, :]]
    return xs, ys


def train(model, ivt, labels, args, log):
    import torch

    rng = np.random.default_rng(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.iterations,
                                                pct_start=0.1)
    pos = float(labels.mean())
    pos_weight = torch.tensor(min(10.0, max(1.0, 0.5 * (1 - pos) / max(pos, 1e-6))))
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    log(f"train: {ivt.shape[0]} steps, positive fraction {pos:.4f}, pos_weight "
        f"{float(pos_weight):.2f}")
    t0 = time.time()
    running = 0.0
    for it in range(1, args.iterations + 1):
        xs, ys = sample_patches(ivt, labels, rng, args.batch)
        x, y = torch.from_numpy(xs), torch.from_numpy(ys)
        logits = model(x)
        p = torch.sigmoid(logits)
        inter = (p * y).sum()
        dice = 1 - (2 * inter + 1) / (p.sum() + y.sum() + 1)
        loss = bce(logits, y) + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running += loss.item()
        if it % 50 == 0 or it == args.iterations:
            log(f"  iter {it}/{args.iterations} loss {running / 50:.4f} "
                f"({time.time() - t0:.0f} s)")
            running = 0.0
    return time.time() - t0


# --------------------------------------------------------------------------------------------
# 4. ONNX export, written node by node from the trained weights
# --------------------------------------------------------------------------------------------


def export_onnx(model, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def conv(x, prefix, out, k):
        w, b = init(f"{prefix}.weight", sd[f"{prefix}.weight"]), init(f"{prefix}.bias",
                                                                      sd[f"{prefix}.bias"])
        p = k // 2
        nodes.append(helper.make_node("Conv", [x, w, b], [out], name=prefix,
                                      kernel_shape=[k, k], pads=[p, p, p, p],
                                      strides=[1, 1], dilations=[1, 1]))
        return out

    def relu(x, out):
        nodes.append(helper.make_node("Relu", [x], [out], name=out))
        return out

    def block(x, prefix):
        y = relu(conv(x, f"{prefix}.c1", f"{prefix}.c1", 3), f"{prefix}.r1")
        return relu(conv(y, f"{prefix}.c2", f"{prefix}.c2", 3), f"{prefix}.r2")

    scale = init("ivt_scale", np.array(NORM, dtype=np.float32))
    nodes.append(helper.make_node("Mul", ["ivt", scale], ["x0"], name="normalize"))
    x = "x0"
    skips = []
    for i in range(len(CHANNELS)):
        if i > 0:
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], name=f"pool{i}",
                                          kernel_shape=[2, 2], strides=[2, 2]))
            x = f"pool{i}"
        x = block(x, f"enc.{i}")
        skips.append(x)
    skips.pop()
    for j in range(len(CHANNELS) - 1):
        w = init(f"up.{j}.weight", sd[f"up.{j}.weight"])
        b = init(f"up.{j}.bias", sd[f"up.{j}.bias"])
        nodes.append(helper.make_node("ConvTranspose", [x, w, b], [f"up{j}"], name=f"up.{j}",
                                      kernel_shape=[2, 2], strides=[2, 2]))
        nodes.append(helper.make_node("Concat", [f"up{j}", skips.pop()], [f"cat{j}"],
                                      name=f"cat{j}", axis=1))
        x = block(f"cat{j}", f"dec.{j}")
    conv(x, "head", "logits", 1)
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["ar_prob"], name="sigmoid"))

    dims = ["N", 1, "H", "W"]
    graph = helper.make_graph(
        nodes, "ar_unet",
        [helper.make_tensor_value_info("ivt", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("ar_prob", TensorProto.FLOAT, dims)],
        initializer=inits,
    )
    graph.input[0].doc_string = ("IVT magnitude, kg m-1 s-1, NaN replaced by 0; H and W "
                                 "multiples of 8")
    graph.output[0].doc_string = "probability that the cell belongs to an atmospheric river"
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="isotach train_ar_unet.py", ir_version=8)
    m.doc_string = ("Atmospheric-river segmentation U-Net trained on isotach's synthetic "
                    "atmosphere against its threshold-plus-geometry detector.")
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)


def ort_session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def predict_field(sess, ivt: np.ndarray) -> np.ndarray:
    """Whole-field probabilities [T, lat, lon]: halo of 16 cells (edge rows at the poles, wrapped
    in longitude), padded to multiples of 16."""
    T, H, W = ivt.shape
    bottom = HALO + (-(H + 2 * HALO)) % 16
    side_extra = (-(W + 2 * HALO)) % 16
    x = pad_field(np.nan_to_num(ivt, nan=0.0), HALO, bottom, HALO)
    if side_extra:
        x = np.concatenate([x, x[..., :side_extra]], axis=-1)
    out = np.empty((T, H, W), np.float32)
    for t in range(T):
        p = sess.run(["ar_prob"], {"ivt": x[t][None, None].astype(np.float32)})[0]
        out[t] = p[0, 0, HALO:HALO + H, HALO:HALO + W]
    return out


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    inter = np.logical_and(pred, truth).sum()
    union = np.logical_or(pred, truth).sum()
    return float(inter / union) if union else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "target" / "debug" / "isotach"))
    ap.add_argument("--train-seeds", default="1,2,3,4")
    ap.add_argument("--heldout-seed", type=int, default=101)
    ap.add_argument("--steps", type=int, default=80, help="time steps per generated store")
    ap.add_argument("--resolution-deg", type=float, default=0.5)
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0, help="seed of weights and patch sampling")
    ap.add_argument("--out", default=str(MODELS / "ar_unet.onnx"))
    ap.add_argument("--reuse-data", action="store_true",
                    help="reuse labelled data cached in data/ar-train/*.npz")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    t_start = time.time()
    lines = []

    def log(msg):
        print(msg, flush=True)
        lines.append(msg)

    binary = Path(args.binary)
    if not binary.exists():
        sys.exit(f"{binary} is missing: run `cargo build` first")
    train_seeds = [int(s) for s in args.train_seeds.split(",")]
    if args.heldout_seed in train_seeds:
        sys.exit("the held-out seed must differ from the training seeds")

    t0 = time.time()
    train_files = [generate_and_label(binary, s, args.steps, args.resolution_deg, args.reuse_data)
                   for s in train_seeds]
    held_file = generate_and_label(binary, args.heldout_seed, args.steps, args.resolution_deg,
                                   args.reuse_data)
    data_seconds = time.time() - t0
    train_data = [np.load(f) for f in train_files]
    ivt = np.concatenate([d["ivt"] for d in train_data])
    labels = np.concatenate([d["labels"] for d in train_data])
    held = np.load(held_file)

    model = build_model()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: U-Net {CHANNELS}, {n_params} parameters")
    model.train()
    train_seconds = train(model, ivt, labels, args, log)
    model.eval()

    out = Path(args.out)
    export_onnx(model, out)
    sess = ort_session(out)
    inp, outp = sess.get_inputs()[0], sess.get_outputs()[0]
    log(f"onnx: input {inp.name} {inp.type} {inp.shape}; output {outp.name} {outp.type} "
        f"{outp.shape}")

    # 5. onnxruntime against torch, on a held-out field and a batch of two odd-sized patches.
    checks = []
    hx = pad_field(np.nan_to_num(held["ivt"][:2]), HALO, HALO + 7, HALO)[:, None][..., :400, :752]
    for x in (hx[:1].astype(np.float32), hx[:, :, :256, :512].astype(np.float32),
              np.random.default_rng(1).uniform(0, 1500, (3, 1, 64, 96)).astype(np.float32)):
        with torch.no_grad():
            ref = torch.sigmoid(model(torch.from_numpy(x))).numpy()
        got = sess.run(["ar_prob"], {"ivt": x})[0]
        assert got.shape == x.shape, (got.shape, x.shape)
        checks.append(float(np.abs(got - ref).max()))
    max_diff = max(checks)
    log(f"onnxruntime vs torch: max |diff| {max_diff:.2e} over shapes "
        "[1,1,400,752], [2,1,256,512], [3,1,64,96]")
    if max_diff > 1e-4:
        sys.exit("onnxruntime disagrees with torch")

    # 6. IoU on the held-out seed, whole field, through onnxruntime.
    t0 = time.time()
    prob = predict_field(sess, held["ivt"])
    infer_seconds = time.time() - t0
    truth = held["labels"].astype(bool)
    pred = prob >= 0.5
    iou_all = iou(pred, truth)
    per_step = [iou(pred[t], truth[t]) for t in range(truth.shape[0]) if truth[t].any() or pred[t].any()]
    # The same, for the train fields, to see over- or under-fitting.
    train_iou = iou(predict_field(sess, ivt[:: max(1, len(ivt) // 40)]) >= 0.5,
                    labels[:: max(1, len(ivt) // 40)].astype(bool))
    # Baseline: the threshold alone (every cell with IVT >= 250 called AR).
    thr_iou = iou(held["ivt"] >= THRESHOLD_IVT, truth)
    log(f"held-out IoU (seed {args.heldout_seed}, {truth.shape[0]} steps, threshold 0.5): "
        f"{iou_all:.4f}; mean per step {np.mean(per_step):.4f}; train-subset IoU {train_iou:.4f}; "
        f"threshold-only baseline {thr_iou:.4f}")

    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    report = {
        "model": str(out.relative_to(REPO)) if out.is_relative_to(REPO) else str(out),
        "sha256": digest,
        "size_bytes": out.stat().st_size,
        "opset": 17,
        "input": {"name": "ivt", "type": "float32", "shape": ["N", 1, "H", "W"],
                  "units": "kg m-1 s-1", "normalisation_in_graph": f"x * {NORM}"},
        "output": {"name": "ar_prob", "type": "float32", "shape": ["N", 1, "H", "W"]},
        "architecture": {"kind": "U-Net", "channels": list(CHANNELS), "levels": len(CHANNELS),
                         "parameters": n_params, "upsampling": "ConvTranspose 2x2 stride 2",
                         "spatial_multiple": 2 ** (len(CHANNELS) - 1)},
        "labels": {"spec": str(LABEL_SPEC.relative_to(REPO)), "threshold_ivt": THRESHOLD_IVT,
                   "rule": "1 where the cell's object component passes the AR criterion at "
                           "that step (catalog is_ar of its node)"},
        "data": {"resolution_deg": args.resolution_deg, "steps_per_store": args.steps,
                 "train_seeds": train_seeds, "heldout_seed": args.heldout_seed,
                 "grid": list(held["ivt"].shape[1:]),
                 "train_steps_total": int(ivt.shape[0]),
                 "train_positive_fraction": float(labels.mean()),
                 "heldout_positive_fraction": float(truth.mean())},
        "training": {"iterations": args.iterations, "batch": args.batch, "patch": PATCH,
                     "patches_seen": args.iterations * args.batch,
                     "epochs_equivalent": args.iterations * args.batch * PATCH * PATCH
                     / float(ivt.size),
                     "optimizer": "Adam + OneCycle", "lr": args.lr, "seed": args.seed,
                     "loss": "BCE(pos_weight) + soft Dice", "threads": 2,
                     "seconds": round(train_seconds, 1)},
        "metrics": {"heldout_iou": round(iou_all, 4),
                    "heldout_mean_step_iou": round(float(np.mean(per_step)), 4),
                    "train_subset_iou": round(train_iou, 4),
                    "threshold_only_iou": round(thr_iou, 4),
                    "onnxruntime_vs_torch_max_abs_diff": max_diff,
                    "heldout_inference_seconds": round(infer_seconds, 1)},
        "timing_seconds": {"data": round(data_seconds, 1), "train": round(train_seconds, 1),
                           "total": round(time.time() - t_start, 1)},
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "numpy": np.__version__,
                        "onnxruntime": __import__("onnxruntime").__version__,
                        "onnx": __import__("onnx").__version__},
    }
    (MODELS / "ar_unet.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {out} ({out.stat().st_size} bytes, sha256 {digest}) and "
        f"{MODELS / 'ar_unet.json'}")
    log(f"IoU {iou_all:.4f}")


if __name__ == "__main__":
    main()
