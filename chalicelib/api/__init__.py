"""HTTP layer: Chalice blueprints that parse requests and shape responses."""
