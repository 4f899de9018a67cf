"""Run every benchmark and write benchmarks/RESULTS.md: figures, targets, ratios, machine, date.

Each ``bench_*.py`` runs as a subprocess from the repository root with ``--json``; its
headline figures (recorded with ``_common.Figures``) are collected into one Markdown file: a
table per script (figure, value, unit, target, met?, reference measured in the same run and
the ratio), the exact command, how long it took, the machine (CPU, load average before and
after), the date and the git commit, and which scripts failed or were skipped and why. A
script that exits with :data:`SKIP_STATUS` (e.g. ``bench_citus.py`` without Citus built) is
reported as skipped with the reason it printed last. The ``eval_*`` scripts need the real
labelled sets and a pretrained checkpoint, or train models for a long time; they are listed
with that reason and not run.

    python benchmarks/run_all.py                 # the sizes of the README (about 1.5 h)
    python benchmarks/run_all.py --quick         # small sizes: minutes; ratios, not targets
    python benchmarks/run_all.py --quick --only ingest,cone --out /tmp/RESULTS.md

In ``--quick`` runs the sizes are far below the ones the targets are set for (1M rows ...),
so "met?" reads against a smaller problem: the ratios are what to compare between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SKIP_STATUS = 77  # a script that cannot run on this machine exits with this (automake's SKIP)
WORK = "{work}"  # replaced by a fresh directory for the script


@dataclass(frozen=True)
class Plan:
    """How run_all runs one script: its arguments for a full and a quick run, or why not."""

    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    skip: str = ""  # non-empty: not run, for this reason


#: Full sizes are the README's; quick sizes keep each script to a minute or two on 2 CPUs.
PLANS: dict[str, Plan] = {
    "bench_ingest.py": Plan(("--n", "1000000"), ("--n", "100000")),
    "bench_cone.py": Plan(("--n", "1000000"), ("--n", "100000")),
    "bench_embed.py": Plan(
        ("--images", "1000", "--convnext-images", "300", "--small", "10000", "--big", "30000"),
        ("--images", "256", "--convnext-images", "0", "--cutouts", "100", "--repeats", "2")
        + ("--small", "500", "--big", "1500", "--workers", "0", "2"),
    ),
    "bench_knn.py": Plan(("--n", "300000"), ("--n", "20000", "--queries", "200")),
    "bench_propagate.py": Plan(("--n", "1000000"), ("--n", "50000", "--build-sample", "5000")),
    "bench_graph_build.py": Plan(
        ("--n", "1000000", "--pgvector-n", "1000000"), ("--n", "50000", "--pgvector-n", "10000")
    ),
    "bench_graph_append.py": Plan(
        ("--n", "300000", "--add", "10000"), ("--n", "20000", "--add", "1000")
    ),
    "bench_pipeline.py": Plan(
        ("--n", "300000", "--add", "100000"), ("--n", "3000", "--add", "1000")
    ),
    "bench_lineage.py": Plan(("--n", "1000000"), ("--n", "20000", "--sample", "500")),
    "bench_heads.py": Plan(("--n", "1000000"), ("--n", "50000")),
    "bench_sql.py": Plan((), ("--quick",)),
    "bench_review.py": Plan(
        ("--n", "1000000", "--reviewers", "8", "--seconds", "30"),
        ("--n", "20000", "--reviewers", "2", "--seconds", "5", "--n-retrain", "2000"),
    ),
    "bench_citus.py": Plan(
        ("--n", "300000", "--dim", "128", "--shards", "4"),
        ("--n", "20000", "--dim", "64", "--shards", "4"),
    ),
    "bench_restoration.py": Plan(("--n", "512", "--model", "timm:resnet18"), ("--n", "64")),
    "bench_detection.py": Plan(
        ("--work", WORK, "--n", "100", "--steps", "20"),
        ("--work", WORK, "--n", "10", "--steps", "5"),
    ),
}
_NEEDS_REAL = (
    "needs the real labelled sets ingested under --home (../shared/data/real) and a pretrained "
    "checkpoint; run it alone with the command in benchmarks/README.md"
)
_TRAINS = (
    "trains models on simulated data for 10 minutes to an hour on 2 CPUs and does not record "
    "Figures; run it alone with the command in benchmarks/README.md"
)
SKIPPED_EVALS = {
    "eval_fewshot.py": _NEEDS_REAL,
    "eval_finetune.py": _NEEDS_REAL,
    "eval_pretrain_methods.py": _NEEDS_REAL,
    "eval_recipes.py": _NEEDS_REAL,
    "eval_domain_gap.py": _NEEDS_REAL,
    "eval_ssl_probe.py": _NEEDS_REAL,
    "eval_votes.py": _NEEDS_REAL,
    "eval_detection.py": _TRAINS,
    "eval_parameters.py": _TRAINS,
    "eval_restoration.py": _TRAINS,
}


@dataclass
class Outcome:
    """One script's run: status ("ok", "failed", "skipped", "no figures"), figures, why."""

    script: str
    status: str
    command: str = ""
    seconds: float = 0.0
    figures: list[dict] = field(default_factory=list)
    reason: str = ""
    log: str = ""


def scripts(only: list[str] | None) -> list[str]:
    """Every benchmark and eval script, or those ``only`` names (``ingest``, ``bench_knn.py``)."""
    found = sorted(p.name for p in HERE.glob("bench_*.py")) + sorted(
        p.name for p in HERE.glob("eval_*.py")
    )
    if not only:
        return found
    chosen = []
    for name in only:
        stem = name.removesuffix(".py")
        matches = [
            f for f in found if f.removesuffix(".py") in (stem, f"bench_{stem}", f"eval_{stem}")
        ]
        if not matches:
            raise SystemExit(f"--only: no benchmark {name!r} (known: {', '.join(found)})")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def records_figures(script: str) -> bool:
    """Whether the script writes ``--json`` figures (it uses ``_common.Figures``)."""
    return "Figures(" in (HERE / script).read_text()


def run_script(
    script: str, quick: bool, timeout: float, logs: Path, given: tuple[str, ...] | None = None
) -> Outcome:
    """Run one script as a subprocess and collect its figures (``given``: its arguments)."""
    if script in SKIPPED_EVALS:
        return Outcome(script, "skipped", reason=SKIPPED_EVALS[script])
    plan = PLANS.get(script)
    if plan is None:
        return Outcome(
            script, "skipped", reason="run_all.py has no plan for it yet (add one to PLANS)"
        )
    if plan.skip:
        return Outcome(script, "skipped", reason=plan.skip)
    work = Path(tempfile.mkdtemp(prefix=f"galdb-runall-{script.removesuffix('.py')}-"))
    chosen = given if given is not None else (plan.quick if quick else plan.full)
    args = [a.replace(WORK, str(work)) for a in chosen]
    figures_path = work / "figures.json"
    with_json = records_figures(script)
    cmd = [sys.executable, f"benchmarks/{script}", *args]
    if with_json:
        cmd += ["--json", str(figures_path)]
    shown = shlex.join(["python", f"benchmarks/{script}", *args])
    log_path = logs / f"{script.removesuffix('.py')}.log"
    print(f"[run_all] {shown}", flush=True)
    started = time.perf_counter()
    with log_path.open("w") as log:
        try:
            proc = subprocess.run(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
    seconds = time.perf_counter() - started
    tail = log_path.read_text(errors="replace").strip().splitlines()
    out = Outcome(script, "ok", shown, seconds, log=str(log_path))
    if rc is None:
        out.status, out.reason = "failed", f"killed after the {timeout:.0f} s limit"
    elif rc == SKIP_STATUS:
        out.status, out.reason = "skipped", (tail[-1] if tail else "exit status 77")
    elif rc != 0:
        out.status, out.reason = "failed", f"exit status {rc}: {tail[-1] if tail else ''}"
    elif not with_json:
        out.status, out.reason = "no figures", "ran (exit 0), but records no Figures yet"
    elif not figures_path.exists():
        out.status, out.reason = "failed", "exit 0 but no figures were written"
    else:
        out.figures = json.loads(figures_path.read_text())["figures"]
    print(f"[run_all] {script}: {out.status} in {seconds:.0f} s {out.reason}", flush=True)
    return out


# ---------------------------------------------------------------- the report


def machine() -> dict[str, str]:
    """What the figures depend on: CPU, count, memory, Python, torch, load (now)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return dict(
        cpu=f"{cpu}, {os.cpu_count()} CPUs" + (f", {mem} memory" if mem else ""),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()}",
    )


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def git_commit() -> str:
    def git(*a: str) -> str:
        return subprocess.run(
            ["git", *a], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" (with uncommitted changes)" if dirty else "")


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def _met(fig: dict) -> str:
    if fig.get("met") is None:
        return ""
    return "yes" if fig["met"] else "**no**"


def _target(fig: dict) -> str:
    if fig.get("target") is None:
        return ""
    sign = ">=" if fig.get("better", "higher") == "higher" else "<="
    return f"{sign} {_num(fig['target'])}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(outcomes: list[Outcome], quick: bool, started: dict, finished: dict) -> str:
    """The Markdown of RESULTS.md."""
    mode = "small sizes" if quick else "the README's sizes"
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python benchmarks/run_all.py{' --quick' if quick else ''}` ({mode}).",
        "Every ratio is against a reference measured in the same run of the same script, so",
        "it is what to compare on a shared, noisy machine; absolute figures move with the load.",
        "",
        f"- date: {started['date']} to {finished['date']} (UTC)",
        f"- git commit: {started['commit']}",
        f"- machine: {started['machine']['cpu']}; {started['machine']['system']}, "
        f"Python {started['machine']['python']}",
        f"- load average (1/5/15 min): {started['load']} at the start, "
        f"{finished['load']} at the end",
        "",
        "| script | status | seconds | figures |",
        "|---|---|---:|---:|",
    ]
    for o in outcomes:
        lines.append(f"| `{o.script}` | {o.status} | {o.seconds:.0f} | {len(o.figures)} |")
    for o in outcomes:
        if o.status == "skipped" and not o.command:
            continue
        lines += ["", f"## {o.script}", "", f"`{o.command}` ({o.seconds:.0f} s)", ""]
        if o.reason:
            lines += [f"{o.status}: {_cell(o.reason)}", ""]
        if o.figures:
            lines += [
                "| figure | value | target | met? | reference (same run) | ratio |",
                "|---|---:|---:|---|---|---:|",
            ]
            for f in o.figures:
                ref = ""
                if f.get("reference") is not None:
                    ref = (
                        f"{_num(f['reference'], f['unit'])} ({_cell(f.get('reference_name', ''))})"
                    )
                ratio = f"{f['ratio']:.3g}x" if f.get("ratio") is not None else ""
                name = _cell(f["name"]) + (f" — {_cell(f['note'])}" if f.get("note") else "")
                lines.append(
                    f"| {name} | {_num(f['value'], f['unit'])} | {_target(f)} | {_met(f)} "
                    f"| {ref} | {ratio} |"
                )
    not_run = [o for o in outcomes if o.status != "ok"]
    if not_run:
        lines += ["", "## Failed, skipped or without figures", ""]
        lines += [f"- `{o.script}` ({o.status}): {_cell(o.reason)}" for o in not_run]
    return "\n".join(lines) + "\n"


def snapshot() -> dict:
    return dict(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        commit=git_commit(),
        machine=machine(),
        load=load(),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (minutes, not an hour)")
    p.add_argument("--only", help="comma-separated scripts, e.g. ingest,cone or bench_knn.py")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="the Markdown written")
    p.add_argument(
        "--timeout", type=float, help="seconds per script (default 900 quick, 7200 full)"
    )
    p.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="SCRIPT=ARGS",
        help='arguments instead of the plan\'s for one script, e.g. --args "ingest=--n 5000"',
    )
    args = p.parse_args(argv)
    timeout = args.timeout or (900 if args.quick else 7200)
    chosen = scripts([s.strip() for s in args.only.split(",")] if args.only else None)
    given = {}
    for item in args.args:
        name, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--args {item!r}: write SCRIPT=ARGS, e.g. ingest=--n 5000")
        given[scripts([name.strip()])[0]] = tuple(shlex.split(text))
    logs = Path(tempfile.mkdtemp(prefix="galdb-runall-logs-"))
    print(f"[run_all] {len(chosen)} scripts; logs in {logs}", flush=True)
    started = snapshot()
    outcomes = [run_script(s, args.quick, timeout, logs, given.get(s)) for s in chosen]
    args.out.write_text(render(outcomes, args.quick, started, snapshot()))
    print(f"[run_all] wrote {args.out}", flush=True)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
