"""ticketgate: turns support mailboxes into tickets."""
