"""Data sources: each turns what a user has on disk into a SourceScan."""
