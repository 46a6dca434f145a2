"""Multi-worker: task prefixes, and a loopback cluster whose worker is killed and resumes.

Chief, worker and parameter server run as separate processes (`workers/cluster_task.py`)
with `TF_CONFIG` on 127.0.0.1 ports: through `tf.estimator.train_and_evaluate`
(TF <= 2.15) and through `tf.distribute.Server` + `MonitoredTrainingSession`
(any TF). Each trainer records the ids of the elements it trained on. After the
worker has committed a few input checkpoints under its own prefix, it is
SIGKILLed and started again with the same `TF_CONFIG` while the chief trains
on. The test then checks, against uninterrupted iterators of each task's
dataset, that

- the restarted worker resumed exactly at its newest committed input
  checkpoint (restored independently here to find that position), and went
  on saving under `input_worker_0`;
- the chief's stream never restarted: one process, one unbroken prefix of its
  stream, which grew while the worker was down.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.cluster_pipeline import make_dataset
from tests.support.hook_sessions import range_dataset, train, train_until_crash
from tests.support.ports import free_loopback_ports
from tests.support.subprocesses import child_env, worker_command
from tfdata_checkpoint._src.multi_worker import Task, task_from_tf_config
from tfdata_checkpoint._src.retention import CheckpointRetention

DEADLINE_S = 150  # for each wait; cluster_task.py's watchdog ends every process anyway
HAS_ESTIMATOR = hasattr(tf, "estimator") and hasattr(tf.estimator, "Estimator")


class Cluster:
    """Starts, watches and kills the tasks of one loopback cluster."""

    def __init__(self, mode: str, root: Path) -> None:
        self.mode = mode
        self.root = root
        self.model_dir = str(root / "model")
        self.stop_file = str(root / "stop")
        chief, worker, ps = free_loopback_ports(3)
        self.cluster = {
            "chief": [f"127.0.0.1:{chief}"],
            "worker": [f"127.0.0.1:{worker}"],
            "ps": [f"127.0.0.1:{ps}"],
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, task_type: str, run: int = 1) -> subprocess.Popen:
        name = f"{task_type}.run{run}"
        env = child_env(
            TF_CPP_MIN_LOG_LEVEL="2",
            TF_CONFIG=json.dumps(
                {"cluster": self.cluster, "task": {"type": task_type, "index": 0}}
            ),
        )
        log = self.root / f"{name}.log"
        self.logs[name] = log
        with open(log, "w") as out:
            process = subprocess.Popen(
                worker_command("cluster_task", self.mode, self.model_dir,
                               self.records(task_type, run), self.stop_file),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.processes[name] = process
        return process

    def records(self, task_type: str, run: int = 1) -> Path:
        return self.root / f"{task_type}.run{run}.ids"

    def ids(self, task_type: str, run: int = 1) -> list[int]:
        path = self.records(task_type, run)
        if not path.exists():
            return []
        # A line being written when read is not whole yet.
        return [int(line) for line in path.read_text().split("\n")[:-1]]

    def retention(self, task_type: str) -> CheckpointRetention:
        prefix = f"input_{task_type}_0"
        return CheckpointRetention(
            self.model_dir, prefix + ".ckpt", latest_filename="checkpoint_" + prefix
        )

    def wait_until(self, condition, what: str, alive: tuple[str, ...]) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not condition():
            for name in alive:
                if self.processes[name].poll() is not None:
                    self.fail(f"{name} exited ({self.processes[name].returncode}) before {what}")
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting until {what}")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()

    def kill_all(self) -> None:
        for name in self.processes:
            self.kill(name)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.describe_logs()}")

    def describe_logs(self) -> str:
        parts = []
        for name, log in self.logs.items():
            text = log.read_text(errors="replace") if log.exists() else ""
            parts.append(f"----- {name} (last 3000 chars)\n{text[-3000:]}")
        return "\n".join(parts)


@pytest.fixture
def make_cluster(tmp_path):
    clusters = []

    def make(mode: str) -> Cluster:
        cluster = Cluster(mode, tmp_path)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.kill_all()


def expected_stream(task_type: str, count: int) -> list[int]:
    iterator = iter(make_dataset(task_type, 0))
    return [int(next(iterator)) for _ in range(count)]


def position_of_checkpoint(prefix: str, stream: list[int]) -> int:
    """How many elements of `stream` the checkpoint `prefix` had consumed.

    Found by restoring it into a fresh iterator here, independently of the
    cluster: its next elements must be the stream's from that position on.
    """
    iterator = iter(make_dataset("worker", 0))
    tc.restore_iterator(iterator, prefix)
    following = [int(next(iterator)) for _ in range(5)]
    position = stream.index(following[0])
    assert stream[position : position + 5] == following
    return position


def run_kill_and_restart(cluster: Cluster) -> str:
    for task in ("ps", "chief", "worker"):
        cluster.start(task)
    all_up = ("ps.run1", "chief.run1", "worker.run1")
    worker = cluster.retention("worker")
    # Some input checkpoints committed beyond the initial one, and a stream to resume.
    cluster.wait_until(
        lambda: len(worker.committed_steps()) >= 3 and len(cluster.ids("worker")) >= 30,
        "the worker committed 3 input checkpoints and trained 30 steps",
        all_up,
    )

    cluster.kill("worker.run1")
    assert cluster.processes["worker.run1"].returncode == -signal.SIGKILL
    killed_ids = cluster.ids("worker")
    last_committed = worker.latest()
    chief_at_kill = len(cluster.ids("chief"))
    # Read now: retention deletes it once the restarted worker has saved more.
    position = position_of_checkpoint(
        last_committed, expected_stream("worker", len(killed_ids) + 10)
    )

    # The chief trains on while the worker is down.
    alive = ("ps.run1", "chief.run1")
    cluster.wait_until(
        lambda: len(cluster.ids("chief")) >= chief_at_kill + 20,
        "the chief trained 20 steps without the worker",
        alive,
    )
    cluster.start("worker", run=2)
    alive += ("worker.run2",)
    chief_at_restart = len(cluster.ids("chief"))
    cluster.wait_until(
        lambda: len(cluster.ids("worker", 2)) >= 40
        and len(cluster.ids("chief")) >= chief_at_restart + 20,
        "the restarted worker trained 40 steps and the chief 20 more",
        alive,
    )

    Path(cluster.stop_file).touch()
    for name in ("chief.run1", "worker.run2"):
        try:
            cluster.processes[name].wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            cluster.fail(f"{name} did not stop")
        if cluster.processes[name].returncode != 0:
            cluster.fail(f"{name} failed ({cluster.processes[name].returncode})")
    cluster.kill("ps.run1")

    resumed_ids = cluster.ids("worker", 2)
    chief_ids = cluster.ids("chief")
    worker_stream = expected_stream("worker", len(killed_ids) + len(resumed_ids) + 10)
    context = f"\nlast committed: {last_committed}\n{cluster.describe_logs()}"

    # Before the kill the worker read its own stream from the start.
    assert killed_ids == worker_stream[: len(killed_ids)], context
    # It resumed exactly where its newest committed input checkpoint was...
    assert 0 < position <= len(killed_ids), context
    assert resumed_ids == worker_stream[position : position + len(resumed_ids)], context
    # ...and went on saving under its own prefix.
    assert worker.step_of(worker.latest()) > worker.step_of(last_committed), context

    # The chief: one unbroken stream, read on while the worker was down.
    assert chief_ids == expected_stream("chief", len(chief_ids)), context
    assert chief_at_restart >= chief_at_kill + 20
    assert cluster.retention("chief").committed_steps(), context
    names = os.listdir(cluster.model_dir)
    assert "checkpoint_input_worker_0" in names and "checkpoint_input_chief_0" in names
    assert not [n for n in names if n.startswith(("input.ckpt", "checkpoint_input."))], names
    assert tf.train.latest_checkpoint(cluster.model_dir) is not None  # the chief's model
    return (
        f"[{cluster.mode} cluster] SIGKILLed worker 0 (pid {cluster.processes['worker.run1'].pid}) "
        f"after {len(killed_ids)} elements; its newest committed input checkpoint "
        f"{os.path.basename(last_committed)} held element position {position}. Restarted "
        f"(pid {cluster.processes['worker.run2'].pid}), it resumed at position {position} "
        f"and read {len(resumed_ids)} elements exactly as an uninterrupted iterator; "
        f"the chief (pid {cluster.processes['chief.run1'].pid}, never restarted) read "
        f"{len(chief_ids)} elements in one unbroken stream, "
        f"{chief_at_restart - chief_at_kill} of them between the kill and the restart."
    )


def report(capsys, summary: str) -> None:
    """Shown in the CI log even when the test passes: what was killed, what resumed."""
    with capsys.disabled():
        print(f"\n{summary}")


def tf_config(task_type, task_id, workers=1, chief=True):
    cluster = {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)], "ps": ["127.0.0.1:1"]}
    if chief:
        cluster["chief"] = ["127.0.0.1:3000"]
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": task_id}})


@pytest.mark.parametrize(
    "value,prefix,is_chief",
    [
        ("", "input", True),
        ("{}", "input", True),
        # One worker replica in all: one stream, TF's plain name.
        (tf_config("worker", 0, workers=1, chief=False), "input", True),
        (tf_config("worker", 1, workers=2), "input_worker_1", False),
        (tf_config("chief", 0), "input_chief_0", True),
        (tf_config("evaluator", 0), "input_evaluator_0", False),
    ],
)
def test_prefix_from_tf_config(value, prefix, is_chief):
    assert task_from_tf_config(value) == Task(prefix, is_chief)


@pytest.mark.parametrize(
    "value,match",
    [
        ("{not json", "TF_CONFIG is not valid JSON"),
        ("[1]", "TF_CONFIG must be a JSON object"),
        (json.dumps({"cluster": {"worker": ["a", "b"]}}), "no task type and index"),
    ],
)
def test_bad_tf_config_is_a_value_error(value, match):
    with pytest.raises(ValueError, match=match):
        task_from_tf_config(value)


def test_hook_prefix_from_arguments_and_tf_config(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config("worker", 0))
    from_env = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=2)
    assert from_env.checkpoint_basename == "input_worker_0.ckpt"
    assert from_env.latest_filename == "checkpoint_input_worker_0"
    # Explicit arguments win over TF_CONFIG.
    hook = tc.CheckpointInputPipelineHook(
        checkpoint_dir=str(tmp_path), save_steps=2, task_type="worker", task_id=3
    )
    assert hook.checkpoint_basename == "input_worker_3.ckpt"
    train(3, hooks=[hook], make_dataset=range_dataset)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".index")) == [
        f"input_worker_3.ckpt-{s}.index" for s in (0, 2, 3)
    ]
    assert "checkpoint_input_worker_3" in os.listdir(tmp_path)
    monkeypatch.delenv("TF_CONFIG")
    plain = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=2)
    assert plain.checkpoint_basename == "input.ckpt"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"task_type": "worker"}, "task_type and task_id"),
        ({"task_id": 1}, "task_type and task_id"),
        ({"task_type": "", "task_id": 1}, "task_type"),
        ({"task_type": "worker", "task_id": -1}, "task_id"),
    ],
)
def test_bad_task_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=1, **kwargs)


def test_task_arguments_conflict_with_an_estimator(tmp_path):
    config = SimpleNamespace(
        num_worker_replicas=2, task_type="worker", task_id=0, is_chief=False,
        save_checkpoints_steps=2, save_checkpoints_secs=None,
    )
    estimator = SimpleNamespace(model_dir=str(tmp_path), config=config)
    with pytest.raises(ValueError, match="task_type / task_id"):
        tc.CheckpointInputPipelineHook(estimator, task_type="worker", task_id=0)


def test_non_chief_restores_its_newest_before_the_shared_step_without_warning(tmp_path, caplog):
    """The global step moved on (other workers): no warning, the newest one at or before it."""
    directory = str(tmp_path)
    expected = train(13)

    def worker_hook():
        return tc.CheckpointInputPipelineHook(
            checkpoint_dir=directory, save_steps=4, task_type="worker", task_id=1
        )

    # Input saved at 0, 4, 8; the model (the chief's, here this loop's) every 3 steps.
    train_until_crash(10, hooks=[worker_hook()], model_dir=directory, model_save_steps=3)
    assert tf.train.latest_checkpoint(directory).endswith("model.ckpt-9")
    with caplog.at_level(logging.INFO, logger="tfdata_checkpoint"):
        resumed = train(3, hooks=[worker_hook()], model_dir=directory, model_save_steps=3)
    assert resumed == expected[8:11]
    assert "newest input pipeline checkpoint at or before the shared global step 9" in caplog.text
    # The chief's warning about a model step without its input checkpoint is not given.
    # (Only the restore's loggers: a save may warn that it waited for the previous write.)
    restore_loggers = ("tfdata_checkpoint.hook", "tfdata_checkpoint._src.retention",
                       "tfdata_checkpoint._src.multi_worker")
    assert "No input pipeline checkpoint for the model" not in caplog.text
    assert not [
        r for r in caplog.records if r.name in restore_loggers and r.levelno >= logging.WARNING
    ]


@pytest.mark.skipif(not HAS_ESTIMATOR, reason="tf.estimator exists up to TF 2.15 only")
def test_estimator_cluster_worker_killed_and_restarted(make_cluster, capsys):
    report(capsys, run_kill_and_restart(make_cluster("estimator")))


def test_monitored_session_cluster_worker_killed_and_restarted(make_cluster, capsys):
    report(capsys, run_kill_and_restart(make_cluster("session")))
