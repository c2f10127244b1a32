"""Reports: what staff file (form, API, email), their receipts, and intake in batches."""
