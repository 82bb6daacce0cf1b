"""Offline AWS: resources in moto created from the project's own definitions."""
