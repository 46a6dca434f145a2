"""The incremental-save benchmark's tools (issue 14) on tiny buffers: what they record is right.

No figure is asserted against a time: only what a run must hold whatever the
machine (bytes, formats, restored streams equal to the uninterrupted one).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

import tfdata_checkpoint as tc
from tfdata_checkpoint.tools import cli
from tfdata_checkpoint.tools.bench import (
    chain_restore,
    files,
    frequent_saves,
    hook_stall,
    incremental,
    incremental_bytes,
    incremental_report,
)
from tfdata_checkpoint.tools.bench.child import run_child
from tfdata_checkpoint.tools.bench.scenario import Scenario, filled_iterator, fingerprint

TINY = Scenario("tiny", buffer_mib=1, element_kib=64, map_parallel_calls=0)  # 16 elements


def test_bytes_after_k_new_elements_are_those_of_the_k_elements(tmp_path):
    it = filled_iterator(TINY)
    run = incremental_bytes.measure_once(it, 2, str(tmp_path))
    element = TINY.element_kib * 1024
    first, second, full = run["first_save"], run["incremental_save"], run["full_save"]
    assert first["own_bytes"] >= 16 * element and first["referenced_bytes"] == 0
    # The same state in full, and the incremental save's own bytes are the 2 new payloads.
    assert full["own_bytes"] >= 16 * element and full["format_version"].startswith("1.")
    assert 2 * element <= second["own_bytes"] <= 1.5 * 2 * element, second
    assert second["own_bytes"] + second["referenced_bytes"] >= 15 * element
    assert second["format_version"].startswith("2.") and second["referenced_files"] >= 1
    # Files the save added: its shards and its index, nothing else.
    assert second["new_files_bytes"] == second["own_bytes"] + second["index_bytes"], second
    row = incremental_bytes.summarize(TINY, 2, [run])
    assert row["meets_target"] and row["own_over_new"] == second["own_bytes"] / (2 * element)
    assert not os.listdir(tmp_path)  # each repeat cleans up after itself


def test_restore_jobs_give_the_uninterrupted_stream(tmp_path):
    it = filled_iterator(TINY)
    for _ in range(5):
        next(it)
    prefix = tc.save_iterator(it, str(tmp_path / "ckpt"))
    expected = [fingerprint(next(it)) for _ in range(3)]
    spec = json.dumps(asdict(TINY))
    ours = run_child("timed_restore", spec, "ours", prefix, "3")
    assert ours["next"] == expected and ours["seconds"] > 0 and ours["growth"] >= 0
    # The uninterrupted pipeline: 1 element out when the buffer was full, then 5.
    assert run_child("uninterrupted_stream", spec, "6", "3")["next"] == expected
    paths = files.checkpoint_files(prefix)
    assert any(p.endswith("ckpt.index") for p in paths) and any(".data-" in p for p in paths)
    read = run_child("timed_restore", spec, "read", prefix, "1", *paths)
    assert read["bytes"] == sum(os.path.getsize(p) for p in paths)


def test_evicted_files_are_out_of_the_page_cache(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(1 << 20))
    assert files.evict_from_page_cache([str(path)]) == 1 << 20
    fraction = files.cached_fraction(str(path))
    assert fraction is None or fraction < 0.5


def test_chain_restore_builds_a_chain_and_both_restore_exactly(tmp_path):
    scenario = Scenario("tiny", buffer_mib=1, element_kib=64)
    row = chain_restore.run_one(scenario, k=2, links=3, repeats=1, directory=str(tmp_path))
    assert [link["format_version"][0] for link in row["chain"]] == ["1", "2", "2", "2"]
    assert row["chain"][-1]["referenced_files"] >= 1 and row["full_format_version"][0] == "1"
    for name in ("chain_warm", "full_warm", "chain_cold", "full_cold"):
        assert row[f"{name}_exact"] == "1/1", (name, row)
    assert row["ratio_warm"] > 0
    part = {"target_ratio": chain_restore.TARGET_RATIO, "links": 3, "rows": [row],
            "load_average": {"start": (1.0, 1.0, 1.0)}}
    text = "\n".join(incremental_report.chain_markdown(part))
    assert "| tiny | 2 x 3 | last 2.0; 0 of 3 full |" in text, text


@pytest.mark.skipif(not hook_stall.available(), reason="no Estimator in this TensorFlow")
def test_frequent_save_jobs_resume_exactly(tmp_path):
    scenario = Scenario("tiny", buffer_mib=1, element_kib=64)
    out = frequent_saves.run(scenario, [1.0], steps=6, save_steps=2, repeats=1,
                             directory=str(tmp_path), hooks=("tf", "ours", "ours-full"))
    rows = {r["hook"]: r for r in out["rows"]}
    assert set(rows) == {"tf", "ours", "ours-full"}
    for which in ("ours", "ours-full"):
        assert rows[which]["resumed_exactly"] == "1/1", rows[which]
        assert rows[which]["jobs"][0]["resume"]["step"] == 6
        assert rows[which]["jobs"][0]["log_counts"]["saves"] >= 3
        assert rows[which]["median_over_tf"] > 0
    assert rows["tf"]["periodic_saves"] == 3


def test_report_of_a_tiny_run(tmp_path):
    options = incremental.Options(parts=("bytes",), buffer_mib=4, repeats=1, ks=[1])
    results = incremental.run(options, str(tmp_path))
    paths = incremental_report.save_results(results, str(tmp_path / "out"), "r", "cmd")
    text = Path(paths["markdown"]).read_text()
    assert "## Targets" in text and "## (a) Bytes" in text
    assert "bytes after k=1, shuffle 1 MiB / 1 MiB elements" in text
    saved = json.loads(Path(paths["json"]).read_text())
    assert saved["command"] == "cmd" and len(saved["results"]["bytes"]["rows"]) == 3


def test_bad_options_are_one_clean_error(capsys):
    assert cli.main(["bench", "--only", "incremental", "--repeats", "0"]) == cli.EXIT_ERROR
    assert "--repeats must be at least 1" in capsys.readouterr().err
    assert cli.main(["bench", "--only", "incremental", "--incremental-k", "0"]) == cli.EXIT_ERROR
    assert "--incremental-k" in capsys.readouterr().err
