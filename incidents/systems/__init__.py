"""AI systems: the inventory, and the sunset reviews the CIO decides."""
