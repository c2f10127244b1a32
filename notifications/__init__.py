"""Email: rendering notices from templates and delivering them. Nothing here knows policy."""
