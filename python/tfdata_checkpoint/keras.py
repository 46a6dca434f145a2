"""Keras `model.fit` with its input pipeline resumed exactly: `BackupAndRestore`.

```python
import tfdata_checkpoint.keras

backup = tfdata_checkpoint.keras.BackupAndRestore("/ckpts/backup", save_freq=100)
model.fit(backup.resumable(dataset.repeat()), epochs=10, steps_per_epoch=500,
          callbacks=[backup])
```

`BackupAndRestore` is the framework's own `tf.keras.callbacks.BackupAndRestore`
(tf.keras 2 on TF <= 2.15, Keras 3 on TF >= 2.16): same arguments, same files
in `backup_dir`, same semantics for the model. It also saves the position of
the iterator `fit` makes of `backup.resumable(dataset)` into
`<backup_dir>/input_pipeline` just before each model backup, and restores it
when the model backup is restored:

- tf.keras 2: interrupted mid-epoch and run again, the batches of both runs
  together are exactly those of the uninterrupted run, and as many.
- Keras 3: the input continues exactly where the backup was taken; Keras 3
  itself restores only the epoch, so the interrupted epoch's steps are run
  again in full (on new batches): more steps in total than an uninterrupted
  run, none of them repeating a batch.

Pre-emption: `BackupAndRestore(..., preemption_signals=(signal.SIGTERM,))`
(keyword-only; none by default). On the signal the batch in flight finishes,
the input and the model are backed up at it, and `fit` returns early
(`backup.preempted`); that backup is kept for the restart (tf.keras 2 resumes
at the next batch; Keras 3 re-runs that epoch's steps on the input continuing
where it stopped). `save_freq=False` backs up on pre-emption only. tf.keras 2's
`save_before_preemption=True` is refused: pass `preemption_signals`. See
docs/PREEMPTION.md.

Refused with a `ValueError` naming what to change: an input that is not a
`tf.data.Dataset` made resumable; a distribution strategy scope; a dataset
that `fit` would iterate afresh within the run (pass `steps_per_epoch` and
`dataset.repeat()`). `class_weight` works. See the README, Keras.
"""

from tfdata_checkpoint._src.keras_callbacks import IS_KERAS_3, BackupAndRestore

__all__ = ["IS_KERAS_3", "BackupAndRestore"]
