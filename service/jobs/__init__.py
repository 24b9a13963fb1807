"""Training jobs: the pure task a worker runs, executors (local processes, Dask), the supervisor."""
