"""cosem layer."""
