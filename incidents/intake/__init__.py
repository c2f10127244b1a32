"""Reports that arrive as email: each message is kept whole, then filed, threaded to the report it
answers, ignored (an auto-reply, a mailing list) or quarantined, never dropped."""
