"""Live capacity state: stock per (location, SKU), location handling and carrier parcels left."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from silkroute.routing.index import NetworkIndex


@dataclass
class CapacityState:
    """Remaining capacity for the day; `stock` is aligned with the index's SKU stock CSR."""

    stock: np.ndarray
    loc_left: np.ndarray
    car_left: np.ndarray

    @classmethod
    def fresh(cls, index: NetworkIndex) -> CapacityState:
        """Start-of-day state: all stock on hand, full handling and carrier capacity."""
        return cls(index.stock0.copy(), index.loc_capacity.copy(), index.car_capacity.copy())

    def copy(self) -> CapacityState:
        return CapacityState(self.stock.copy(), self.loc_left.copy(), self.car_left.copy())

    def available(self, index: NetworkIndex, sku_pos: int, loc_pos: int) -> int:
        lo, hi = index.sku_ptr[sku_pos], index.sku_ptr[sku_pos + 1]
        hits = np.flatnonzero(index.sku_loc[lo:hi] == loc_pos)
        return int(self.stock[lo + hits[0]]) if len(hits) else 0

    def take_stock(self, index: NetworkIndex, sku_pos: int, loc_pos: int, qty: int) -> None:
        """Remove `qty` units; raises ValueError rather than let stock go negative."""
        lo, hi = index.sku_ptr[sku_pos], index.sku_ptr[sku_pos + 1]
        hits = np.flatnonzero(index.sku_loc[lo:hi] == loc_pos)
        if not len(hits) or self.stock[lo + hits[0]] < qty:
            raise ValueError(f"stock of SKU position {sku_pos} at location {loc_pos} too low")
        self.stock[lo + hits[0]] -= qty

    def take_parcel(self, loc_pos: int, car_pos: int | None) -> None:
        """One parcel handled at a location and (unless collected there) given to a carrier."""
        if self.loc_left[loc_pos] <= 0:
            raise ValueError(f"location {loc_pos} has no handling capacity left")
        if car_pos is not None and self.car_left[car_pos] <= 0:
            raise ValueError(f"carrier {car_pos} has no capacity left")
        self.loc_left[loc_pos] -= 1
        if car_pos is not None:
            self.car_left[car_pos] -= 1
