"""The JSON API under /api/v1: tickets, messages, closing, attachments, organisations."""
