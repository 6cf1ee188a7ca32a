"""The HTTP door: the API, webhooks, health and metrics (and later the customer portal)."""
