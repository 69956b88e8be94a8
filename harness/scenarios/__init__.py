"""Scenario files: loading and validating them, running them, reporting them."""
