"""Oracle harness: independent DLMS implementations run in their own venv, as separate processes."""
