"""Outbound stage: who gets what, the outbox queue, rendering, sending over SMTP, scheduling."""
