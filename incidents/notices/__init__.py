"""Notices: the emails owed to the people a policy names, and the record of what became of each.

Rendering and sending live in `notifications.outbound`; this package holds the record.
"""
