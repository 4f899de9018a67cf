"""benchmarks/run_all.py runs real benchmarks and writes RESULTS.md with their figures."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _citus_built() -> bool:
    spec = importlib.util.spec_from_file_location("build_citus", ROOT / "scripts/build_citus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.is_installed(module.cache_dir())


def test_quick_run_of_one_benchmark_writes_results(tmp_path):
    out = tmp_path / "RESULTS.md"
    only = "ingest,eval_votes" + ("" if _citus_built() else ",citus")
    cmd = [sys.executable, "benchmarks/run_all.py", "--quick", "--only", only]
    cmd += ["--args", "ingest=--n 3000", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    # the header: how it was made, when, on what
    assert "python benchmarks/run_all.py --quick" in text
    assert "- git commit: " in text and "- date: " in text and "load average" in text
    assert "CPUs" in text
    # the benchmark's own table: command, headline figure, target, verdict, reference, ratio
    assert "## bench_ingest.py" in text
    assert "`python benchmarks/bench_ingest.py --n 3000`" in text
    (headline,) = [
        line for line in text.splitlines() if line.startswith("| ingest of 3,000 catalog rows")
    ]
    cells = [c.strip() for c in headline.strip("|").split("|")]
    name, value, target, met, reference, ratio = cells
    assert value.endswith("rows/s") and float(value.split()[0].replace(",", "")) > 0
    assert target == ">= 50,000"
    assert met in ("yes", "**no**")
    assert "reader inline" in reference
    assert ratio.endswith("x") and float(ratio[:-1]) > 0
    # what did not run, and why
    assert "`eval_votes.py` (skipped): needs the real labelled sets" in text
    if not _citus_built():
        assert "`bench_citus.py` (skipped): Citus is not built here" in text
