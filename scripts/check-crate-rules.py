#!/usr/bin/env python3
"""Fails when the workspace disagrees with ARCHITECTURE.md: a crate missing from the crate map, a
workspace dependency the map does not allow, a dependency on the binary, or a heavy external crate
used outside the crates allowed to hold it. Reads `cargo metadata`; needs nothing but python3."""
import json
import re
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
text = (root / "ARCHITECTURE.md").read_text()


def table(heading):
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [l for l in section.splitlines() if l.startswith("|")][2:]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows]


def names(cell):
    return set(re.findall(r"`([^`]+)`", cell))


crate_map = {names(r[0]).pop(): (r[1], names(r[3])) for r in table("Crate map")}
heavy = {}
for row in table("Heavy dependencies"):
    for dep in names(row[0]):
        heavy[dep] = names(row[1])

meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=root))
members = {p["name"]: p for p in meta["packages"]}
binaries = {n for n, p in members.items() if any("bin" in t["kind"] for t in p["targets"])}

problems = []
for name, package in sorted(members.items()):
    if name not in crate_map:
        problems.append(f"{name}: not in the crate map of ARCHITECTURE.md")
        continue
    folder, allowed = crate_map[name]
    actual_folder = str(Path(package["manifest_path"]).parent.relative_to(root))
    if actual_folder != folder:
        problems.append(f"{name}: lives in {actual_folder}, the crate map says {folder}")
    for dep in package["dependencies"]:
        dep_name = dep["name"]
        if dep_name in members:
            if dep_name in binaries:
                problems.append(f"{name} depends on the binary crate {dep_name}")
            elif dep_name not in allowed:
                problems.append(f"{name} may not depend on {dep_name} (allowed: {', '.join(sorted(allowed)) or 'none'})")
        elif dep_name in heavy and name not in heavy[dep_name] and dep["kind"] != "dev":
            problems.append(f"{name} may not use {dep_name} (only {', '.join(sorted(heavy[dep_name]))})")
for name in sorted(set(crate_map) - set(members)):
    problems.append(f"{name}: in the crate map of ARCHITECTURE.md but not in the workspace")

if problems:
    print("crate rules violated:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"crate rules: {len(members)} crates match ARCHITECTURE.md")
