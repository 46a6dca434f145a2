"""Programs the benchmark runs in fresh processes (`python -m tfdata_checkpoint.tools.bench.jobs.<name>`).

Each prints one JSON line as its last line of output. The parent sets
`TF_CPP_MIN_LOG_LEVEL` in their environment: under `-m`, TensorFlow is imported
(by the `tfdata_checkpoint` package) before a job's own code runs.
"""
