"""A sweep over generated architectures: generate, prune, compile and check N models on each target.

    .venv/bin/python bench/fuzz.py --models 500 --seed 1000 --targets host,arm64-linux,vulkan \
        --out bench/results/fuzz

Model i is `spattern.testing.archgen.generate(seed + i)`, pruned as `spattern.testing.corpus.prepare` chooses
(patterns only or connectivity 0.5; every fifth through the real spattern.prune with a very short config, the
others with random_plan_for). Each (model, target) is judged by `spattern.testing.corpus.judge`: pass (max abs
error <= 1e-4 x max |output|), refused (a spattern.errors exception on purpose) or fail.

Output, under --out:
- `fuzz-s{seed}-n{N}.tsv`: one row per (model, target), flushed as it is written, so a killed sweep leaves its table
  (seed, mode, blocks, target, result, error, seconds, fallbacks: the compile's layers off the fast path, as
  path:reason=count separated by ';');
- `repro/s{model_seed}/`: per failing model, error.txt (every failing target's error), plan.json and
  model.safetensors (the pruned model), and repro.sh, the one line that reruns that model alone;
- at the end, a summary (per target: pass / refused / fail / timeout, the fallback counts per path and reason,
  and the distinct failures) printed and
  written to `fuzz-s{seed}-n{N}-summary.txt`.

Each model runs in a forked child with a timeout (--timeout, default 600 s for all its targets), so one hang only
marks that model "timeout" and the sweep goes on; --jobs N keeps N children at once (rows then arrive out of seed
order). The children import spattern afresh from this tree, so run a long
sweep from a copy of the tree (git archive) if you edit the tree meanwhile.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ("seed", "mode", "blocks", "target", "result", "error", "seconds", "fallbacks")


def _one_line(text: str, limit: int = 400) -> str:
    return " ".join(text.split())[:limit]


def _child(seed: int, targets: list[str], conn, repro_dir: str | None) -> None:
    """Runs one model on every target, sending (target, result, error, seconds, fallbacks) per target, then
    "done"."""
    import torch

    torch.set_num_threads(1)
    from spattern.runtime.runners import target_availability
    from spattern.testing.archgen import generate
    from spattern.testing.corpus import Outcome, default_choice, prepare, run_case

    t0 = time.perf_counter()
    try:
        mode, pruner, block = default_choice(seed)
        conn.send(("meta", f"{mode}/{pruner}" + (f"/fb{block}" if block != 1 else ""), generate(seed).description))
        case = prepare(seed)
    except Exception as e:  # noqa: BLE001 -- generation or pruning failing is a finding too
        for t in targets:
            conn.send((t, "fail", f"prepare: {type(e).__name__}: {_one_line(str(e))}", time.perf_counter() - t0,
                       ""))
        conn.send("done")
        return
    failures = []
    for target in targets:
        a = target_availability(target)
        if not a.runs_here:
            conn.send((target, "skipped", _one_line(a.reason), 0.0, ""))
            continue
        o: Outcome = run_case(case, target)
        conn.send((target, o.result, _one_line(o.error), o.seconds, _fallback_text(o.fallbacks)))
        if o.result == "fail":
            failures.append((target, o.error))
    if failures and repro_dir:
        _write_reproducer(Path(repro_dir) / f"s{seed}", case, failures)
    conn.send("done")


def _write_reproducer(folder: Path, case, failures: list[tuple[str, str]]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    case.plan.save(folder)
    save_file({k: v.contiguous() for k, v in case.model.state_dict().items()}, str(folder / "model.safetensors"))
    lines = [f"seed {case.gen.seed} ({case.label}): {case.gen.description}", ""]
    for target, error in failures:
        lines += [f"[{target}]", error, ""]
    (folder / "error.txt").write_text("\n".join(lines))
    targets = ",".join(t for t, _ in failures)
    (folder / "repro.sh").write_text(
        f"# the generator is deterministic: from the repository root, this reruns model {case.gen.seed} alone\n"
        f".venv/bin/python bench/fuzz.py --models 1 --seed {case.gen.seed} --targets {targets} --out /tmp/fuzz\n")


class ModelRun:
    """One model in a forked child with a deadline; `handle(msg)` turns the child's messages into rows, and
    `finish()` yields a row for every target the child never reported (timeout or death)."""

    def __init__(self, seed: int, targets: list[str], timeout: float, repro_dir: str | None) -> None:
        ctx = mp.get_context("fork")
        self.seed, self.targets, self.timeout = seed, targets, timeout
        self.conn, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child, args=(seed, targets, child, repro_dir), daemon=True)
        self.proc.start()
        child.close()
        self.deadline = time.monotonic() + timeout
        self.mode, self.blocks, self.seen = "?", "?", set()
        self.t_last = time.perf_counter()
        self.done = False

    def handle(self) -> list[tuple]:
        """Reads one message (the caller saw the pipe ready); a finished child sets `done`."""
        try:
            msg = self.conn.recv()
        except EOFError:
            self.done = True
            return []
        if msg == "done":
            self.done = True
            return []
        if msg[0] == "meta":
            self.mode, self.blocks = msg[1], msg[2]
            return []
        self.seen.add(msg[0])
        self.t_last = time.perf_counter()
        return [(self.mode, self.blocks) + tuple(msg)]

    def finish(self) -> list[tuple]:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()
        rows = []
        for target in self.targets:
            if target not in self.seen:
                what = "timeout" if self.proc.exitcode in (None, -9) and time.monotonic() >= self.deadline \
                    else "fail"
                why = f"no result within the model's {self.timeout:.0f} s" if what == "timeout" else \
                    f"the child died (exit code {self.proc.exitcode})"
                rows.append((self.mode, self.blocks, target, what, why, time.perf_counter() - self.t_last, ""))
        return rows


def run_models(seeds: list[int], targets: list[str], timeout: float, repro_dir: str | None, jobs: int = 1):
    """Yields (seed, (mode, blocks, target, result, error, seconds, fallbacks)) for every model, with up to `jobs`
    children at once; all forks happen in this (single-threaded) process."""
    from multiprocessing.connection import wait

    pending, live = list(seeds), {}
    while pending or live:
        while pending and len(live) < jobs:
            run = ModelRun(pending.pop(0), targets, timeout, repro_dir)
            live[run.conn] = run
        soonest = min(r.deadline for r in live.values()) - time.monotonic()
        for conn in wait(list(live), timeout=max(0.0, soonest)):
            run = live[conn]
            for row in run.handle():
                yield run.seed, row
        for conn, run in list(live.items()):
            if run.done or time.monotonic() >= run.deadline:
                for row in run.finish():
                    yield run.seed, row
                del live[conn]


def _fallback_text(counts: dict | None) -> str:
    """{path: {reason: n}} as "path:reason=n;..." for one table cell."""
    return ";".join(f"{path}:{reason}={n}" for path, reasons in (counts or {}).items()
                    for reason, n in reasons.items()).replace("\t", " ")


def _signature(error: str) -> str:
    """A failure with its numbers and names blurred, to count distinct failures."""
    s = re.sub(r"0x[0-9a-f]+", "X", error)
    s = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", s)
    s = re.sub(r"'[^']*'", "'_'", s)
    return s[:160]


def summarize(rows: list[dict[str, str]]) -> str:
    per_target: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    distinct: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for r in rows:
        per_target[r["target"]][r["result"]] += 1
        if r["result"] in ("fail", "timeout", "refused"):
            distinct[(r["result"], _signature(r["error"]))].append(f"{r['seed']}@{r['target']}")
    models = len({r["seed"] for r in rows})
    out = [f"{models} models"]
    for target, c in per_target.items():
        out.append(f"  {target:12s} " + "  ".join(f"{k} {c[k]}" for k in ("pass", "refused", "fail", "timeout",
                                                                             "skipped") if c[k]))
    fallbacks: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in rows:
        for item in filter(None, r.get("fallbacks", "").split(";")):
            key, _, n = item.rpartition("=")
            fallbacks[r["target"]][key] += int(n)
    for target, c in fallbacks.items():
        out.append(f"  fallbacks on {target} (layers; path:reason):")
        out += [f"    {n:5d}  {key}" for key, n in c.most_common()]
    out.append(f"distinct non-passes: {len(distinct)}")
    for (result, sig), where in sorted(distinct.items(), key=lambda kv: -len(kv[1])):
        out.append(f"  [{result}] x{len(where)} ({', '.join(where[:6])}{' ...' if len(where) > 6 else ''}): {sig}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="first model's generator seed (models use seed..seed+N-1)")
    ap.add_argument("--targets", default="host", help="comma-separated targets (host, arm64-linux, vulkan, ...)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per model, all its targets together")
    ap.add_argument("--no-repro", action="store_true", help="do not keep failing models")
    ap.add_argument("--jobs", type=int, default=1, help="models checked at once (one forked child each)")
    args = ap.parse_args(argv)
    # lavapipe compiles every SPIR-V pipeline with LLVM at load: without its optimization passes that is ~3.6x
    # faster on a cold shader cache (tests/conftest.py does the same); it does not change what the module computes.
    os.environ.setdefault("GALLIVM_PERF", "nopt")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"fuzz-s{args.seed}-n{args.models}"
    table = args.out / f"{stem}.tsv"
    repro = None if args.no_repro else str(args.out / "repro")
    rows: list[dict[str, str]] = []
    with open(table, "w", buffering=1) as f:
        f.write("\t".join(COLUMNS) + "\n")
        f.flush()
        seeds = [args.seed + i for i in range(args.models)]
        runs = run_models(seeds, targets, args.timeout, repro, jobs=max(1, args.jobs))
        for seed, (mode, blocks, target, result, error, seconds, fallbacks) in runs:
            row = dict(seed=str(seed), mode=mode, blocks=blocks, target=target, result=result,
                       error=error.replace("\t", " "), seconds=f"{seconds:.1f}", fallbacks=fallbacks)
            rows.append(row)
            f.write("\t".join(row[c] for c in COLUMNS) + "\n")
            f.flush()
            os.fsync(f.fileno())
            print(f"{seed:6d} {target:12s} {result:8s} {seconds:6.1f}s {blocks[:70]}"
                  + (f"\n       {error[:300]}" if result != "pass" else ""), flush=True)
    summary = summarize(rows)
    (args.out / f"{stem}-summary.txt").write_text(summary + "\n")
    print(summary)
    return 0 if all(r["result"] in ("pass", "refused", "skipped") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
