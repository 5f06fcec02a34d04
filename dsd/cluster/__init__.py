"""Cluster sweeps: a run's untrained models as tasks (`sweep`) on an executor behind one small
protocol, Slurm through submitit or local processes (`executors`)."""
