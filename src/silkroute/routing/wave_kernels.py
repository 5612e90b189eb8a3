"""Compiled inner loops of wave planning (Numba): one pass over the data, no temporaries.

Each is a plain loop in a fixed order, so results are deterministic and equal whether a
region runs in this process or on a Dask worker."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]

#: options priced more than this many smoothing widths above an order's cheapest weigh less
#: than e^-40 (about 4e-18) of it: they are skipped
SMOOTH_CUT = 40.0


def smooth_rows(cost: FloatArray, car: npt.NDArray[np.int32], loc: npt.NDArray[np.int32],
                lam: FloatArray, mu: FloatArray, tau: float, overflow: float, n_car: int,
                n_loc: int) -> tuple[float, FloatArray, FloatArray]:
    """The entropy-smoothed subproblem of the rows (see `wave_solve.region_smooth`): the sum
    of the orders' soft minima and the option weights summed per carrier and per location.
    Every order also has an overflow option that uses no capacity and costs its cheapest
    option plus `overflow`: no price rises above that, even where the table cannot fit the
    capacities. Rows without any option are skipped. One thread: parallelism comes from
    running regions on Dask workers (threads that wait for each other lose badly on a
    shared machine)."""
    car_load = np.zeros(n_car)
    loc_load = np.zeros(n_loc)
    value = _smooth_range(cost, car, loc, np.ascontiguousarray(lam, dtype=np.float64),
                          np.ascontiguousarray(mu, dtype=np.float64), float(tau),
                          float(overflow), 0, cost.shape[0], car_load, loc_load)
    return float(value), car_load, loc_load


@njit(cache=True, nogil=True, fastmath={"afn", "contract"}, error_model="numpy")
def _smooth_range(cost: FloatArray, car: npt.NDArray[np.int32], loc: npt.NDArray[np.int32],
                  lam: FloatArray, mu: FloatArray, tau: float, overflow: float, lo: int,
                  hi: int, car_load: FloatArray, loc_load: FloatArray
                  ) -> float:  # pragma: no cover
    k = cost.shape[1]
    cut = SMOOTH_CUT * tau
    p = np.empty(k)
    total = 0.0
    for i in range(lo, hi):
        m = math.inf
        c0 = math.inf
        for j in range(k):
            c = cost[i, j]
            v = c + lam[car[i, j]] + mu[loc[i, j]] if c < math.inf else math.inf
            p[j] = v
            if v < m:
                m = v
            if c < c0:
                c0 = c
        if m == math.inf:
            continue
        over = c0 + overflow
        if over < m:
            m = over
        s = math.exp((m - over) / tau) if over - m < cut else 0.0
        for j in range(k):
            d = p[j] - m
            if d < cut:
                e = math.exp(-d / tau)
                p[j] = e
                s += e
            else:
                p[j] = 0.0
        total += m - tau * math.log(s)
        inv = 1.0 / s
        for j in range(k):
            if p[j] > 0.0:
                w = p[j] * inv
                car_load[car[i, j]] += w
                loc_load[loc[i, j]] += w
    return total


@njit(cache=True, nogil=True)
def key_ends(ptr: npt.NDArray[np.int64], key_car: npt.NDArray[np.int32], key_a: FloatArray,
             wlo: FloatArray, whi: FloatArray, car_b: FloatArray, car_maxw: FloatArray,
             lam: FloatArray, e_lo: FloatArray, e_hi: FloatArray, p_lo: npt.NDArray[np.int64],
             p_hi: npt.NDArray[np.int64]) -> None:  # pragma: no cover - compiled
    """Per key: the cheapest priced carrier at the class's lightest and heaviest weight
    (value and position in `key_car`, first on ties; inf and -1 where none; at the heaviest
    weight only carriers that can carry it)."""
    for q in range(len(wlo)):
        lo_v = math.inf
        hi_v = math.inf
        lo_p = -1
        hi_p = -1
        w0 = wlo[q]
        w1 = whi[q]
        for t in range(ptr[q], ptr[q + 1]):
            c = key_car[t]
            base = key_a[t] + lam[c]
            v = base + car_b[c] * w0
            if v < lo_v:
                lo_v = v
                lo_p = t
            if car_maxw[c] >= w1:
                v = base + car_b[c] * w1
                if v < hi_v:
                    hi_v = v
                    hi_p = t
        e_lo[q] = lo_v
        e_hi[q] = hi_v
        p_lo[q] = lo_p
        p_hi[q] = hi_p
