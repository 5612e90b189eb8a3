"""`serve --threads`: how many endpoint calls a worker process runs at once."""

from __future__ import annotations

import logging

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from silkroute.api.app import create_app
from silkroute.api.background import group_from_env, interval_from_env, threads_from_env
from silkroute.api.tuning import DEFAULT_GROUP, DEFAULT_THREADS, GROUP_ENV, THREADS_ENV
from silkroute.cli import app as cli
from silkroute.store.engine import make_engine


@pytest.mark.parametrize("raw,threads", [("5", 5), ("", DEFAULT_THREADS), ("0", 1),
                                         (" 12 ", 12)])
def test_threads_come_from_the_environment(monkeypatch, raw, threads) -> None:
    monkeypatch.setenv(THREADS_ENV, raw)
    assert threads_from_env() == threads


def test_threads_that_are_not_a_number_fall_back_to_the_default_with_a_warning(
        monkeypatch, caplog) -> None:
    monkeypatch.setenv(THREADS_ENV, "many")
    with caplog.at_level(logging.WARNING, logger="silkroute.jobs"):
        assert threads_from_env() == DEFAULT_THREADS == 8
    assert "$SILKROUTE_THREADS='many' is not a whole number of threads; using 8" in caplog.text


@pytest.mark.parametrize("threads,tokens", [(3, 3), (0, 40)])
def test_an_app_runs_at_most_its_threads_of_endpoint_calls(threads, tokens) -> None:
    app = create_app(make_engine("sqlite://"), threads=threads)

    @app.get("/limit")
    async def limit() -> int:
        return int(anyio.to_thread.current_default_thread_limiter().total_tokens)

    with TestClient(app) as client:
        assert client.get("/limit").json() == tokens  # 0: anyio's default stays


def test_serve_refuses_zero_threads_naming_the_option() -> None:
    result = CliRunner().invoke(cli, ["serve", "--threads", "0"])
    assert result.exit_code == 2
    assert result.output == ("error: root serve: Invalid value for '--threads': Input should "
                             "be greater than or equal to 1\n")


@pytest.mark.parametrize("raw,seconds", [("60", 60.0), ("", 300.0), ("-5", 0.0),
                                         ("0.5", 0.5)])
def test_the_jobs_interval_comes_from_the_environment(monkeypatch, raw, seconds) -> None:
    monkeypatch.setenv("SILKROUTE_JOBS_INTERVAL", raw)
    assert interval_from_env() == seconds


def test_an_interval_that_is_not_a_number_falls_back_to_300_s(monkeypatch, caplog) -> None:
    monkeypatch.setenv("SILKROUTE_JOBS_INTERVAL", "hourly")
    with caplog.at_level(logging.WARNING, logger="silkroute.jobs"):
        assert interval_from_env() == 300.0
    assert ("$SILKROUTE_JOBS_INTERVAL='hourly' is not a number of seconds between job runs; "
            "using 300.0") in caplog.text


def test_a_server_app_freezes_its_startup_heap_and_a_plain_app_does_not() -> None:
    import gc

    gc.unfreeze()
    try:
        plain = create_app(make_engine("sqlite://"))
        with TestClient(plain):
            assert gc.get_freeze_count() == 0
        server = create_app(make_engine("sqlite://"), freeze_heap=True)  # as serve's
        with TestClient(server):
            assert gc.get_freeze_count() > 10_000  # the modules and the app, at least
    finally:
        gc.unfreeze()


# `serve --buy-now-group`: concurrent buy-nows a worker runs together (PostgreSQL) -------
@pytest.mark.parametrize("raw,size", [("16", 16), ("", DEFAULT_GROUP), ("0", 0), ("-3", 0)])
def test_the_group_size_comes_from_the_environment(monkeypatch, raw, size) -> None:
    monkeypatch.setenv(GROUP_ENV, raw)
    assert group_from_env() == size


def test_a_group_size_that_is_not_a_number_falls_back_to_the_default_with_a_warning(
        monkeypatch, caplog) -> None:
    monkeypatch.setenv(GROUP_ENV, "lots")
    with caplog.at_level(logging.WARNING, logger="silkroute.jobs"):
        assert group_from_env() == DEFAULT_GROUP == 64
    assert ("$SILKROUTE_BUY_NOW_GROUP='lots' is not a whole number of requests; using 64"
            in caplog.text)


def test_serve_refuses_a_negative_group_size_naming_the_option() -> None:
    result = CliRunner().invoke(cli, ["serve", "--buy-now-group", "-1"])
    assert result.exit_code == 2
    assert result.output == ("error: root serve: Invalid value for '--buy-now-group': Input "
                             "should be greater than or equal to 0\n")


def test_an_app_on_sqlite_runs_no_groups_whatever_it_is_asked() -> None:
    app = create_app(make_engine("sqlite://"), buy_now_group=64)
    assert app.state.buy_now_groups is None
