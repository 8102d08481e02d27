"""gunicorn hooks for multiprocess metrics (``--config python:csm.gunicorn_metrics``; scripts/start adds it when
``PROMETHEUS_MULTIPROC_DIR`` is set, docs/operations.md): a worker that exits stops counting in live gauges.
Its counters and histograms stay in the sum, as Prometheus expects of a counter."""


def child_exit(server, worker):
    from prometheus_client import multiprocess  # only with PROMETHEUS_MULTIPROC_DIR set

    multiprocess.mark_process_dead(worker.pid)
