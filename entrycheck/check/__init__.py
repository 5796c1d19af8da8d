"""The pre-merge check: rules, their evaluation, and the output formats.

The names the command line offers live here, so that parsing arguments imports nothing
heavy (formats.py and rules.py use them too)."""

SEVERITIES = ("error", "warning", "note")
FORMATS = ("json", "junit", "sarif", "text")
RULES_URL = "https://example.org/entrycheck/rules/README.md"  # `check --rules-url` overrides
