"""SavePolicy: when a checkpoint is due (SecondOrStepTimer semantics)."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tfdata_checkpoint._src.policy.save_policy import SavePolicy


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_first_step_is_always_due_and_same_step_never_twice():
    policy = SavePolicy(save_steps=10)
    assert policy.last_saved_step is None
    assert policy.should_save(7)
    policy.record_save(7)
    assert policy.last_saved_step == 7
    assert not policy.should_save(7)


def test_save_steps_counts_from_last_save():
    policy = SavePolicy(save_steps=3)
    policy.record_save(0)
    assert [s for s in range(1, 10) if policy.should_save(s)] == [3, 4, 5, 6, 7, 8, 9]
    policy.record_save(4)  # a late save moves the next due step
    assert [s for s in range(5, 12) if policy.should_save(s)] == [7, 8, 9, 10, 11]


def test_save_secs_uses_the_injected_clock_not_steps():
    clock = FakeClock()
    policy = SavePolicy(save_secs=60, clock=clock)
    policy.record_save(0)
    assert not policy.should_save(1000)  # many steps, no time
    clock.now += 59.9
    assert not policy.should_save(1001)
    clock.now += 0.1
    assert policy.should_save(1002)
    policy.record_save(1002)
    assert not policy.should_save(1003)
    assert not policy.should_save(1002)


def test_same_step_is_not_due_even_after_the_interval():
    clock = FakeClock()
    policy = SavePolicy(save_secs=1, clock=clock)
    policy.record_save(5)
    clock.now += 100
    assert not policy.should_save(5)
    assert policy.should_save(6)


def test_reset_makes_the_next_step_due():
    policy = SavePolicy(save_steps=100)
    policy.record_save(0)
    assert not policy.should_save(1)
    policy.reset()
    assert policy.should_save(1)


@pytest.mark.parametrize("steps,secs", [(3, None), (None, 2.5)])
def test_matches_tf_second_or_step_timer(monkeypatch, steps, secs):
    clock = FakeClock()
    ours = SavePolicy(save_steps=steps, save_secs=secs, clock=clock)
    # TF's timer reads time.time; drive both from the same fake clock.
    monkeypatch.setattr("time.time", clock)
    theirs = tf.compat.v1.train.SecondOrStepTimer(every_secs=secs, every_steps=steps)
    decisions = []
    for step in [0, 0, 1, 2, 3, 3, 4, 5, 6, 7, 9, 12, 13, 14, 20]:
        clock.now += 0.7
        mine = ours.should_save(step)
        assert mine == theirs.should_trigger_for_step(step), step
        if mine:
            ours.record_save(step)
            theirs.update_last_triggered_step(step)
        decisions.append(mine)
    assert any(decisions) and not all(decisions)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({}, "save_steps"),
        ({"save_steps": 1, "save_secs": 1}, "save_steps"),
        ({"save_steps": 0}, "save_steps"),
        ({"save_steps": -2}, "save_steps"),
        ({"save_steps": True}, "save_steps"),
        ({"save_secs": 0}, "save_secs"),
        ({"save_secs": "10"}, "save_secs"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SavePolicy(**kwargs)
