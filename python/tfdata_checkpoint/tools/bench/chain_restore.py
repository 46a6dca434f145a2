"""Restore from the end of a chain of incremental saves against a full checkpoint of that state.

On one filled iterator, `IteratorCheckpointManager` (incremental, its default)
saves step 0 (full), then `links` times: k elements consumed, a save. Right
after the last one a manager with `incremental=False` saves the very same
state into another directory. The original iterator's next elements are what
both must give. Then, `repeats` times over and alternating which goes first,
each checkpoint is restored in a fresh process (`jobs/timed_restore.py`):
once with its files in the page cache (as just written) and once after
dropping them from it (`posix_fadvise(DONTNEED)`, so the restore reads the
disk). Medians, and the chain over the full one (issue 14: at most 1.25x).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from dataclasses import asdict

from tfdata_checkpoint.tools.bench import files
from tfdata_checkpoint.tools.bench.child import run_child
from tfdata_checkpoint.tools.bench.scenario import Scenario, filled_iterator, fingerprint
from tfdata_checkpoint.tools.progress import progress

TARGET_RATIO = 1.25  # chain restore / full restore, issue 14
NEXT = 4  # elements compared after each restore


def chain_scenarios(buffer_mib: int = 1024) -> list[tuple[Scenario, int]]:
    """(buffer, k): 1 GiB of 4 MiB elements, k = 8; 1 GiB of 4 KiB elements, k = 2048 (8 MiB)."""
    return [
        (Scenario(f"shuffle {buffer_mib} MiB / 4 MiB elements", buffer_mib, 4096), 8),
        (Scenario(f"shuffle {buffer_mib} MiB / 4 KiB elements", buffer_mib, 4), 2048),
    ]


def build_chain(scenario: Scenario, k: int, links: int, directory: str) -> dict:
    """Writes the chain and the full checkpoint of its last state; their prefixes and shape."""
    import tfdata_checkpoint as tc
    from tfdata_checkpoint._src.iterator_state import describe_checkpoint

    chain_dir = os.path.join(directory, "chain")
    full_dir = os.path.join(directory, "full")
    it = filled_iterator(scenario)
    chain = tc.IteratorCheckpointManager(it, chain_dir, max_to_keep=None)
    full = tc.IteratorCheckpointManager(it, full_dir, max_to_keep=None, incremental=False)
    try:
        chain.save(0)
        chain.wait()
        for step in range(1, links + 1):
            for _ in range(k):
                next(it)
            chain_prefix = chain.save(step)
            chain.wait()
        full_prefix = full.save(links)
        full.wait()
        expected = [fingerprint(next(it)) for _ in range(NEXT)]
    finally:
        chain.close()
        full.close()
    links_info = []
    for prefix in chain.checkpoints:
        info = describe_checkpoint(prefix)
        links_info.append({"prefix": os.path.basename(prefix), "own_bytes": info["total_bytes"],
                           "referenced_bytes": info.get("referenced_bytes"),
                           "referenced_files": len(info.get("referenced_files", [])),
                           "format_version": info["format_version"]})
    last = describe_checkpoint(chain_prefix)
    full_info = describe_checkpoint(full_prefix)
    return {
        "chain_prefix": chain_prefix,
        "full_prefix": full_prefix,
        "chain_files": files.checkpoint_files(chain_prefix, last.get("referenced_files", [])),
        "full_files": files.checkpoint_files(full_prefix),
        "links": links_info,
        "full_own_bytes": full_info["total_bytes"],
        "full_format_version": full_info["format_version"],
        "expected_next": expected,
    }


def _restore(scenario: Scenario, prefix: str, paths: list[str], cold: bool) -> dict:
    evicted = files.evict_from_page_cache(paths) if cold else 0
    result = run_child("timed_restore", json.dumps(asdict(scenario)), "ours", prefix, str(NEXT))
    result["evicted_bytes"] = evicted
    return result


def run_one(scenario: Scenario, k: int, links: int, repeats: int, directory: str) -> dict:
    """Builds the chain, then restores both checkpoints `repeats` times each, warm and cold."""
    work = os.path.join(directory, "chain-restore")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        built = build_chain(scenario, k, links, work)
        which = {"chain": (built["chain_prefix"], built["chain_files"]),
                 "full": (built["full_prefix"], built["full_files"])}
        runs: dict[str, list[dict]] = {f"{w}_{c}": [] for w in which for c in ("warm", "cold")}
        for r in progress(range(repeats), desc=f"chain restore, {scenario.name}", unit="repeat",
                          leave=False):
            order = ("chain", "full") if r % 2 == 0 else ("full", "chain")
            for cache in ("warm", "cold"):
                for w in order:
                    prefix, paths = which[w]
                    runs[f"{w}_{cache}"].append(
                        _restore(scenario, prefix, paths, cold=cache == "cold"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"scenario": scenario.name, "buffer_bytes": scenario.buffer_bytes,
           "element_bytes": scenario.element_kib * 1024, "k": k, "links": links,
           "repeats": repeats, "chain": built["links"],
           "full_own_bytes": built["full_own_bytes"],
           "full_format_version": built["full_format_version"],
           "chain_files": len(built["chain_files"]), "full_files": len(built["full_files"]),
           "runs": runs}
    for name, results in runs.items():
        out[f"median_{name}_seconds"] = statistics.median(r["seconds"] for r in results)
        out[f"median_{name}_growth"] = statistics.median(r["growth"] for r in results)
        out[f"{name}_exact"] = (
            f"{sum(r['next'] == built['expected_next'] for r in results)}/{len(results)}")
    for cache in ("warm", "cold"):
        out[f"ratio_{cache}"] = (out[f"median_chain_{cache}_seconds"]
                                 / out[f"median_full_{cache}_seconds"])
    # A last link written in full (the chain bound) would make this no chain at all.
    out["last_link_incremental"] = built["links"][-1]["format_version"].startswith("2.")
    out["meets_target"] = out["ratio_warm"] <= TARGET_RATIO
    return out


def run(cases: list[tuple[Scenario, int]], links: int, repeats: int, directory: str) -> dict:
    """Every (buffer, k) case; see the module doc."""
    out = {"target_ratio": TARGET_RATIO, "links": links, "rows": [],
           "load_average": {"start": os.getloadavg()}}
    for scenario, k in progress(cases, desc="chain restore", unit="case"):
        out["rows"].append(run_one(scenario, k, links, repeats, directory))
    out["load_average"]["end"] = os.getloadavg()
    return out
