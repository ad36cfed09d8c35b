"""Webhooks: endpoints the tenant registers, and the signed deliveries of its feed to them."""
