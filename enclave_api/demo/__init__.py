"""Deterministic demo data: synthetic hospital registries and the WDBC reference data set."""
