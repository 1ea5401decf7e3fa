"""analyzer layer."""
