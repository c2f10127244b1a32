"""AI incident reporting: intake, policy-driven obligations with clocks, notices and escalation."""
