"""Where mail comes from: IMAP mailboxes and files."""
