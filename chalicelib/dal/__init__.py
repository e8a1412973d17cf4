"""Data access: the only layer that talks to AWS; each store takes its boto3 client."""
