"""The README's custom-training-loop example runs as written, and saves where the model does."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import tensorflow as tf

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- readme-manager-example -->"


def readme_manager_example() -> str:
    """The Python block right after the marker in README.md."""
    text = README.read_text()
    assert MARKER in text, f"{MARKER} is missing from {README}"
    match = re.match(r"\s*```python\n(.*?)\n```", text.split(MARKER, 1)[1], re.DOTALL)
    assert match, "no ```python block after the marker"
    return match.group(1)


def _run(program: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", program], cwd=cwd, capture_output=True,
                          text=True, timeout=900, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _steps(directory: pathlib.Path, basename: str) -> list[int]:
    return sorted(int(n[len(basename) + 1 : -len(".index")]) for n in os.listdir(directory)
                  if n.startswith(basename + "-") and n.endswith(".index"))


def test_readme_manager_example_runs_and_resumes_at_the_models_step(tmp_path):
    program = readme_manager_example()
    first = _run(program, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _steps(tmp_path / "run" / "model", "ckpt") == [3000, 4000, 5000]
    assert _steps(tmp_path / "run" / "input", "input.ckpt") == [1000, 2000, 3000, 4000, 5000]

    # Pre-empted after the model's step-4000 save: the model is back at 4000,
    # the input checkpoint of exactly that step is restored (no warning about
    # reading steps again), and training goes on to 5000.
    model_dir = str(tmp_path / "run" / "model")
    for name in os.listdir(model_dir):
        if name.startswith("ckpt-5000."):
            os.remove(os.path.join(model_dir, name))
    tf.compat.v1.train.update_checkpoint_state(
        model_dir, os.path.join(model_dir, "ckpt-4000"),
        all_model_checkpoint_paths=[os.path.join(model_dir, f"ckpt-{s}") for s in (3000, 4000)])
    second = _run(program, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "read again" not in second.stderr and "starts over" not in second.stderr, (
        second.stderr[-3000:])
    assert _steps(tmp_path / "run" / "model", "ckpt") == [3000, 4000, 5000]
    assert _steps(tmp_path / "run" / "input", "input.ckpt") == [1000, 2000, 3000, 4000, 5000]
