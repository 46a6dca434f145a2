"""The tooling's structure: child programs are real files, and they run.

Import cycles and the library loading tooling are checked for the whole package in
test_architecture.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tfdata_checkpoint as tc
from tfdata_checkpoint.tools.bench import hook_stall, measure, report
from tfdata_checkpoint.tools.bench.result import Result
from tfdata_checkpoint.tools.bench.scenario import Scenario, filled_iterator

TOOLS = Path(__file__).resolve().parents[1] / "python" / "tfdata_checkpoint" / "tools"


def test_no_program_is_kept_in_a_string():
    for path in TOOLS.rglob("*.py"):
        source = path.read_text()
        assert '"-c"' not in source and "textwrap.dedent" not in source, path


def test_fresh_process_restore_job(tmp_path):
    scenario = Scenario("tiny", buffer_mib=1, element_kib=64)
    it = filled_iterator(scenario)
    prefix = tc.save_iterator(it, str(tmp_path / "ckpt"))
    expected = int(next(it)[0])
    fresh = measure.fresh_process_restore(scenario, "ours", prefix)
    assert fresh["next_id"] == expected and fresh["growth"] >= 0


@pytest.mark.skipif(not hook_stall.available(), reason="no Estimator in this TensorFlow")
def test_hook_stall_job():
    scenario = Scenario("tiny", buffer_mib=1, element_kib=64)
    job = hook_stall.run_job("ours", scenario, steps=4, save_steps=2, step_ms=1.0)
    assert len(job["save_stalls"]) == 3 and job["train_seconds"] > 0


def test_report_of_results(tmp_path):
    figures = ["tf_save", "ours_save_nofsync", "ours_save_fsync", "disk_write_fsync",
               "ours_async_stall", "ours_async_commit_fsync", "tf_restore", "ours_restore"]
    result = Result(scenario={"name": "s", "buffer_bytes": 1 << 20}, repeats=1,
                    seconds={f: [0.5] for f in figures}, checks={"ours_restores_exactly": "1/1"})
    paths = report.save_results([result], str(tmp_path), "r")
    assert "| s | 0.50 s |" in Path(paths["markdown"]).read_text()
    assert json.loads(Path(paths["json"]).read_text())["results"][0]["scenario"]["name"] == "s"
