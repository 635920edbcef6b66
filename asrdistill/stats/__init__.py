"""Statistics for claims over few speakers: exact paired tests and bootstrap intervals (numpy only)."""
