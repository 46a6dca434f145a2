"""What matters, on an emulated object store: run inside the test network namespace.

Not collected by the suite directly (the name does not match test_*.py):
test_object_stores.py starts the emulators in a network namespace and runs
this module there with pytest (workers/object_store_pytest.py), with TFDC_STORE
("gcs" or "s3") and TFDC_STORE_BUCKET (gs://tfdc or s3://tfdc) set.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

STORE = os.environ.get("TFDC_STORE")
BUCKET = os.environ.get("TFDC_STORE_BUCKET")
if not STORE or not BUCKET:
    pytest.skip("run by test_object_stores.py inside its network namespace",
                allow_module_level=True)
if STORE == "s3":
    import tensorflow_io  # noqa: F401 - registers s3://

import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.damage import flip_byte
from tests.support.hook_sessions import train, train_until_crash
from tests.support.kill_pipeline import make_dataset
from tests.support.subprocesses import child_env, worker_command
from tfdata_checkpoint._src.retention import CheckpointRetention
from tfdata_checkpoint.tools import cli

FOLLOWING = 4


@pytest.fixture
def url(request):
    """A fresh directory in the bucket."""
    return f"{BUCKET}/{request.node.name}-{uuid.uuid4().hex[:8]}"


def _ids(iterator, n):
    return [int(next(iterator)[0]) for _ in range(n)]


def _expected(step, n=FOLLOWING):
    return _ids(iter(make_dataset(0)), step + n)[step:]


def _child_env():
    return child_env(TF_CPP_MIN_LOG_LEVEL="2", OPENBLAS_NUM_THREADS="1")


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("num_shards", [1, 3])
def test_save_restore_round_trip(url, asynchronous, num_shards):
    iterator = iter(make_dataset(0))
    _ids(iterator, 7)
    prefix = f"{url}/input.ckpt-7"
    tc.save_iterator(iterator, prefix, num_shards=num_shards, asynchronous=asynchronous)
    if asynchronous:
        assert tc.wait_for_pending_saves() == [prefix]
    described = json.loads(tc.ops.describe_iterator_shards(prefix, verify=True).numpy())
    assert len(described["shards"]) == num_shards
    restored = iter(make_dataset(0))
    tc.restore_iterator(restored, prefix)
    assert _ids(restored, FOLLOWING) == _ids(iterator, FOLLOWING) == _expected(7)


def test_hook_resumes_at_the_model_step(url):
    expected = train(12)

    def hook():
        return tc.CheckpointInputPipelineHook(checkpoint_dir=url, save_steps=3)

    train_until_crash(8, hooks=[hook()], model_dir=url, model_save_steps=3)
    assert tf.train.latest_checkpoint(url).endswith("model.ckpt-6")
    assert train(4, hooks=[hook()], model_dir=url, model_save_steps=3) == expected[6:10]
    assert tf.train.latest_checkpoint(url, latest_filename="checkpoint_input").endswith(
        "input.ckpt-10")


def test_manager_async_retention(url):
    iterator = iter(make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, url, max_to_keep=2, save_steps=2,
                                           num_shards=2)
    for step in range(1, 8):
        next(iterator)
        manager.maybe_save(step)
    manager.wait()
    # Periodic saves land on multiples of save_steps (2, 4, 6); the newest two are kept.
    assert manager.checkpoints == [f"{url}/input.ckpt-4", f"{url}/input.ckpt-6"]
    names = tf.io.gfile.listdir(url)
    # Step 2's index is gone; of its shards, only those step 4 or 6 reads may stay.
    read = set()
    for prefix in manager.checkpoints:
        read |= set(json.loads(tc.ops.describe_iterator_shards(prefix).numpy())["referenced_files"])
    assert not [n for n in names if n.startswith("input.ckpt-2.") and n not in read]
    fresh = iter(make_dataset(0))
    assert tc.IteratorCheckpointManager(fresh, url).restore_or_initialize() == f"{url}/input.ckpt-6"
    assert _ids(fresh, FOLLOWING) == _expected(6)


KILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    import tensorflow as tf
    import tfdata_checkpoint as tc
    from tests.support.kill_pipeline import make_dataset
    {imports}
    iterator = iter(make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, sys.argv[1], max_to_keep=3, num_shards=2)
    step = 0
    while True:
        next(iterator)
        step += 1
        manager.save(step)
        if step == 2:
            manager.wait()
            print("COMMITTED", flush=True)
    """
)


def test_killed_writer_resumes_and_its_leftovers_go(url):
    """A writer SIGKILLed while saving back to back: the latest committed restores exactly,
    and the next save removes what the killed save left."""
    imports = "import tensorflow_io" if STORE == "s3" else ""
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER.format(imports=imports), url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_child_env())
    try:
        assert child.stdout.readline().strip() == "COMMITTED", child.stderr.read()[-2000:]
        time.sleep(0.5)  # a few saves later: most likely one is in flight
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    retention = CheckpointRetention(url, "input.ckpt", latest_filename="checkpoint_input")
    steps = retention.committed_steps()
    assert steps, "no checkpoint committed"
    for step in steps:
        tc.ops.describe_iterator_shards(retention.prefix(step), verify=True)
    iterator = iter(make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, url, max_to_keep=3, num_shards=2)
    latest = manager.restore_or_initialize()
    assert latest == retention.prefix(steps[-1])
    assert _ids(iterator, FOLLOWING) == _expected(steps[-1])
    manager.save(steps[-1] + FOLLOWING)
    manager.wait()
    committed = set(retention.committed_steps())
    # Its own shards, or (incremental saves) shards of earlier checkpoints it reads.
    read = set()
    for step in committed:
        info = json.loads(tc.ops.describe_iterator_shards(retention.prefix(step)).numpy())
        read |= {s["name"] for s in info["shards"]} | set(info.get("referenced_files", []))
    for name in tf.io.gfile.listdir(url):
        name = name.rstrip("/")
        if name.startswith("input.ckpt-"):
            step = int(name[len("input.ckpt-"):].split(".")[0])
            if ".data-" in name:
                assert name in read, f"{name} is read by no committed checkpoint"
            else:
                assert step in committed, f"{name} is no part of a committed checkpoint"


TRACKABLE_WRITER = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    import tfdata_checkpoint as tc
    from tests.support.kill_pipeline import make_dataset
    {imports}
    iterator = iter(make_dataset(0))
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(step=step, iterator=tc.TrackableIterator(iterator, num_shards=2))
    manager = tf.train.CheckpointManager(ckpt, sys.argv[1], max_to_keep=2)
    for n in range(1, 13):
        next(iterator)
        step.assign(n)
        if n % 3 == 0:
            manager.save(checkpoint_number=n)
    {exit}
    """
)
# tensorflow-io 0.36 aborts at interpreter exit (see object_store_pytest.py): on s3 the
# writer does what its atexit would (the sweep of TF checkpoints deleted at the last save),
# then leaves without the interpreter's teardown.
_S3_EXIT = ("from tfdata_checkpoint._src import beside_writes; beside_writes.sweep_all(); "
            "sys.stdout.flush(); import os; os._exit(0)")


def test_trackable_iterator_in_a_checkpoint_manager(url):
    """TrackableIterator inside tf.train.Checkpoint, kept by CheckpointManager(max_to_keep=2):
    another process restores the newest exactly; only the kept checkpoints have our files."""
    imports = "import tensorflow_io" if STORE == "s3" else ""
    writer = TRACKABLE_WRITER.format(imports=imports, exit=_S3_EXIT if STORE == "s3" else "")
    subprocess.run([sys.executable, "-c", writer, url],
                   check=True, env=_child_env(), timeout=600)
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(url)]
    kept = sorted(n[: -len(".index")] for n in names
                  if n.endswith(".index") and ".tfdc-" not in n)
    assert kept == ["ckpt-12", "ckpt-9"], names
    indexes = [n for n in names if ".tfdc-" in n and n.endswith(".index")]
    assert sorted(n.split(".tfdc-")[0] for n in indexes) == kept, indexes
    # Every data file of ours is read by a kept checkpoint: its own, or (incremental) referenced.
    read = set()
    for index in indexes:
        info = json.loads(tc.ops.describe_iterator_shards(
            f"{url}/{index[: -len('.index')]}", verify=True).numpy())
        read |= {shard["name"] for shard in info["shards"]} | set(info["referenced_files"])
    data = {n for n in names if ".tfdc-" in n and ".data-" in n}
    assert data == read, sorted(data ^ read)
    iterator = iter(make_dataset(0))
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(step=step, iterator=tc.TrackableIterator(iterator))
    manager = tf.train.CheckpointManager(ckpt, url, max_to_keep=2)
    assert manager.restore_or_initialize() == f"{url}/ckpt-12"
    assert int(step.numpy()) == 12
    assert _ids(iterator, FOLLOWING) == _expected(12)
    # The older kept checkpoint restores too (its chain of references is whole).
    older = iter(make_dataset(0))
    tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64),
                        iterator=tc.TrackableIterator(older)).read(f"{url}/ckpt-9")
    assert _ids(older, FOLLOWING) == _expected(9)


def test_saveable_in_a_tf1_saver(url):
    """make_saveable_from_iterator with a TF1 Saver writing to the bucket, restored in a new graph."""
    with tf.Graph().as_default():
        iterator = tf.compat.v1.data.make_one_shot_iterator(make_dataset(0))
        ident = iterator.get_next()[0]
        saver = tf.compat.v1.train.Saver(
            [tc.make_saveable_from_iterator(iterator)], max_to_keep=2)
        with tf.compat.v1.Session() as session:
            for n in range(1, 10):
                session.run(ident)
                if n % 3 == 0:
                    saver.save(session, f"{url}/model.ckpt", global_step=n)
    assert tf.train.latest_checkpoint(url) == f"{url}/model.ckpt-9"
    # The save of 9 swept ours of ckpt-3's predecessors; the Saver deleted ckpt-3 after it,
    # so ours of ckpt-3 go with the sweep the package repeats at exit (run here).
    tc.ops.sweep_beside_checkpoints_again()
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(url)]
    indexes = sorted(n.split(".tfdc-")[0] for n in names
                     if ".tfdc-" in n and n.endswith(".index"))
    assert indexes == ["model.ckpt-6", "model.ckpt-9"], names
    expected = _expected(9)
    with tf.Graph().as_default():
        iterator = tf.compat.v1.data.make_one_shot_iterator(make_dataset(0))
        ident = iterator.get_next()[0]
        saver = tf.compat.v1.train.Saver([tc.make_saveable_from_iterator(iterator)])
        with tf.compat.v1.Session() as session:
            saver.restore(session, f"{url}/model.ckpt-9")
            assert [int(session.run(ident)) for _ in range(FOLLOWING)] == expected


def test_corruption_is_detected_and_fallback_restores_the_previous(url, capsys):
    iterator = iter(make_dataset(0))
    manager = tc.IteratorCheckpointManager(iterator, url, num_shards=2)
    for step in (3, 6):
        _ids(iterator, 3)
        manager.save(step)
        manager.wait()
    shard = min(n for n in tf.io.gfile.listdir(url) if n.startswith("input.ckpt-6.data-"))
    flip_byte(f"{url}/{shard}", 100)
    with pytest.raises(tf.errors.DataLossError, match=shard):
        tc.restore_iterator(iter(make_dataset(0)), f"{url}/input.ckpt-6")
    capsys.readouterr()
    assert cli.main(["verify", url]) == 2
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "input.ckpt-6" in out and "OK" in out
    fresh = iter(make_dataset(0))
    restored = tc.IteratorCheckpointManager(fresh, url, on_corrupt="fallback").restore_or_initialize()
    assert restored == f"{url}/input.ckpt-3"
    assert _ids(fresh, FOLLOWING) == _expected(3)


def test_two_writers_on_one_prefix_are_not_detected(url):
    """The documented limit: no lock on an object store. Two processes writing the same
    checkpoints are not refused (no FailedPreconditionError); a writer may stop with a
    NotFoundError when the other's sweep deleted its uncommitted files; whatever they leave,
    each committed checkpoint either restores a right stream or fails with an error."""
    imports = "import tensorflow_io" if STORE == "s3" else ""
    code = KILLED_WRITER.format(imports=imports)
    children = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=_child_env())
                for _ in range(2)]
    stopped = []
    try:
        for child in children:
            if child.stdout.readline().strip() != "COMMITTED":
                stopped.append(child)
        time.sleep(0.5)
        stopped += [child for child in children if child not in stopped and child.poll() is not None]
    finally:
        for child in children:
            child.send_signal(signal.SIGKILL)
            child.wait()
    for child in stopped:
        stderr = child.stderr.read()
        raised = re.findall(r"^(?:tensorflow\.python\.framework\.errors_impl\.)?(\w+Error):",
                            stderr, re.MULTILINE)
        assert raised and raised[-1] == "NotFoundError", (
            f"a writer stopped otherwise than on a file the other deleted: {stderr[-2000:]}")
    assert len(stopped) < 2, "neither writer committed"
    retention = CheckpointRetention(url, "input.ckpt", latest_filename="checkpoint_input")
    outcomes = {"exact": 0, "error": 0}
    for step in retention.committed_steps():
        iterator = iter(make_dataset(0))
        try:
            tc.restore_iterator(iterator, retention.prefix(step))
        except (tf.errors.NotFoundError, tf.errors.DataLossError):
            outcomes["error"] += 1  # a shard deleted by the other writer's sweep
            continue
        assert _ids(iterator, FOLLOWING) == _expected(step), f"step {step}: a wrong stream"
        outcomes["exact"] += 1
    print(f"two writers on {STORE}: committed checkpoints {outcomes}")
    assert outcomes["exact"] + outcomes["error"] > 0


@pytest.mark.skipif(STORE != "gcs", reason="the fault-injecting relay serves gs:// only")
def test_commit_stopped_at_each_request_never_restores_a_wrong_stream(url):
    """GCS has no atomic rename (TF's rename is a rewrite, then a delete): the save of step 8
    after the commit of step 5 is stopped before each of its mutating requests in turn."""
    out = subprocess.run(
        worker_command("object_store_commit_trials", url, os.environ["TFDC_RELAY_CONTROL"]),
        capture_output=True, text=True, timeout=900, env=_child_env(), check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    dry = trials[0]
    assert dry.get("committed") == [5, 8], dry
    steps = dry["requests"]
    assert len(trials) == len(steps) + 2
    states = []
    for trial in trials:
        where = f"stopped before request {trial['hold']} of {len(steps)}: {trial}"
        assert "error" not in trial, where
        if 1 <= trial["hold"] <= len(steps):
            assert trial["held"], where
        assert set(trial["committed"]) <= {5, 8}, where
        assert 5 in trial["committed"], where  # the previous checkpoint stays
        assert all(trial["restored_exactly"].values()), where
        assert trial["latest"] == max(trial["committed"]) and trial["latest_exact"], where
        assert trial["leftovers_after_next_save"] == [], where
        states.append((trial["hold"], trial["committed"], trial["leftovers_before"]))
    # The last trial let the save finish: step 8 committed.
    assert trials[-1]["committed"] == [5, 8]
    requests = [f"{method} {path.split('?')[0]}" for method, path in steps]
    print(f"commit of step 8 on gs://: {len(steps)} mutating requests {requests}; "
          f"(stopped before request, committed steps, leftover files): {states}")
