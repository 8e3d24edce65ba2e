"""drt-dispatch schemas."""
