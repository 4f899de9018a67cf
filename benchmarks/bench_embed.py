"""Embedding benchmark: `galdb embed` throughput against the bare model, and its peak memory.

What is measured, in one run:

1. Throughput ratio. For ``timm:resnet18`` at 64 px and ``timm:convnext_nano`` at 224 px
   (Zoobot's architecture and input size), batch size 64, ``torch.get_num_threads()``
   threads: the bare model's forward images/s on pre-built, pre-processed tensors held in
   memory (``model(batch)`` under ``torch.inference_mode``), and ``galdb.lvm.embed.embed()``
   images/s (its own ``EmbedSummary`` timing: read from PostgreSQL, read FITS, preprocess,
   forward, binary COPY) with DataLoader ``workers`` 0, 1 and 2, each on a fresh release of
   the same images so the same model embeds new galaxies; each twice: with reading and
   writing overlapping the forward pass (``overlap=True``, the default) and, as the
   reference, in turn (``overlap=False``, the loop before the overlap). The bare forward pass
   is timed again just before every embed run, and each ratio embed / bare uses that
   adjacent timing, so a change of machine load between runs moves both. Every variant is
   timed ``--repeats`` times (which variant goes first alternates); the medians are reported
   with the range of the ratio. An untimed embed of
   the first release comes first: it warms the model up and builds the HNSW index, so every
   timed run inserts into an indexed partition alike. Printed: images/s and the ratio
   embed / bare (issue target >= 0.9). ``--convnext-images 0`` skips convnext_nano.
   Also the CPU time per image, all threads: of the bare forward pass, and of each embed
   run in this process (with its DataLoader workers) and in the PostgreSQL server (storing
   the rows and inserting them into the HNSW index). Their ratio is the ceiling of embed /
   bare on a machine whose cores the forward pass already keeps busy (a CPU-only one):
   whatever else embed does takes cores from the forward pass there.
2. Peak memory. ``python -m galdb embed --model timm:resnet10t --input-size 32 --workers 1``
   as a subprocess on a small and a big release; peak RSS summed over the process tree
   (psutil, polled every 0.2 s) and ``ru_maxrss`` from ``os.wait4`` (largest single process
   of that run). Printed: both, and the ratio big / small (target: flat, ratio ~1).

Data: ``simulate_release`` makes a few hundred 64 px cutouts once; every release is then a
catalog CSV (source_id, ra, dec, file) whose ``file`` column points, repeatedly, at those
cutouts with unique source ids, ingested with ``galdb.ingest.ingest``. That keeps a 100k
release cheap to make (no 100k simulations), while embed still reads every file.

Run (from the repository root, in the virtualenv)::

    python benchmarks/bench_embed.py                       # 10k vs 100k memory
    python benchmarks/bench_embed.py --big 50000 --images 1000 --convnext-images 200

The machine is noisy: compare the figures of one run with each other (the ratios).
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import torch
from _common import Figures, ServerCpu, embedded_server, process_cpu

from galdb.db.connect import connect, database_url

BATCH = 64
_T0 = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cutouts", type=int, default=400, help="distinct simulated cutouts")
    p.add_argument("--images", type=int, default=1_500, help="images per resnet18 timing")
    p.add_argument("--convnext-images", type=int, default=300, help="per convnext timing")
    p.add_argument("--small", type=int, default=10_000, help="small release (memory)")
    p.add_argument("--big", type=int, default=100_000, help="big release (memory)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--repeats", type=int, default=3, help="timings of each variant (medians)")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--home", type=Path, help="galdb home, kept (default: fresh temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the temporary home at the end")
    p.add_argument("--json", type=Path, help="also write the headline figures here (run_all.py)")
    return p.parse_args()


# ---------------------------------------------------------------- data


def make_cutouts(home: Path, n: int) -> Path:
    """Simulate n cutouts once; return the folder holding ``cutouts/``."""
    from galdb.sim.simulate import simulate_release

    out = home / "sim"
    started = time.perf_counter()
    simulate_release(out, n, 0, size=64)
    say(f"simulated {n} cutouts in {time.perf_counter() - started:.1f} s")
    return out


def make_release(conn, sim: Path, name: str, n: int) -> tuple[int, float]:
    """Ingest a catalog of n rows cycling over the cutouts; return (release_id, seconds)."""
    from galdb.ingest import ingest
    from galdb.ingest.runs import release_id_of

    files = sorted(p.name for p in (sim / "cutouts").glob("*.fits"))
    catalog = sim / f"{name}.csv"
    with catalog.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["source_id", "ra", "dec", "file"])
        for i in range(n):
            out.writerow(
                [
                    f"{name}-{i:07d}",
                    150 + (i % 1000) * 1e-3,
                    2 + (i // 1000) * 1e-3,
                    f"cutouts/{files[i % len(files)]}",
                ]
            )
    started = time.perf_counter()
    summary = ingest(conn, sim, name, catalog=catalog)
    seconds = time.perf_counter() - started
    say(
        f"ingested {name}: {summary.inserted:,} rows in {seconds:.1f} s "
        f"({summary.quarantined} quarantined)"
    )
    return release_id_of(conn, name), seconds


# ---------------------------------------------------------------- throughput


def tensors_of(conn, url: str, loaded, release_id: int) -> list[torch.Tensor]:
    """The release's preprocessed input batches, built by galdb's own reader, in memory."""
    from galdb.lvm import registry
    from galdb.lvm.embed import MissingGalaxies

    record = registry.register(conn, loaded)
    xs = [x for _, x in MissingGalaxies(url, record, release_id, loaded.preprocessing)]
    return [torch.stack(xs[i : i + BATCH]) for i in range(0, len(xs), BATCH)]


def bare_rate(model: torch.nn.Module, batches: list[torch.Tensor]) -> tuple[float, float]:
    """Forward images/s on pre-built tensors (one warm-up batch first, not timed), and the
    CPU milliseconds per image it took (all threads)."""
    with torch.inference_mode():
        model(batches[0])
        started, cpu = time.perf_counter(), process_cpu()
        for batch in batches:
            model(batch).float().numpy()
        seconds, cpu = time.perf_counter() - started, process_cpu() - cpu
    images = sum(len(b) for b in batches)
    return images / seconds, 1000 * cpu / images


def throughput(
    conn, url: str, pgdata: Path, sim: Path, spec: str, size: int, n: int, workers, repeats: int
) -> list[dict]:
    from galdb.lvm.embed import embed
    from galdb.lvm.specs import load_model

    loaded = load_model(spec, input_size=size)
    tag = spec.split(":")[1]
    rid, _ = make_release(conn, sim, f"tp-{tag}-bare", n)
    batches = tensors_of(conn, url, loaded, rid)
    embed(conn, url, loaded, release_id=rid, batch_size=BATCH, workers=0)  # warm-up, index
    runs = []
    for r in range(repeats):
        for w in workers:
            # alternate which variant goes first, so a drift of the load favours neither
            for overlap in (False, True) if r % 2 == 0 else (True, False):
                label = f"{spec}@{size} embed workers={w} " + ("overlap" if overlap else "in turn")
                bare, bare_cpu = bare_rate(loaded.model, batches)
                name = f"tp-{tag}-r{r}-w{w}-{'o' if overlap else 't'}"
                rid, _ = make_release(conn, sim, name, n)
                client, server = process_cpu(), ServerCpu(pgdata)
                summary = embed(
                    conn, url, loaded, release_id=rid, batch_size=BATCH, workers=w, overlap=overlap
                )
                client, server = process_cpu() - client, server.read()
                rate = summary.images_per_second
                say(
                    f"{label} (repeat {r + 1}/{repeats}): {rate:,.1f} images/s, bare forward "
                    f"just before {bare:,.1f}: {rate / bare:.2f} ({summary.embedded} embedded, "
                    f"{len(summary.failed)} failed)"
                )
                runs.append(
                    dict(
                        what=label,
                        spec=f"{spec}@{size}",
                        workers=w,
                        overlap=overlap,
                        n=summary.embedded,
                        rate=rate,
                        bare=bare,
                        ratio=rate / bare,
                        bare_cpu=bare_cpu,
                        client_cpu=1000 * client / max(summary.embedded, 1),
                        server_cpu=1000 * server / max(summary.embedded, 1),
                    )
                )
    return summarise(runs)


def summarise(runs: list[dict]) -> list[dict]:
    """One row per model, workers and variant: medians over the repeats, and the ratio range."""
    rows = []
    for what in dict.fromkeys(r["what"] for r in runs):
        same = [r for r in runs if r["what"] == what]
        ratios = [r["ratio"] for r in same]
        rows.append(
            {
                **same[0],
                "n": sum(r["n"] for r in same),
                "rate": statistics.median(r["rate"] for r in same),
                "bare": statistics.median(r["bare"] for r in same),
                "ratio": statistics.median(ratios),
                **{
                    key: statistics.median(r[key] for r in same)
                    for key in ("bare_cpu", "client_cpu", "server_cpu")
                },
                "low": min(ratios),
                "high": max(ratios),
                "repeats": len(same),
            }
        )
    return rows


# ---------------------------------------------------------------- memory


def peak_memory(home: Path, release: str) -> dict:
    """Run `galdb embed` as a subprocess; peak summed tree RSS and wait4 ru_maxrss (MiB)."""
    cmd = [
        sys.executable,
        "-m",
        "galdb",
        "embed",
        "--model",
        "timm:resnet10t",
        "--input-size",
        "32",
        "--release",
        release,
        "--workers",
        "1",
    ]
    env = {**os.environ, "GALDB_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0]
    poller = threading.Thread(target=_poll, args=(proc.pid, peak), daemon=True)
    poller.start()
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    poller.join()
    seconds = time.perf_counter() - started
    last = output.strip().splitlines()[-1] if output.strip() else ""
    say(
        f"embed {release}: rc {proc.returncode}, {seconds:.1f} s, tree peak "
        f"{peak[0] / 2**20:,.0f} MiB, ru_maxrss {usage.ru_maxrss / 1024:,.0f} MiB | {last}"
    )
    return dict(
        release=release,
        seconds=seconds,
        tree=peak[0] / 2**20,
        maxrss=usage.ru_maxrss / 1024,
        rc=proc.returncode,
    )


def _poll(pid: int, peak: list[int]) -> None:
    try:
        root = psutil.Process(pid)
        while root.is_running() and root.status() != psutil.STATUS_ZOMBIE:
            peak[0] = max(peak[0], _tree_rss(root))
            time.sleep(0.2)
    except psutil.NoSuchProcess:
        pass


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def memory(conn, home: Path, sim: Path, small: int, big: int) -> list[dict]:
    rows = []
    for n in (small, big):
        name = f"mem-{n}"
        _, seconds = make_release(conn, sim, name, n)
        rows.append({**peak_memory(home, name), "n": n, "ingest": seconds})
    return rows


# ---------------------------------------------------------------- report


def report(tp: list[dict], mem: list[dict]) -> None:
    print(f"\n$ {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {BATCH}, "
        f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if tp:
        print("medians over the repeats; '/ bare' is the median of embed / adjacent bare timing")
        print(
            f"{'throughput':<52}{'images':>8}{'images/s':>10}{'bare':>9}{'/ bare':>8}{'range':>13}"
        )
        for r in tp:
            print(
                f"{r['what']:<52}{r['n']:>8,}{r['rate']:>10,.1f}{r['bare']:>9,.1f}"
                f"{r['ratio']:>8.2f}{r['low']:>7.2f}-{r['high']:.2f}"
            )
        best = max((r["ratio"] for r in tp if r["overlap"]), default=0)
        print(f"target embed/bare >= 0.9: best ratio with overlap {best:.2f}")
        print(
            "CPU ms per image (all threads; medians): bare forward, embed in this process "
            "(reading, preprocessing, forward, COPY) and in the server (the rows and their "
            "HNSW index); ceiling = bare / (process + server), the best embed/bare a machine "
            "whose cores are all busy with the forward pass can reach"
        )
        for r in tp:
            print(
                f"{r['what']:<52}{r['bare_cpu']:>7.2f} bare{r['client_cpu']:>7.2f} process"
                f"{r['server_cpu']:>7.2f} server  ceiling {ceiling(r):.2f}"
            )
    if mem:
        print(
            f"{'memory (galdb embed resnet10t@32)':<36}{'galaxies':>9}{'seconds':>9}"
            f"{'tree peak MiB':>15}{'ru_maxrss MiB':>15}"
        )
        for r in mem:
            print(
                f"{r['release']:<36}{r['n']:>9,}{r['seconds']:>9.1f}{r['tree']:>15,.0f}"
                f"{r['maxrss']:>15,.0f}"
            )
        if len(mem) == 2:
            small, big = mem
            print(
                f"big/small ({big['n'] / small['n']:.0f}x galaxies): tree peak "
                f"{big['tree'] / small['tree']:.2f}x, ru_maxrss "
                f"{big['maxrss'] / small['maxrss']:.2f}x (target: flat, ~1.0)"
            )


def ceiling(r: dict) -> float:
    """bare CPU / embed CPU per image: the embed/bare ratio reachable when CPU-bound."""
    return r["bare_cpu"] / max(r["client_cpu"] + r["server_cpu"], 1e-9)


def figures(tp: list[dict], mem: list[dict]) -> Figures:
    """Headline figures: embed/bare per model and workers (reference: the loop in turn)."""
    out = Figures("bench_embed.py")
    turn = {(r["spec"], r["workers"]): r["ratio"] for r in tp if not r["overlap"]}
    for r in tp:
        if r["overlap"]:
            out.add(
                f"{r['spec']} embed / bare forward, workers={r['workers']}",
                r["ratio"],
                "x bare",
                target=0.9,
                reference=turn.get((r["spec"], r["workers"])),
                reference_name="same, reading and writing in turn (overlap=False)",
                note=f"median of {r['repeats']}, range {r['low']:.2f}-{r['high']:.2f}; "
                f"{r['rate']:,.1f} images/s, bare {r['bare']:,.1f}",
            )
            out.add(
                f"{r['spec']} embed CPU ceiling (bare CPU / embed CPU), workers={r['workers']}",
                ceiling(r),
                "x bare",
                note=f"CPU ms per image: bare {r['bare_cpu']:.2f}, embed process "
                f"{r['client_cpu']:.2f} + server {r['server_cpu']:.2f}",
            )
    if len(mem) == 2:
        small, big = mem
        out.add(
            f"embed peak memory, {big['n']:,} galaxies (process tree)",
            big["tree"],
            "MiB",
            better="lower",
            reference=small["tree"],
            reference_name=f"same for {small['n']:,} galaxies (target: ratio ~1, flat)",
        )
    return out


def main() -> None:
    args = parse_args()
    with embedded_server(args.home, args.keep) as settings, connect(settings) as conn:
        home, url = settings.home, database_url(settings)
        sim = make_cutouts(home, args.cutouts)
        tp, mem = [], []
        if not args.skip_throughput:
            tp += throughput(
                conn,
                url,
                settings.pgdata,
                sim,
                "timm:resnet18",
                64,
                args.images,
                args.workers,
                args.repeats,
            )
            if args.convnext_images:
                tp += throughput(
                    conn,
                    url,
                    settings.pgdata,
                    sim,
                    "timm:convnext_nano",
                    224,
                    args.convnext_images,
                    args.workers,
                    args.repeats,
                )
        if not args.skip_memory:
            mem = memory(conn, home, sim, args.small, args.big)
        report(tp, mem)
    figures(tp, mem).write(args.json)


if __name__ == "__main__":
    main()
