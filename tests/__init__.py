"""Tests for ticketgate."""
