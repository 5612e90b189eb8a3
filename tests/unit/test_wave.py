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
    plan = solve_wave(small, max_iterations=400)
    assert plan.table is not None
    assert plan.feasible and plan.table.is_feasible(plan.choice)
    assert plan.lower_bound <= plan.cost
    assert plan.cost == pytest.approx(plan.table.objective(plan.choice))
    car_load, loc_load = plan.table.loads(plan.choice)
    assert (car_load <= small.car_cap).all() and (loc_load <= small.loc_cap).all()


def test_dask_cluster_of_two_workers_gives_the_same_plan(small: WaveProblem) -> None:
    from dask.distributed import Client, LocalCluster

    local = solve_wave(small, LocalRunner(region_blocks(small)), max_iterations=300,
                       target_gap=0.0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        runner = DaskRunner(client, region_blocks(small), token="test-wave")
        held = client.who_has(runner.futures)
        assert len({a for addrs in held.values() for a in addrs}) == 2  # regions on both
        remote = solve_wave(small, runner, max_iterations=300, target_gap=0.0)
    assert local.table is not None and remote.table is not None
    assert remote.table.width == local.table.width > small.width  # columns were generated
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


# ---- the option catalog: priced bounds and column generation --------------------------

@pytest.fixture(scope="module")
def pair() -> tuple[WaveProblem, WaveProblem]:
    """A small wave built twice: pruned hard (3 carriers per key plus one national one, the
    cheapest-looking location, 4 options per order), and with nothing pruned (every
    stocking location × every carrier: the full problem), with the pruned problem's
    capacities."""
    net = generate_network(NetworkSpec(carriers=400, locations=40, seed=5, design_orders=1_000))
    index = build_index(net)
    model = CostModel.for_currency(index.currency)
    wave = generate_wave(index, 300, seed=5)
    pruned = build_wave(index, model, wave, regions=2, width=4, per_key=3, backbone=1,
                        max_locations=1, design_orders=1_000)
    most = int(np.diff(index.sku_ptr).max())
    full = build_wave(index, model, wave, regions=2, width=10_000, per_key=400, backbone=0,
                      max_locations=most, design_orders=1_000)
    assert np.isinf(full.rest_lb).all()  # nothing left out
    full = WaveProblem(full.cost, full.car, full.loc, full.rest_lb, pruned.car_cap,
                       pruned.loc_cap, full.region, full.regions)
    return pruned, full


def _full_options(full: WaveProblem, i: int) -> dict[tuple[int, int], float]:
    ok = np.isfinite(full.cost[i])
    return {(int(c), int(lp)): float(v) for c, lp, v in
            zip(full.car[i][ok], full.loc[i][ok], full.cost[i][ok], strict=True)}


def _lp(problem: WaveProblem) -> float:
    """The LP relaxation of the problem, by HiGHS through SciPy."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    rows, cols = np.nonzero(np.isfinite(problem.cost))
    nv = len(rows)
    v = np.arange(nv)
    eq = coo_matrix((np.ones(nv), (rows, v)), shape=(problem.n, nv))
    n_car = len(problem.car_cap)
    ub = coo_matrix((np.ones(2 * nv), (np.r_[problem.car[rows, cols],
                                             n_car + problem.loc[rows, cols]], np.r_[v, v])),
                    shape=(n_car + len(problem.loc_cap), nv))
    res = linprog(problem.cost[rows, cols], A_ub=ub.tocsr(),
                  b_ub=np.r_[problem.car_cap, problem.loc_cap], A_eq=eq.tocsr(),
                  b_eq=np.ones(problem.n), bounds=(0, 1), method="highs")
    assert res.status == 0
    return float(res.fun)


def test_catalog_bound_is_below_every_option_at_any_prices(
        pair: tuple[WaveProblem, WaveProblem]) -> None:
    pruned, full = pair
    cat = pruned.catalog
    assert cat is not None
    rng = np.random.default_rng(0)
    for scale in (0.0, 50.0, 500.0):
        lam = rng.random(len(full.car_cap)) * scale
        mu = rng.random(len(full.loc_cap)) * scale
        priced = np.where(np.isfinite(full.cost), full.cost + lam[full.car] + mu[full.loc],
                          np.inf)
        exact = priced.min(axis=1)
        bound = cat.rest_bound(lam, mu)
        assert (bound <= exact + 1e-9).all()
        # tight where one carrier is cheapest at both ends of the class: mostly
        assert np.mean(bound >= exact - 1e-6) > 0.8


def test_price_out_offers_real_options_cheaper_than_the_table(
        pair: tuple[WaveProblem, WaveProblem]) -> None:
    pruned, full = pair
    cat = pruned.catalog
    assert cat is not None
    rng = np.random.default_rng(1)
    lam = rng.random(len(full.car_cap)) * 400.0
    mu = rng.random(len(full.loc_cap)) * 100.0
    best = (pruned.cost + lam[pruned.car] + mu[pruned.loc]).min(axis=1)
    _, columns = cat.price_out(lam, mu, best, 1e-6)
    assert len(columns) >= 2
    seen = 0
    for j, (rows, cost, car, loc) in enumerate(columns):
        assert len(np.unique(rows)) == len(rows)  # one option per order per column
        for i, c, lp, v in zip(rows.tolist(), car.tolist(), loc.tolist(), cost.tolist(),
                               strict=True):
            options = _full_options(full, i)
            assert options[(c, lp)] == pytest.approx(v, abs=1e-6)  # a real option, its cost
            assert v + lam[c] + mu[lp] < best[i] - 1e-6  # cheaper at these prices
            if j:  # later columns are no cheaper than the first one of the same order
                first = columns[0]
                k = int(np.flatnonzero(first[0] == i)[0])
                assert first[1][k] + lam[first[2][k]] + mu[first[3][k]] <= \
                    v + lam[c] + mu[lp] + 1e-9
            seen += 1
    assert seen >= 40


@pytest.mark.parametrize("warm", [0, 100])
def test_column_generation_bounds_the_full_problem(
        pair: tuple[WaveProblem, WaveProblem], warm: int) -> None:
    """The bound holds for the full problem (below its LP), the plan uses real options of
    the full problem within the capacities, and the two are close."""
    pruned, full = pair
    lp_full = _lp(full)
    lp_pruned = _lp(WaveProblem(pruned.cost, pruned.car, pruned.loc, pruned.rest_lb,
                                pruned.car_cap, pruned.loc_cap, pruned.region))
    assert lp_full < lp_pruned - 1.0  # pruning costs something: columns are needed
    plan = solve_wave(pruned, target_gap=0.0, warm_start_orders=warm)
    assert plan.table is not None and plan.feasible
    assert plan.table.width > pruned.width
    assert plan.lower_bound <= lp_full + 1e-6
    assert plan.cost >= lp_full - 1e-6
    assert plan.table.is_feasible(plan.choice)
    for i, k in enumerate(plan.choice.tolist()):
        c, lp = int(plan.table.car[i, k]), int(plan.table.loc[i, k])
        assert _full_options(full, i)[(c, lp)] == pytest.approx(plan.table.cost[i, k])
    assert plan.gap_percent < 1.0
    assert plan.cost < lp_pruned  # generated columns beat the pruned table's LP


def test_subset_scales_capacities_and_keeps_each_orders_options(
        pair: tuple[WaveProblem, WaveProblem]) -> None:
    pruned, _ = pair
    rows = np.arange(0, pruned.n, 3)
    sub = pruned.subset(rows)
    assert sub.n == 100
    assert np.allclose(sub.car_cap, pruned.car_cap * 100 / 300)
    assert sub.catalog is not None and pruned.catalog is not None
    lam = np.linspace(0.0, 90.0, len(pruned.car_cap))
    mu = np.linspace(30.0, 0.0, len(pruned.loc_cap))
    assert np.array_equal(sub.catalog.rest_bound(lam, mu),
                          pruned.catalog.rest_bound(lam, mu)[rows])


def test_plan_wave_command_reports_the_sample_and_the_rounds() -> None:
    """20,000 orders: prices first come from a sample of 10,000, then rounds on the wave."""
    app = typer.Typer()
    register(app, typer.Typer())
    res = CliRunner().invoke(app, ["plan", "wave", "--orders", "20000", "--carriers", "300",
                                   "--locations", "100", "--seed", "2"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "sample of 10,000 orders, round 0 (" in out
    assert "round 0 (" in out and "no plan yet" in out
    assert "wave plan: 20,000 orders, 300 carriers, 100 locations" in out
    assert "feasible" in out and "True" in out
    assert "option columns generated" in out


def test_a_solve_cut_short_in_the_sample_stage_still_returns_a_plan(small: WaveProblem) -> None:
    """Ten evaluations are spent in the sample stage (6,000 orders, sample of 2,000): the
    whole wave gets no climb of its own, yet a feasible plan from the sample's prices.
    (L-BFGS-B may finish the line search it is in: 10 or a few more evaluations.)"""
    plan = solve_wave(small, max_iterations=10, warm_start_orders=2_000)
    assert 10 <= plan.iterations <= 13
    assert all("sample" in h for h in plan.history[:-1]) and "sample" not in plan.history[-1]
    assert plan.table is not None and plan.feasible
    assert plan.table.is_feasible(plan.choice)
    assert plan.lower_bound <= plan.cost


def test_plan_wave_refuses_zero_evaluations_with_a_one_line_error() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = str(Path(sys.executable).parent / "silkroute")
    res = subprocess.run([script, "plan", "wave", "--orders", "10", "--max-iterations", "0",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.strip() == ("error: silkroute plan wave: Invalid value for "
                                  "'--max-iterations': Input should be greater than or "
                                  "equal to 1")
