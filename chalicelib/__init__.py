"""PayFlow's Lambda package: API handlers, domain rules, data access and PSP connectors."""
