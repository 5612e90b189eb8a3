"""Pure domain model and rules: money, catalogue, stock, orders, network. No I/O."""
