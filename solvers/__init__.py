"""drt-dispatch solvers."""
