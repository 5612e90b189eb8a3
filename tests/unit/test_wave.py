"""Wave planning: exact small cases, feasibility, the over-capacity share, Dask = one process."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from silkroute.commands.planning import register
from silkroute.routing.cost import CostModel
from silkroute.routing.index import build_index
from silkroute.routing.wave import (
    TARGET_OVER_SHARE,
    WaveProblem,
    build_wave,
    generate_wave,
    over_capacity_share,
)
from silkroute.routing.wave_solve import (
    DaskRunner,
    LocalRunner,
    region_blocks,
    solve_wave,
)
from silkroute.sim.network import NetworkSpec, generate_network

INF = math.inf


def _tiny(rest: bool = False) -> WaveProblem:
    """Six orders, three carriers (capacities 2, 2, 3), two locations (4, 3). The cheapest
    option of five orders is carrier 0, which takes two."""
    cost = np.array([
        [10.0, 14.0, 19.0],
        [11.0, 12.0, 20.0],
        [10.0, 16.0, 13.0],
        [12.0, 13.0, 15.0],
        [10.0, 11.0, INF],
        [14.0, 9.0, 18.0],
    ])
    car = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 2, 1], [0, 1, 0], [0, 1, 2]],
                   dtype=np.int32)
    loc = np.array([[0, 0, 1], [0, 1, 1], [0, 1, 1], [1, 0, 0], [0, 1, 0], [1, 0, 1]],
                   dtype=np.int32)
    rest_lb = np.full(6, INF)
    if rest:
        rest_lb[:] = [21.0, 21.0, 21.0, 21.0, 21.0, 21.0]
    return WaveProblem(cost, car, loc, rest_lb, np.array([2, 2, 3]), np.array([4, 3]),
                       np.array([0, 0, 1, 1, 0, 1]), regions=2)


def _brute(problem: WaveProblem) -> float:
    best = INF
    for combo in itertools.product(range(problem.width), repeat=problem.n):
        x = np.array(combo)
        if problem.is_feasible(x):
            best = min(best, problem.objective(x))
    return best


@pytest.mark.parametrize("rest", [False, True])
def test_tiny_instance_reaches_the_brute_force_optimum(rest: bool) -> None:
    problem = _tiny(rest)
    optimum = _brute(problem)
    plan = solve_wave(problem, max_iterations=300, target_gap=0.0)
    assert plan.feasible and problem.is_feasible(plan.choice)
    assert plan.cost == pytest.approx(optimum)
    assert plan.lower_bound <= plan.cost + 1e-9
    assert plan.lower_bound <= optimum + 1e-9


def test_bound_holds_for_the_full_option_set_after_pruning() -> None:
    """Keep two options per order, summarise the third in rest_lb: the bound must not exceed
    the optimum of the full problem."""
    full = _tiny()
    optimum = _brute(full)
    pruned = WaveProblem(full.cost[:, :2].copy(), full.car[:, :2].copy(),
                         full.loc[:, :2].copy(), full.cost[:, 2].copy(), full.car_cap,
                         full.loc_cap, full.region, full.regions)
    plan = solve_wave(pruned, max_iterations=300, target_gap=0.0)
    assert plan.lower_bound <= optimum + 1e-9
    if plan.feasible:
        assert pruned.is_feasible(plan.choice)
        assert plan.cost >= optimum - 1e-9


def test_over_capacity_share_on_a_hand_made_case() -> None:
    # loads 3, 1, 2 against capacities 2, 5, 1: carriers 0 and 2 are over, 5 of 6 parcels
    car = np.array([0, 0, 0, 1, 2, 2])
    assert over_capacity_share(car, np.array([2, 5, 1])) == pytest.approx(5 / 6)
    assert over_capacity_share(car, np.array([3, 1, 2])) == 0.0
    assert over_capacity_share(car, np.array([2, 0, 2])) == pytest.approx(4 / 6)


@pytest.fixture(scope="module")
def small() -> WaveProblem:
    net = generate_network(NetworkSpec(carriers=500, locations=150, seed=3,
                                       design_orders=10_000))
    index = build_index(net)
    wave = generate_wave(index, 6_000, seed=3)
    return build_wave(index, CostModel.for_currency(index.currency), wave, regions=4,
                      design_orders=10_000)


def test_generated_wave_is_tight_and_the_plan_feasible(small: WaveProblem) -> None:
    car0 = small.car[:, 0][np.isfinite(small.cost[:, 0])].astype(np.int64)
    share = over_capacity_share(car0, small.car_cap)
    assert share == pytest.approx(small.info["over_capacity_share"])
    assert share >= TARGET_OVER_SHARE
    plan = solve_wave(small, max_iterations=60)
    assert plan.feasible and small.is_feasible(plan.choice)
    assert plan.lower_bound <= plan.cost
    assert plan.cost == pytest.approx(small.objective(plan.choice))
    car_load, loc_load = small.loads(plan.choice)
    assert (car_load <= small.car_cap).all() and (loc_load <= small.loc_cap).all()


def test_dask_cluster_of_two_workers_gives_the_same_plan(small: WaveProblem) -> None:
    from dask.distributed import Client, LocalCluster

    local = solve_wave(small, LocalRunner(region_blocks(small)), max_iterations=40)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        runner = DaskRunner(client, region_blocks(small), token="test-wave")
        held = client.who_has(runner.futures)
        assert len({a for addrs in held.values() for a in addrs}) == 2  # regions on both
        remote = solve_wave(small, runner, max_iterations=40)
    assert remote.iterations == local.iterations
    assert remote.lower_bound == local.lower_bound
    assert remote.cost == local.cost
    assert np.array_equal(remote.choice, local.choice)
    assert np.array_equal(remote.car_price, local.car_price)


def test_plan_wave_command_prints_one_json_object() -> None:
    app = typer.Typer()
    bench = typer.Typer()
    register(app, bench)
    res = CliRunner().invoke(app, ["plan", "wave", "--orders", "2000", "--carriers", "300",
                                   "--locations", "100", "--seed", "2", "--time-limit", "20",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("orders", "carriers", "cost", "lower_bound", "gap_percent", "seconds",
                "over_capacity_share", "feasible"):
        assert key in out
    assert out["orders"] == 2000 and out["carriers"] == 300
    assert out["feasible"] is True
    assert out["lower_bound"] <= out["cost"]
