"""Timers: due times in the database, fired under a lease: reminders, auto-close, SLAs."""
