"""The pre-merge check: rules, their evaluation, and the output formats."""
