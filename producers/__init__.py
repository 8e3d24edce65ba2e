"""drt-dispatch producers."""
