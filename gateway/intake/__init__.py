"""Intake stage: where mail comes from (IMAP, files), parsing, charsets, attachments, the guard."""
