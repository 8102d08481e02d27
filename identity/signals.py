"""Signal handlers of the identity app (connected from apps.py). Each area adds its own here."""
