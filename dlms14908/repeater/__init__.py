"""repeater layer."""
