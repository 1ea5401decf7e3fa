"""lon layer."""
