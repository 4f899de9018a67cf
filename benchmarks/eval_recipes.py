"""Pretraining recipes at equal CPU time, pretrained and probed on disjoint halves of the real sets.

Every real labelled set (GZ2 spiral, DECaLS rings, GZ1 parent class) is split in two by a
hash of its source id: release ``<set>-pre`` (pretraining only, labels unused) and
``<set>-eval`` (probing only), so no probed image was seen in pretraining. With ``--sims N``
the home also gets N GalSim cutouts (``galdb simulate``) as release ``sims``.

A row is ``method:arch[/patch]:data`` with method simclr, simsiam or masked (or ``random``:
the random-init floor, no pretraining; with ``--init SPEC`` every row starts from that model
instead, and ``random`` probes it as it is), a timm architecture (``/8``: a ViT built for the
input size with 8-px patches) and data ``real`` (the -pre releases) or ``real+sims[-NAME]``
(and the simulated release of that name). Each
row pretrains with ``galdb lvm pretrain``'s library call for the same ``--cpu-minutes`` of
this process's CPU time (all threads), embeds the -eval releases' cutouts (preprocessed
once, as `galdb embed` does, and kept in memory: the printed `galdb embed` + `galdb lvm
probe` commands give the same up to half-precision storage) and reports the
linear-probe AUC at 32, 100 and all labels (mean over ``--repeats`` label draws; macro
one-vs-rest over GZ1's parent classes). GZ2 probes train on its train split and test on its
validation split; rings and GZ1 use a stratified 80/20 split of the -eval release.

    python benchmarks/eval_recipes.py --home /work/galdb-recipes --cpu-minutes 6 --sims 2000 \\
        --rows simclr:resnet10t:real,masked:resnet10t:real,random:resnet10t:real

A finished row's checkpoint (``HOME/recipes/<row>.pt``, complete, same settings) is reused, so
a rerun continues where an interrupted one stopped.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _common import Figures, command_line, embedded_server, log, machine, parser

from galdb.db.connect import connect
from galdb.eval.probe import labelled_set, linear_probe
from galdb.ingest import Columns, ingest
from galdb.lvm.pixels import PixelRef, pixel_columns, read_pixels
from galdb.lvm.preprocess import Preprocessing, to_tensor
from galdb.lvm.pretrain import PretrainConfig, pretrain
from galdb.lvm.specs import load_model

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
DEFAULT_ROWS = (
    "simclr:resnet10t:real,simsiam:resnet10t:real,masked:resnet10t:real,"
    "simclr:convnext_atto:real,masked:vit_tiny_patch16_224/8:real,"
    "simclr:resnet10t:real+sims,random:resnet10t:real"
)


@dataclass(frozen=True)
class RealSet:
    name: str
    folder: str
    catalog: str
    id_column: str
    label: str
    survey: str
    split: str | None = None  # the set's own train/test column (GZ2)


SETS = (
    RealSet("gz2", "gz2_kaggle_spiral_binary", "labels.csv", "galaxy_id", "spiral", "SDSS",
            split="source_split"),
    RealSet("rings", "zoobot_gzdecals_rings", "catalog.csv", "iauname", "ring",
            "DESI Legacy Surveys"),
    RealSet("gz1", "gz1_sdss_6class", "labels.csv", "objid", "parent_class", "SDSS"),
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    method: str
    arch: str
    patch: int | None
    data: str
    init: str | None = None  # a model spec the backbone starts from (--init)

    @classmethod
    def parse(cls, text: str, init: str | None = None) -> Row:
        method, arch, data = text.split(":")
        arch, _, patch = arch.partition("/")
        if data != "real" and not data.startswith("real+sims"):
            raise SystemExit(f"row {text!r}: data must be real or real+sims[-NAME]")
        return cls(method, arch, int(patch) if patch else None, data, init)

    @property
    def name(self) -> str:
        patch = f"-p{self.patch}" if self.patch else ""
        start = "-from-" + re.sub(r"[^A-Za-z0-9]+", "-", self.init) if self.init else ""
        return f"{self.method}-{self.arch}{patch}-{self.data.replace('+', '-')}{start}"

    def label(self) -> str:
        patch = f"/{self.patch}" if self.patch else ""
        start = f" from {self.init}" if self.init else ""
        return f"{self.method}:{self.arch}{patch}:{self.data}{start}"


def in_pretrain_half(source_id: str, share: float) -> bool:
    """Deterministic split by a hash of the id: the same galaxy always lands in one half."""
    digest = hashlib.sha256(source_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def write_halves(real: RealSet, out: Path, share: float) -> dict[str, Path]:
    """The set's catalog as two CSVs (``-pre`` and ``-eval``), image paths made absolute."""
    root = REAL / real.folder
    with open(root / real.catalog, newline="") as f:
        rows = list(csv.DictReader(f))
    halves = {f"{real.name}-pre": [], f"{real.name}-eval": []}
    for row in rows:
        row["image_file"] = str(root / row["image_file"])
        pre = in_pretrain_half(row[real.id_column], share)
        halves[f"{real.name}-{'pre' if pre else 'eval'}"].append(row)
    paths = {}
    for release, part in halves.items():
        path = out / f"{release}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
        paths[release] = path
    return paths


def ensure_data(conn, home: Path, share: float, sims: dict[str, Path], n_sims: int) -> None:
    have = {r[0] for r in conn.execute("SELECT name FROM galdb.releases")}
    for real in SETS:
        for release, path in write_halves(real, home / "splits", share).items():
            if release not in have:
                s = ingest(conn, path, release, survey=real.survey,
                           columns=Columns(id=real.id_column))  # fmt: skip
                conn.commit()
                log(f"ingested {release}: {s.inserted} galaxies, {s.quarantined} quarantined")
    for release, out in sims.items():
        if release in have:
            continue
        t = time.perf_counter()
        if not (out / "catalog.csv").exists():  # written last: its presence means complete
            from galdb.sim import simulate_release

            simulate_release(out, n_sims, seed=11, size=64)
        s = ingest(conn, out, release, catalog=out / "catalog.csv", survey="galsim")
        conn.commit()
        log(f"{release}: {s.inserted} sims from {out} in {time.perf_counter() - t:.0f} s")


def pretrain_releases(row: Row) -> tuple[str, ...]:
    sims = (row.data.split("+")[1],) if "+" in row.data else ()
    return (*(f"{r.name}-pre" for r in SETS), *sims)


def config(row: Row, args) -> PretrainConfig:
    return PretrainConfig(
        arch=row.arch,
        method=row.method,
        patch_size=row.patch,
        input_size=args.input_size,
        batch_size=args.batch_size,
        epochs=10_000,
        minutes=10 * args.cpu_minutes,  # a wall cap far away: CPU time is the budget
        cpu_minutes=args.cpu_minutes,
        threads=args.threads,
        seed=args.seed,
        releases=pretrain_releases(row),
        init=row.init,
        checkpoint_minutes=60,
    )


def cli_command(row: Row, cfg: PretrainConfig | None, out: Path) -> str:
    """The `galdb` commands that make and probe this row's embeddings."""
    if cfg is None:
        crop = PretrainConfig().crop_fraction
        model = row.init or f"timm:{row.arch} --input-size 64 --crop {crop}"
        steps = []
    else:
        model = f"checkpoint:{out}"
        parts = ["galdb", "lvm", "pretrain", "--out", str(out), "--method", cfg.method]
        parts += ["--arch", cfg.arch, "--input-size", str(cfg.input_size)]
        parts += ["--batch-size", str(cfg.batch_size), "--cpu-minutes", str(cfg.cpu_minutes)]
        parts += ["--minutes", str(cfg.minutes), "--epochs", str(cfg.epochs)]
        if cfg.patch_size:
            parts += ["--patch-size", str(cfg.patch_size)]
        if cfg.init:
            parts += ["--init", cfg.init]
        for release in cfg.releases:
            parts += ["--release", release]
        steps = [shlex.join(parts)]
    for real in SETS:
        steps.append(f"galdb embed --model {model} --release {real.name}-eval")
    for real in SETS:
        split = f" --split {real.split} --test-value validation" if real.split else ""
        steps.append(
            f"galdb lvm probe -m {model.split()[0]} -r {real.name}-eval --label {real.label}{split}"
        )
    return " && ".join(steps)


def pretrained(conn, row: Row, cfg: PretrainConfig, out: Path) -> dict:
    """Pretrain the row (or reuse its complete checkpoint of the same settings)."""
    if out.exists():
        meta = torch.load(out, map_location="cpu", weights_only=True)["meta"]
        if meta.get("complete") and meta["config"] == cfg.to_dict():
            log(f"{row.label()}: reusing {out}")
            return meta
    t = time.perf_counter()
    s = pretrain(conn, cfg, out)
    log(
        f"{row.label()}: {s.steps} steps ({s.epochs} epochs of {s.images} cutouts) in "
        f"{s.cpu_seconds / 60:.2f} CPU-min, {s.seconds / 60:.2f} wall-min "
        f"({time.perf_counter() - t:.0f} s with loading); loss {s.losses[0]:.3f} -> "
        f"{s.losses[-1]:.3f}"
    )
    return torch.load(out, map_location="cpu", weights_only=True)["meta"]


@dataclass
class EvalImages:
    """One -eval release preprocessed once (every row uses the same preprocessing)."""

    images: torch.Tensor  # (N, C, S, S) float16, normalised
    labels: np.ndarray
    ids: np.ndarray
    splits: np.ndarray | None


def eval_images(conn, home: Path, prep: Preprocessing) -> dict[str, EvalImages]:
    """The -eval releases' labelled cutouts as model inputs, cached under ``home``: decoding
    the JPEGs again for every row would cost more CPU than a row's probe."""
    cache = home / f"eval-images-{prep.input_size}px-crop{prep.crop_fraction}.pt"
    if cache.exists():
        return {k: EvalImages(**v) for k, v in torch.load(cache, weights_only=False).items()}
    out = {}
    for real in SETS:
        rows = conn.execute(
            f"SELECT galaxy_id, props->>%s, props->>%s, {pixel_columns()} FROM galdb.catalog "
            "WHERE release = %s AND props ? %s ORDER BY galaxy_id",
            (real.label, real.split or "", f"{real.name}-eval", real.label),
        ).fetchall()
        refs = [PixelRef.from_row(r[3:]) for r in rows]
        images = torch.stack([to_tensor(read_pixels(ref), ref.bands, prep) for ref in refs])
        out[real.name] = EvalImages(
            images.half(),
            np.array([r[1] for r in rows]),
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows]) if real.split else None,
        )
        log(f"preprocessed {len(rows)} {real.name}-eval cutouts")
    torch.save({k: vars(v) for k, v in out.items()}, cache)
    return out


def probe(loaded, evals: dict[str, EvalImages], repeats: int) -> dict[str, tuple]:
    """Embed the -eval images with the frozen backbone; AUC at 32 / 100 / all labels."""
    model = loaded.model.eval()
    results = {}
    for real in SETS:
        e = evals[real.name]
        with torch.inference_mode():
            vectors = torch.cat(
                [model(e.images[i : i + 256].float()) for i in range(0, len(e.images), 256)]
            )
        test = "validation" if real.split else None
        data = labelled_set(vectors.float().numpy(), e.labels, e.ids, e.splits, "train", test)
        aucs = [linear_probe(data, n, repeats).auc_mean for n in (32, 100, None)]
        results[real.name] = (*aucs, int(data.train.sum()), int((~data.train).sum()))
    return results


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rows", default=DEFAULT_ROWS, help="method:arch[/patch]:data, ...")
    p.add_argument("--cpu-minutes", type=float, default=6.0, help="pretraining CPU time per row")
    p.add_argument("--sims", type=int, default=2000, help="GalSim cutouts for real+sims rows")
    p.add_argument(
        "--sims-dir",
        type=Path,
        help="an already simulated release (`galdb simulate DIR`) for the real+sims rows "
        "(default: HOME/<release>, simulated when missing)",
    )
    p.add_argument("--pretrain-share", type=float, default=0.5)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch threads while pretraining")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--init",
        help="a model spec every row starts from instead of random weights (galdb lvm pretrain "
        "--init), e.g. galdb:default; a random row then probes that model as it is",
    )
    args = p.parse_args()
    if args.home is None:
        raise SystemExit("--home is needed (the ingested halves and checkpoints are reused)")
    rows = [Row.parse(r, args.init) for r in args.rows.split(",")]
    sims = {
        r.data.split("+")[1]: args.sims_dir or args.home / r.data.split("+")[1]
        for r in rows
        if "+" in r.data
    }
    table, figures = [], Figures("eval_recipes")
    with embedded_server(args.home, keep=True) as settings, connect(settings) as conn:
        ensure_data(conn, args.home, args.pretrain_share, sims, args.sims)
        prep = Preprocessing(
            input_size=args.input_size, crop_fraction=PretrainConfig().crop_fraction
        )
        evals = eval_images(conn, args.home, prep)
        for row in rows:
            seed = f"-seed{args.seed}" if args.seed else ""
            out = args.home / "recipes" / f"{row.name}-{args.cpu_minutes:g}cpumin{seed}.pt"
            if row.method == "random":
                cfg, meta = None, {"steps": 0, "cpu_seconds": 0.0, "seconds": 0.0}
                loaded = load_model(row.init) if row.init else load_model(
                    f"timm:{row.arch}", input_size=args.input_size,
                    crop_fraction=PretrainConfig().crop_fraction)  # fmt: skip
            else:
                cfg = config(row, args)
                meta = pretrained(conn, row, cfg, out)
                loaded = load_model(f"checkpoint:{out}")
            t = time.perf_counter()
            if loaded.preprocessing != prep:
                raise SystemExit(f"{out}: preprocessing {loaded.preprocessing} is not {prep}")
            results = probe(loaded, evals, args.repeats)
            log(f"{row.label()}: embedded and probed in {time.perf_counter() - t:.0f} s")
            for name, (a32, a100, aall, n_train, n_test) in results.items():
                log(f"  {name}: AUC@32 {a32:.3f} @100 {a100:.3f} @all {aall:.3f} "
                    f"({n_train} train / {n_test} test)")  # fmt: skip
            table.append((row, meta, results, cli_command(row, cfg, out)))
    print(f"\n{command_line()}\n{machine()}")
    print(
        f"equal compute: {args.cpu_minutes:g} CPU-min of pretraining per row ({args.threads} "
        f"threads, {args.input_size} px, batch {args.batch_size}); pretrained on the -pre "
        f"halves (share {args.pretrain_share}), probed on the -eval halves; AUC = mean over "
        f"{args.repeats} label draws"
    )
    sets = [r.name for r in SETS]
    header = " | ".join(f"{s} @32 | {s} @100 | {s} @all" for s in sets)
    print(f"| recipe | steps | CPU-min | wall-min | {header} | mean @100 |")
    print("|---|---:|---:|---:|" + "---:|" * (3 * len(sets) + 1))
    floor = next((res for row, _, res, _ in table if row.method == "random"), None)
    for row, meta, results, _ in table:
        cells = " | ".join(f"{v:.3f}" for s in sets for v in results[s][:3])
        mean100 = sum(results[s][1] for s in sets) / len(sets)
        print(
            f"| {row.label()} | {meta['steps']} | {meta['cpu_seconds'] / 60:.2f} | "
            f"{meta['seconds'] / 60:.2f} | {cells} | {mean100:.3f} |"
        )
        figures.add(
            f"{row.label()} mean AUC@100 (gz2, rings, gz1)",
            mean100,
            "AUC",
            reference=sum(floor[s][1] for s in sets) / len(sets) if floor else None,
            reference_name=f"{args.init} as it is (the random row)"
            if args.init
            else "random init (the random row)",
        )
    print("\ncommands:")
    for row, _, _, command in table:
        print(f"- {row.label()}: `{command}`")
    figures.write(args.json)


if __name__ == "__main__":
    main()
