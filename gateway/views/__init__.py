"""What customers, portals and webhook subscribers may see of tickets: visibility and public views.

``visibility`` decides which tickets a viewer (a customer or an organisation) may see and
which messages are public; ``public`` turns tickets and messages into the dicts the HTTP API,
the portal and webhooks send. Internal notes, unproven mails and agent-only mails never pass.
"""
