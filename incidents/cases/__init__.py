"""Security cases: serious incidents worked under the cybersecurity incident response plan."""
