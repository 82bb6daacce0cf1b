"""The edge of a Lambda: resource names from the environment to adapters, and what the thin handlers share."""
