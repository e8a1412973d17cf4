"""Business rules: plain functions and models that never see an HTTP request or a Lambda event."""
