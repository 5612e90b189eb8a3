"""Live capacity state: stock per (location, SKU), location handling and carrier parcels left."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from silkroute.routing.index import NetworkIndex


@dataclass
class CapacityState:
    """Remaining capacity for the day; `stock` is aligned with the index's SKU stock CSR."""

    stock: np.ndarray
    loc_left: np.ndarray
    car_left: np.ndarray
    _views: list[tuple[np.ndarray, np.ndarray, np.ndarray, Any, Any, Any]] = field(
        default_factory=list, init=False, repr=False, compare=False)
    # Router tables re-ranked without the carriers this state has used up (see router).
    tables: dict[tuple[float, int], dict[int, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def fresh(cls, index: NetworkIndex) -> CapacityState:
        """Start-of-day state: all stock on hand, full handling and carrier capacity."""
        return cls(index.stock0.copy(), index.loc_capacity.copy(), index.car_capacity.copy())

    def copy(self) -> CapacityState:
        return CapacityState(self.stock.copy(), self.loc_left.copy(), self.car_left.copy())

    def views(self) -> tuple[Any, Any, Any]:
        """(stock, loc_left, car_left) as memoryviews over the same memory: indexing them
        gives plain ints, much faster than numpy scalars; writes through either are shared.
        (Arrays that are not contiguous int64 are returned as they are.)"""
        v = self._views
        if not v or v[0][0] is not self.stock or v[0][1] is not self.loc_left \
                or v[0][2] is not self.car_left:
            v.clear()
            arrs: list[Any] = [
                memoryview(a.data) if a.dtype == np.int64 and a.flags.c_contiguous
                and a.flags.writeable else a
                for a in (self.stock, self.loc_left, self.car_left)]
            v.append((self.stock, self.loc_left, self.car_left, arrs[0], arrs[1], arrs[2]))
        return v[0][3], v[0][4], v[0][5]

    def available(self, index: NetworkIndex, sku_pos: int, loc_pos: int) -> int:
        e = index.hot().sku_entry[sku_pos].get(loc_pos)
        return int(self.stock[e]) if e is not None else 0

    def take_stock(self, index: NetworkIndex, sku_pos: int, loc_pos: int, qty: int) -> None:
        """Remove `qty` units; raises ValueError rather than let stock go negative."""
        e = index.hot().sku_entry[sku_pos].get(loc_pos) if sku_pos >= 0 else None
        stock = self.views()[0]
        if e is None or stock[e] < qty:
            raise ValueError(f"stock of SKU position {sku_pos} at location {loc_pos} too low")
        stock[e] -= qty

    def take(self, index: NetworkIndex, loc_pos: int, car_pos: int | None,
             line_pos: tuple[tuple[int, int], ...]) -> None:
        """`take_parcel` and then `take_stock` of each (SKU position, quantity), in one go."""
        self.take_parcel(loc_pos, car_pos)
        stock = self.views()[0]
        entries = index.hot().sku_entry
        for sku_pos, qty in line_pos:
            e = entries[sku_pos].get(loc_pos) if sku_pos >= 0 else None
            if e is None or stock[e] < qty:
                raise ValueError(
                    f"stock of SKU position {sku_pos} at location {loc_pos} too low")
            stock[e] -= qty

    def take_parcel(self, loc_pos: int, car_pos: int | None) -> None:
        """One parcel handled at a location and (unless collected there) given to a carrier."""
        _s, loc_left, car_left = self.views()
        if loc_left[loc_pos] <= 0:
            raise ValueError(f"location {loc_pos} has no handling capacity left")
        if car_pos is not None and car_left[car_pos] <= 0:
            raise ValueError(f"carrier {car_pos} has no capacity left")
        loc_left[loc_pos] -= 1
        if car_pos is not None:
            car_left[car_pos] -= 1
