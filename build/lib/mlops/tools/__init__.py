"""What runs around the system, never in Lambda: the CLI, the demo, the smoke test, one client for deployed
and local targets, sample data."""
