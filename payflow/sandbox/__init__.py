"""The embedded AWS runtime: moto served over HTTP, Lambda invocations answered in-process,
resources provisioned from the CloudFormation template, and event source mappings emulated by
pollers. Dev-only: never part of the Lambda package."""
