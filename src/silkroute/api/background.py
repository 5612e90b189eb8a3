"""The jobs loop inside `serve`: a daemon thread started and stopped with the app."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from silkroute.api.tuning import DEFAULT_THREADS, THREADS_ENV
from silkroute.services.jobs import JobSettings, run_jobs
from silkroute.store.uow import UnitOfWork

log = logging.getLogger("silkroute.jobs")
INTERVAL_ENV = "SILKROUTE_JOBS_INTERVAL"
DEFAULT_INTERVAL = 300.0  # seconds, in `serve`; apps built by create_app run none


def threads_from_env() -> int:
    """$SILKROUTE_THREADS endpoint threads per worker (set by `serve --threads`)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    try:
        return max(1, int(raw)) if raw else DEFAULT_THREADS
    except ValueError:
        log.warning("$%s=%r is not a whole number; using %s threads", THREADS_ENV, raw,
                    DEFAULT_THREADS)
        return DEFAULT_THREADS


def interval_from_env() -> float:
    """$SILKROUTE_JOBS_INTERVAL seconds (0 turns the loop off); default 300."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_INTERVAL
    except ValueError:
        log.warning("$%s=%r is not a number; jobs run every %s s", INTERVAL_ENV, raw,
                    DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL


def _loop(app: FastAPI, interval: float, stop: threading.Event) -> None:
    engine = app.state.engine
    while not stop.wait(interval):
        try:
            report = run_jobs(lambda: UnitOfWork(engine), JobSettings.from_env())
            app.state.last_jobs_report = report.as_dict()
        except Exception:  # keep serving; the next round tries again
            log.exception("periodic jobs failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    threads = int(getattr(app.state, "threads", 0) or 0)
    if threads > 0:  # at most this many endpoint calls at once in this process
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    interval = float(getattr(app.state, "jobs_interval", 0) or 0)
    stop = threading.Event()
    thread = None
    if interval > 0:
        thread = threading.Thread(target=_loop, args=(app, interval, stop),
                                  name="silkroute-jobs", daemon=True)
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
