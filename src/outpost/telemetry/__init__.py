"""The data pole: telemetry ingestion, the time-series store, queries, retention."""
