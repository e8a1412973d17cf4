"""Packaging and deployment: `chalice package` merged with infra/, deployed by CloudFormation to
AWS or LocalStack. Dev-only tooling: never part of the Lambda package."""
