"""Fault injection on the local stack: HTTP-layer and adapter-layer faults, killed workers,
duplicate deliveries and poison messages, each followed by an invariant check."""
