"""Thread stage: which ticket a mail belongs to; ticket numbers and subject tokens."""
