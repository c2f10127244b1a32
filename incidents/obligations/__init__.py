"""Obligations: who must be told of a report and by when, with the clocks that remind, breach
and escalate."""
