"""The BKM benchmark: ingestion, settlement and reads measured against raw PostgreSQL baselines."""
