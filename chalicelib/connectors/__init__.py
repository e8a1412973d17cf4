"""Connectors to payment service providers, behind one small interface (`base.Connector`)."""
