"""The logistics brain: fulfilment policies, network index, router, batch allocator. No I/O."""
