"""Domain records and ports: what every layer shares (no numpy, no pandas)."""
