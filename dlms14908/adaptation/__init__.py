"""adaptation layer."""
