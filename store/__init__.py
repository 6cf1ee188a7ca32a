"""Persistence: SQLModel tables, engine setup, queries, migrations."""
