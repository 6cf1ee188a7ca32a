"""Real servers (Dovecot IMAP, PostgreSQL) for tests and the demo."""
