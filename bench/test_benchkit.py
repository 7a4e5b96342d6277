"""Offline checks of the bench's own logic (not collected by the test suite: `.venv/bin/python -m pytest -q
bench/test_benchkit.py`): the Snakemake graph, fsync attribution, the in-process counters, flatness and verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "tests")]

from benchkit.projects import FirstBuild  # noqa: E402
from benchkit.report import at_least, at_most, table  # noqa: E402
from benchkit.row_memory import flatness  # noqa: E402
from benchkit.row_per_target import classify_fsync, strace_fsyncs  # noqa: E402
from benchkit.snakefile import graph_of  # noqa: E402
from benchkit.timing import Sample  # noqa: E402


def test_graph_has_every_output_with_its_references_and_dependencies():
    manifest = {"targets": [
        {"task": "ref:a", "output": "s/a.png"},
        {"task": "ref:b", "output": "s/b.png"},
        {"task": "image:x", "output": "s/x.png", "references": [{"path": "s/b.png"}, {"path": "s/a.png"}],
         "depends_on": ["ref:a", "ref:b"]},
        {"task": "video:x", "output": "s/x.mp4", "depends_on": ["image:x"]},
        {"task": "image:y", "output": "s/y.png", "references": [{"path": "s/a.png"}]},
    ]}
    assert graph_of(manifest) == {"s/a.png": [], "s/b.png": [], "s/x.png": ["s/a.png", "s/b.png"],
                                  "s/x.mp4": ["s/x.png"], "s/y.png": ["s/a.png"]}


def test_fsyncs_are_attributed_to_assets_folders_and_sqlite_files(tmp_path: Path):
    assets = tmp_path / "generated"
    (assets / "story").mkdir(parents=True)
    trace = tmp_path / "trace.txt"
    trace.write_text("\n".join([
        f"101 fsync(5<{assets}/story/.shot-1.png.tmp-x1y2z3>) = 0",
        f"101 fsync(6<{assets}/story>) = 0",
        f"102 fdatasync(7<{tmp_path}/.storytree-data/story.sqlite-wal>) = 0",
        f"102 fsync(8<{tmp_path}/.storytree/doit.sqlite>) = 0",
        f"102 fsync(9<{tmp_path}/.storytree-probe-k3qkldi3>) = 0",
        f"102 fsync(9<{tmp_path}/x>) = -1 EBADF (Bad file descriptor)",
        "102 +++ exited with 0 +++",
    ]))
    assert strace_fsyncs(trace, assets) == {"asset file": 1, "folder": 1, "sqlite story.sqlite": 1,
                                            "sqlite doit.sqlite": 1, "other .storytree-probe-*": 1}
    assert classify_fsync(str(assets / "story"), assets) == "folder"
    assert classify_fsync(f"{tmp_path}/.storytree-data/objects/tmp/.0ykilm6i.part", assets) == "object file"


def test_counter_counts_sql_statements_fsyncs_and_writes_them(tmp_path: Path):
    """count_build.py's counters, on a script instead of doit: statements per file, Python fsyncs."""
    script = tmp_path / "work.py"
    script.write_text(
        "import os, sqlite3, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import count_build\n"
        "count_build._count_sql(); count_build._count_fsync()\n"
        "conn = sqlite3.connect(sys.argv[2] + '/a.sqlite')\n"
        "conn.execute('create table t (x)'); conn.execute('insert into t values (1)'); conn.commit()\n"
        "fd = os.open(sys.argv[2] + '/f', os.O_CREAT | os.O_WRONLY); os.fsync(fd); os.close(fd)\n"
        "print(dict(count_build.sql), dict(count_build.fsyncs))\n")
    out = subprocess.run([sys.executable, str(script), str(BENCH / "benchkit"), str(tmp_path)], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": ""}).stdout
    sql, fsyncs = out.strip().split("} {")
    assert sql + "}" == str({"a.sqlite": 4})  # create, BEGIN (implicit, before the insert), insert, COMMIT
    assert "{" + fsyncs == str({"fsync": 1})


def test_flatness_compares_the_end_with_a_quarter_of_the_way():
    def build(rss: list[int]) -> FirstBuild:
        samples = [Sample(float(i + 1), kib, kib, 0) for i, kib in enumerate(rss)]
        return FirstBuild("code", "now", 4, 100, float(len(rss)), 1.0, max(rss), samples)

    assert flatness(build([100, 200, 200, 200, 200, 200, 200, 200])) == 1.0
    assert flatness(build([100, 200, 200, 450, 200, 200, 200, 200])) == 450 / 200  # a peak between, not at the end
    assert flatness(build([100, 100, 150, 200, 250, 300, 350, 400])) == 400 / 100  # at 2 s of 8: 100
    assert flatness(build([100, 200])) is None


def test_verdicts_and_table():
    slow = at_most("r", "ratio", 1.2, 1.05, "×", "1.2")
    fast = at_least("r", "speed-up", 25.0, 20.0, "×", "25")
    assert (slow.met, fast.met) == (False, True)
    assert "| r | ratio | 1.2 | ≤ 1.05× | **MISSED** |" in table([slow, fast])
    assert json.dumps(slow.__dict__)  # --json writes verdicts as they are
