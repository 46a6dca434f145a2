"""What the benchmark measures: a buffer of a kind and size, its data and its filled iterator."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Scenario:
    """A `kind` ('shuffle' or 'prefetch') buffer of `buffer_mib` MiB in `element_kib` KiB elements.

    The elements are made by a map with `map_parallel_calls` parallel calls,
    which holds up to that many finished elements of its own; 0 makes it
    sequential and turns off tf.data's injected prefetch (an autotuned buffer
    after the last asynchronous op, whose size grows when elements are taken
    fast), so that the scenario's buffer is the only one: after k elements are
    taken, at most k elements of the state are new.
    """

    name: str
    buffer_mib: int
    element_kib: int
    kind: str = "shuffle"
    map_parallel_calls: int = 2

    @property
    def element_floats(self) -> int:
        return self.element_kib * 1024 // 4

    @property
    def buffer_elements(self) -> int:
        return max(1, self.buffer_mib * 1024 // self.element_kib)

    @property
    def buffer_bytes(self) -> int:
        return self.buffer_elements * self.element_kib * 1024


def default_scenarios(buffer_mib: int = 1024) -> list[Scenario]:
    """The benchmark's scenarios: large elements, many small ones, a prefetch buffer."""
    return [
        Scenario(f"shuffle {buffer_mib} MiB / 4 MiB elements", buffer_mib, 4096),
        Scenario(f"shuffle {buffer_mib} MiB / 4 KiB elements", buffer_mib, 4),
        Scenario(f"prefetch {buffer_mib} MiB / 16 MiB elements", buffer_mib, 16384, "prefetch"),
    ]


def scaling_scenarios(sizes_mib: list[int]) -> list[Scenario]:
    """Shuffle buffers of 4 MiB elements of growing size, to show how each cost grows."""
    return [Scenario(f"scaling {s} MiB / 4 MiB elements", s, 4096) for s in sizes_mib]


def make_dataset(scenario: Scenario):
    """Incompressible float32 elements with an id, through the scenario's buffer."""
    import tensorflow as tf

    floats = scenario.element_floats

    def element(i):
        return i, tf.random.stateless_uniform([floats], seed=[i, 1])

    ds = tf.data.Dataset.range(1 << 40).map(
        element, num_parallel_calls=scenario.map_parallel_calls or None)
    if scenario.kind == "shuffle":
        ds = ds.shuffle(scenario.buffer_elements, seed=5)
    elif scenario.kind == "prefetch":
        ds = ds.prefetch(scenario.buffer_elements)
    else:
        raise ValueError(f"unknown scenario kind {scenario.kind!r}")
    if scenario.map_parallel_calls == 0:
        options = tf.data.Options()
        options.experimental_optimization.inject_prefetch = False
        ds = ds.with_options(options)
    return ds


def make_estimator_dataset(scenario: Scenario):
    """The scenario's dataset as an Estimator's input_fn gives it: ({"x": payload}, id)."""
    return make_dataset(scenario).map(lambda i, x: ({"x": x}, i))


def fingerprint(element) -> list:
    """[id, 64-bit BLAKE2b of the payload's bytes] of an element of either dataset above.

    Two streams are the same when their fingerprints are: the id says which
    element, the digest that its payload came back bit for bit.
    """
    import hashlib

    if isinstance(element[0], dict):
        payload, ident = element[0]["x"], element[1]
    else:
        ident, payload = element
    digest = hashlib.blake2b(payload.numpy().tobytes(), digest_size=8).hexdigest()
    return [int(ident), digest]


def filled_iterator(scenario: Scenario):
    """An iterator whose buffer is full."""
    it = iter(make_dataset(scenario))
    next(it)  # A shuffle buffer is full once the first element is out.
    if scenario.kind == "prefetch":
        # A prefetch buffer fills in the background; give it the time to.
        time.sleep(1.0 + scenario.buffer_mib / 256)
    return it


