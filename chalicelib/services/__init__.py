"""Application services: load objects, apply a domain rule, call PSPs, commit atomically."""
