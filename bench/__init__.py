"""The studio's benchmarks: ``python -m bench`` runs every section, each in its own process, and prints one
table (with the issue's targets and a pass/miss column) that it also writes as JSON."""
