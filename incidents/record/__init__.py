"""The record: every change, as an append-only entry hash-chained to the one before it.

The innermost layer: it knows nothing of the service, so that the kernel's unit of work can write
into it in the same transaction as each change (`incidents.kernel.unit_of_work`).
"""
