"""Snapshot journal models (see the snapshot-journal issue)."""
