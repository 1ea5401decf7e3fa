"""xdlms layer."""
