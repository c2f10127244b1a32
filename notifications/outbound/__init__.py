"""Email out: notices rendered from templates, sent over reused SMTP connections (or written to
files when no mail server is set), and delivery, which claims stored notices and sends them."""
