"""Speed, cost and statistics scripts: each prints one table (``python -m benchmarks.scripts.<name>``)."""
