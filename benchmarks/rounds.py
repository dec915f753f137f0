"""Whole commands timed in interleaved rounds: the way every figure of BENCHMARKS.md
that compares two programs (or two settings) is taken on a shared machine.

    python benchmarks/rounds.py --rounds 3 \\
        --cmd v1='vaelab train --model vae-tuned --epochs 1 --out {tmp}/v1' \\
        --cmd v3='vaelab train --model vae-tuned --epochs 3 --out {tmp}/v3' \\
        --diff v=v3-v1 --ratio v/p

Each round runs every command once (the order rotates from round to round, so that no
command always runs first after a quiet spell); ``{tmp}`` is a fresh directory per round.
A command's time is its wall time from start to exit, start-up included; its CPU time
(user + system of the command and everything it waited for) is kept beside it as
``NAME.cpu``, the steadier figure when other jobs share the cores.  ``--diff
NAME=A-B`` is the per-round difference of two commands (T(3 epochs) - T(1 epoch): the
time of two epochs without start-up and data loading); ``--ratio X/Y`` the per-round
ratio of two such differences (or commands).  The report gives every round and the
median; ratios are paired (taken round by round), so a drift of the machine's speed
between rounds cancels.  ``--json FILE`` keeps the raw seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def machine() -> str:
    """The CPU (model name, family and model numbers: a VM may call Zen 3 and Zen 4 both
    "AMD EPYC") and its SIMD flags, for the report's first line."""
    model = platform.processor() or "unknown CPU"
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
                    if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        model = f"{info.get('model name', model)} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    except OSError:
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        have = set(text.split("flags", 1)[1].split("\n", 1)[0].split()) if "flags" in text else set()
        flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in have)
    except (OSError, IndexError):
        pass
    return f"{model} ({flags}), {os.cpu_count()} logical CPUs"


def parse_pairs(items: list[str], sep: str) -> dict[str, tuple[str, str]]:
    out = {}
    for item in items:
        name, _, expr = item.partition("=")
        a, _, b = expr.partition(sep)
        if not (name and a and b):
            raise SystemExit(f"expected NAME=A{sep}B, got {item!r}")
        out[name] = (a, b)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmd", action="append", default=[], metavar="NAME=COMMAND", help="a command (repeatable)")
    ap.add_argument("--diff", action="append", default=[], metavar="NAME=A-B")
    ap.add_argument("--ratio", action="append", default=[], metavar="X/Y", help="paired ratio of two diffs or commands")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the raw per-round seconds here")
    args = ap.parse_args(argv)
    cmds = {}
    for item in args.cmd:
        name, _, command = item.partition("=")
        cmds[name] = command
    diffs = parse_pairs(args.diff, "-")
    ratios = [tuple(r.split("/", 1)) for r in args.ratio]
    names = list(cmds)
    rounds: list[dict[str, float]] = []
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        tmp = Path(tempfile.mkdtemp(prefix="vaelab-rounds-"))
        secs: dict[str, float] = {}
        try:
            for name in order:
                cmd = cmds[name].format(tmp=tmp)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.monotonic()
                done = subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                secs[name] = time.monotonic() - t0
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                secs[f"{name}.cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                if done.returncode != 0:
                    print(f"round {rnd + 1}: {name} failed ({done.returncode}): {done.stderr[-2000:]}", file=sys.stderr)
                    return 1
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for name, (a, b) in diffs.items():
            secs[name] = secs[a] - secs[b]
            secs[f"{name}.cpu"] = secs[f"{a}.cpu"] - secs[f"{b}.cpu"]
        for x, y in ratios:
            secs[f"{x}/{y}"] = secs[x] / secs[y]
            secs[f"{x}/{y}.cpu"] = secs[f"{x}.cpu"] / secs[f"{y}.cpu"]
        rounds.append(secs)
        if args.json:  # after every round, so that a run cut short keeps what it measured
            Path(args.json).write_text(json.dumps({"machine": machine(), "commands": cmds, "rounds": rounds}, indent=1))
        shown = "  ".join(f"{k} {v:.3f}" if "/" in k else f"{k} {v:.1f}s" for k, v in secs.items()
                          if not k.endswith(".cpu"))
        print(f"round {rnd + 1}: {shown}  (load {os.getloadavg()[0]:.1f})", flush=True)
    print("median over rounds:")
    for key in rounds[0]:
        vals = [r[key] for r in rounds]
        unit = "" if "/" in key else " s"
        print(f"  {key:>12s}  {statistics.median(vals):9.3f}{unit}   (rounds: {', '.join(f'{v:.3f}' for v in vals)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
