"""drt-dispatch dispatcher."""
