"""The report of the incremental benchmark (issue 14): JSON of every run, markdown of medians."""

from __future__ import annotations

import json
import os

from tfdata_checkpoint.tools.bench.report import machine_description

MIB = 1 << 20


def _mib(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / MIB:.1f} MiB" if abs(n) >= MIB else f"{n / 1024:.1f} KiB"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 1 else f"{seconds:.2f} s"


def _load(load: dict) -> str:
    return "; ".join(f"{k} {' / '.join(f'{x:.2f}' for x in v)}" for k, v in load.items())


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(row) + " |" for row in rows])


def _met(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def bytes_markdown(part: dict) -> list[str]:
    lines = [
        "## (a) Bytes written by a save after k new elements",
        "",
        ("`IteratorCheckpointManager` (incremental, its default): a full save, k elements "
        "consumed (at most k new elements in the state: the map before the shuffle is "
        "sequential and no prefetch is injected, so the shuffle buffer is the only buffer), "
        "the next save. Next to it, a manager with "
        "`incremental=False` saving the same state into another directory. *Own bytes*: "
        "`describe_checkpoint(prefix)[\"total_bytes\"]`; *new files*: the bytes of the files "
        "the save added to its directory (shards and index). Saves fsync'd; times until the "
        f"commit. Medians of {len(part['rows'][0]['runs']) if part['rows'] else 0} runs; "
        f"target: own bytes at most {part['target_ratio']}x the k elements' payload (worst "
        "run), plus the index. The last buffer is the main benchmark's pipeline as it comes "
        "(parallel map, tf.data's injected autotuned prefetch): there the buffers take more "
        "than k new elements between the saves, so it is shown for information."),
        "",
    ]
    rows = []
    for r in part["rows"]:
        inc, full = r["incremental"], r["full"]
        rows.append([
            r["scenario"], str(r["k"]), _mib(r["new_payload_bytes"]),
            _mib(inc["own_bytes"]),
            f"{r['own_over_new']:.3f}x (worst {r['worst_own_over_new']:.3f}x)",
            _mib(inc["referenced_bytes"]),
            "-" if inc["referenced_files"] is None else f"{inc['referenced_files']:.0f}",
            f"{_mib(inc['new_files_bytes'])} ({_mib(inc['index_bytes'])} index)",
            _mib(full["new_files_bytes"]),
            f"{r['full_over_incremental_bytes']:.1f}x",
            f"{_s(inc['commit_seconds'])} / {_s(full['commit_seconds'])}",
            "/".join(r["formats"]),
            _met(r["meets_target"]) if r.get("held_to_target", True) else "(information)",
        ])
    lines += _table(["buffer", "k", "new payload", "own bytes", "own / new payload",
                     "referenced", "referenced files", "new files on disk", ("full save, same "
                     "state"), "full / incremental bytes", "commit incremental / full",
                     "format", "target"], rows)
    lines += ["", f"Load average: {_load(part['load_average'])}.", ""]
    return lines


def stall_markdown(part: dict) -> list[str]:
    if "skipped" in part:
        return ["## (b) Frequent-save Estimator job", "", f"Skipped: {part['skipped']}.", ""]
    lines = [
        "## (b) Frequent-save Estimator job: stall per save",
        "",
        (f"{part['scenario']}, {part['steps']} steps, a save every {part['save_steps']} steps, "
        "steps of the given time (ModelCompute sleep), each job in a fresh process, "
        f"{part['repeats']} jobs per hook and step time (hooks in rotating order). Stall of a "
        "save: the time the hook held that step (TimedHook); the initial save is left out. "
        "*waited*: saves that waited for the previous write; *skipped*: saves skipped "
        "(on_busy='skip'). *Resumed exactly*: the job's last input checkpoint restored in a "
        "fresh process gives the same next elements (id and payload digest) as an "
        "uninterrupted pipeline that gave as many elements as there were steps. Target: "
        f"median stall at most {part['target_ratio'] * 100:.0f}% of TF's hook."),
        "",
    ]
    rows = []
    names = {"tf": "TF `CheckpointInputPipelineHook`", "ours": "ours (incremental, default)",
             "ours-full": "ours, `incremental=False`", "ours-skip": "ours, `on_busy='skip'`"}
    for r in part["rows"]:
        rows.append([
            f"{r['step_ms']:g} ms", names.get(r["hook"], r["hook"]), str(r["periodic_saves"]),
            _ms(r["median_save_stall"]), _ms(r["mean_save_stall"]), _ms(r["max_save_stall"]),
            "-" if "median_over_tf" not in r else f"{r['median_over_tf'] * 100:.2f}%",
            "-" if "mean_over_tf" not in r else f"{r['mean_over_tf'] * 100:.2f}%",
            str(r.get("waited", "-")), str(r.get("skipped", "-")),
            r.get("resumed_exactly", "-"), _s(r["median_train_seconds"]),
            _met(r.get("meets_target")),
        ])
    lines += _table(["step", "hook", "saves", "median stall", "mean stall", "max stall",
                     "median / TF", "mean / TF", "waited", "skipped", "resumed exactly",
                     "whole job", "target"], rows)
    lines += ["", f"Load average: {_load(part['load_average'])}.", ""]
    return lines


def chain_markdown(part: dict) -> list[str]:
    lines = [
        "## (c) Restore from the end of a chain",
        "",
        (f"A full save, then {part['links']} incremental saves of k new elements each "
        "(`IteratorCheckpointManager`); right after, the same state saved with "
        "`incremental=False` into another directory. Each restored in a fresh process "
        "(`restore_iterator` only, timed inside the process; first-touch memory included), "
        "alternating which goes first; *warm*: the files in the page cache as just written, "
        "*cold*: dropped from it first (`posix_fadvise(DONTNEED)`). Medians; every restore's "
        "next elements compared with the original iterator's. Target: chain at most "
        f"{part['target_ratio']}x the full checkpoint (warm)."),
        "",
    ]
    rows = []
    for r in part["rows"]:
        formats = [link["format_version"] for link in r["chain"][1:]]
        refs = r["chain"][-1]["referenced_files"]
        full_links = sum(not f.startswith("2.") for f in formats)
        rows.append([
            r["scenario"], f"{r['k']} x {r['links']}",
            f"last {formats[-1] if formats else '-'}; {full_links} of {len(formats)} full",
            f"{r['chain_files']} ({refs} referenced) / {r['full_files']}",
            _s(r["median_chain_warm_seconds"]), _s(r["median_full_warm_seconds"]),
            f"**{r['ratio_warm']:.2f}x**",
            _s(r["median_chain_cold_seconds"]), _s(r["median_full_cold_seconds"]),
            f"{r['ratio_cold']:.2f}x",
            (f"{r['chain_warm_exact']}, {r['full_warm_exact']}, {r['chain_cold_exact']}, "
            f"{r['full_cold_exact']}"),
            _met(r["meets_target"]),
        ])
    lines += _table(["buffer", "k x saves", "chain links (format)", "files read chain / full",
                     "chain warm", "full warm", "chain / full warm", "chain cold",
                     "full cold", "chain / full cold", "exact (chain, full warm; cold)",
                     "target"], rows)
    lines += ["", f"Load average: {_load(part['load_average'])}.", ""]
    return lines


def small_markdown(part: dict) -> list[str]:
    s = part["summary"]
    t = part["targets"]
    met = s["met"]
    restores = part["fresh_restores"]
    lines = [
        f"## (d) Many small elements: {part['scenario']['name']} ({part['entries']:,} entries)",
        "",
        ("Which figures include first-touch memory: every *fresh process* figure (each "
        "allocation there is memory the process touches first; slow on this VM). The "
        "*in process* figures run after a warm-up that touched twice the buffer size "
        "(`measure.warm_up_memory`), alternating TF and ours, as the main benchmark."),
        "",
    ]
    rows = [
        ["full save + fsync vs `os.write` + fsync of the same bytes (in process)",
         (f"{_s(s['save_fsync_seconds'])} vs {_s(s['raw_write_fsync_seconds'])}: "
         f"**{s['save_over_raw_write']:.2f}x** (no fsync: "
         f"{s['save_nofsync_over_raw_write_nofsync']:.2f}x)"),
         f"at most {t['save_over_raw_write']:g}x", _met(met["save_over_raw_write"])],
    ]
    if "stall_over_tf_hook" in s:
        rows.append([
            ("capture stall of an asynchronous save (in process) vs TF's hook stall on an "
            "Estimator job fed by the same buffer (fresh process)"),
            (f"{_ms(s['capture_stall_in_process'])} vs {_ms(s['tf_hook_stall'])}: "
            f"**{s['stall_over_tf_hook'] * 100:.2f}%** (first save of a fresh process "
            f"{_ms(s['capture_stall_fresh_first'])}, incremental "
            f"{_ms(s['capture_stall_fresh_incremental'])}; our hook on that job "
            f"{_ms(s['ours_hook_stall'])} = {s['ours_hook_stall_over_tf_hook'] * 100:.2f}%)"),
            f"at most {t['stall_over_tf_hook'] * 100:g}%", _met(met["stall_over_tf_hook"])])
    worst = max(s["max_memory_growth"].values())
    rows.append([
        "save memory growth (fresh process, peak RSS above the start, through the commit)",
        ", ".join(f"{k}: {_mib(v)}" for k, v in s["max_memory_growth"].items())
        + f"; worst **{_mib(worst)}**",
        f"at most {_mib(t['memory_growth_bytes'])}", _met(met["memory_growth_bytes"])])
    rows.append([
        "restore in a fresh process, TF vs ours (warm page cache)",
        (f"{_s(s['tf_restore_fresh_seconds'])} vs {_s(s['ours_restore_fresh_seconds'])}: "
        f"**{s['tf_restore_over_ours']:.1f}x** faster (cold: "
        f"{s['tf_restore_over_ours_cold']:.1f}x)"),
        f"at least {t['tf_restore_over_ours']:g}x", _met(met["tf_restore_over_ours"])])
    rows.append([
        "restore in a fresh process vs reading the same bytes into fresh memory (warm)",
        (f"{_s(s['ours_restore_fresh_seconds'])} vs {_s(s['read_fresh_seconds'])} "
        f"({_mib(restores['read_bytes'])}): **{s['ours_restore_over_read']:.2f}x** (cold: "
        f"{s['ours_restore_over_read_cold']:.2f}x)"),
        f"at most {t['ours_restore_over_read']:g}x", _met(met["ours_restore_over_read"])])
    lines += _table(["figure", "measured (medians)", "target", ""], rows)
    ip = part["in_process"]["seconds"]
    med = lambda f: sorted(ip[f])[len(ip[f]) // 2]
    lines += [
        "",
        ("Other figures: in process, TF save "
        f"{_s(med('tf_save'))}, ours without fsync {_s(med('ours_save_nofsync'))} "
        f"(raw write without fsync {_s(med('disk_write_nofsync'))}), background commit "
        f"{_s(med('ours_async_commit_fsync'))}, TF restore {_s(med('tf_restore'))}, ours "
        f"{_s(med('ours_restore'))}; fresh process, restore of the incremental checkpoint "
        f"{_s(s['ours_incremental_restore_fresh_seconds'])}, restore memory growth ours "
        f"{_mib(restores['median_ours_full_warm_growth'])}, TF "
        f"{_mib(restores['median_tf_warm_growth'])}, read "
        f"{_mib(restores['median_read_warm_growth'])}."),
        "",
        f"Load average: {_load(part['load_average'])}.",
        "",
    ]
    return lines


def targets_markdown(results: dict) -> list[str]:
    """One line per target of issue 14: met, or by how much it is missed."""
    rows = []
    if "bytes" in results:
        for r in results["bytes"]["rows"]:
            if not r.get("held_to_target", True):
                continue  # informational: its buffers take more than k new elements
            limit = results["bytes"]["target_ratio"]
            miss = "" if r["meets_target"] else f" ({r['worst_own_over_new'] / limit:.2f}x over)"
            rows.append([f"bytes after k={r['k']}, {r['scenario']}",
                         f"{r['worst_own_over_new']:.3f}x", f"<= {limit}x",
                         _met(r["meets_target"]) + miss])
    if "stall" in results and "rows" in results["stall"]:
        limit = results["stall"]["target_ratio"]
        for r in results["stall"]["rows"]:
            if r["hook"] == "tf" or "median_over_tf" not in r:
                continue
            miss = "" if r["meets_target"] else f" ({r['median_over_tf'] / limit:.2f}x over)"
            rows.append([f"stall per save, {r['hook']}, {r['step_ms']:g} ms steps",
                         (f"{r['median_over_tf'] * 100:.2f}% of TF's "
                         f"(resumed exactly {r['resumed_exactly']})"),
                         f"<= {limit * 100:g}%", _met(r["meets_target"]) + miss])
    if "chain" in results:
        limit = results["chain"]["target_ratio"]
        for r in results["chain"]["rows"]:
            miss = "" if r["meets_target"] else f" ({r['ratio_warm'] / limit:.2f}x over)"
            if not r.get("last_link_incremental", True):
                miss += " (the last save was written in full: not a chain)"
            rows.append([f"chain restore, {r['scenario']}", f"{r['ratio_warm']:.2f}x",
                         f"<= {limit}x", _met(r["meets_target"]) + miss])
    if "small" in results:
        s = results["small"]["summary"]
        t = results["small"]["targets"]
        checks = [
            ("4 KiB: full save / raw write", s["save_over_raw_write"], "save_over_raw_write",
             f"{s['save_over_raw_write']:.2f}x", f"<= {t['save_over_raw_write']:g}x", False),
            ("4 KiB: memory growth", max(s["max_memory_growth"].values()),
             "memory_growth_bytes", _mib(max(s["max_memory_growth"].values())),
             f"<= {_mib(t['memory_growth_bytes'])}", False),
            ("4 KiB: TF restore / ours", s["tf_restore_over_ours"], "tf_restore_over_ours",
             f"{s['tf_restore_over_ours']:.1f}x", f">= {t['tf_restore_over_ours']:g}x", True),
            ("4 KiB: ours restore / read", s["ours_restore_over_read"],
             "ours_restore_over_read", f"{s['ours_restore_over_read']:.2f}x",
             f"<= {t['ours_restore_over_read']:g}x", False),
        ]
        if "stall_over_tf_hook" in s:
            checks.insert(1, ("4 KiB: capture stall / TF hook stall", s["stall_over_tf_hook"],
                              "stall_over_tf_hook", f"{s['stall_over_tf_hook'] * 100:.2f}%",
                              f"<= {t['stall_over_tf_hook'] * 100:g}%", False))
        for name, value, key, shown, limit_text, at_least in checks:
            ok = s["met"][key]
            if ok:
                miss = ""
            elif at_least:
                miss = f" ({t[key] / value:.2f}x short)"
            else:
                miss = f" ({value / t[key]:.2f}x over)"
            rows.append([name, shown, limit_text, _met(ok) + miss])
    return ["## Targets", ""] + _table(["target", "measured", "limit", ""], rows) + [""]


def markdown(results: dict, machine: dict, command: str) -> str:
    machine_line = ", ".join(f"{k} {v}" for k, v in machine.items())
    lines = [
        "# Incremental saves (issue 14): benchmark",
        "",
        f"`{command}`",
        "",
        (f"Machine: {machine_line}. Load average (1/5/15 min): {_load(results['load_average'])}"
        " (2 cores shared with other jobs: read the ratios, measured side by side in one "
        "run, rather than the absolute values)."),
        "",
    ]
    lines += targets_markdown(results)
    if "bytes" in results:
        lines += bytes_markdown(results["bytes"])
    if "stall" in results:
        lines += stall_markdown(results["stall"])
    if "chain" in results:
        lines += chain_markdown(results["chain"])
    if "small" in results:
        lines += small_markdown(results["small"])
    return "\n".join(lines) + "\n"


def save_results(results: dict, out_dir: str, name: str, command: str) -> dict:
    """Writes `<name>.json` (every run) and `<name>.md`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    machine = machine_description()
    paths = {"json": os.path.join(out_dir, f"{name}.json"),
             "markdown": os.path.join(out_dir, f"{name}.md")}
    with open(paths["json"], "w") as f:
        json.dump({"machine": machine, "command": command, "results": results}, f, indent=1)
    with open(paths["markdown"], "w") as f:
        f.write(markdown(results, machine, command))
    return paths
