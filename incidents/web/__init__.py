"""The web entry point: the report form, the JSON API, acknowledgement pages. A thin shell."""
