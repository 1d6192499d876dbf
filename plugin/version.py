"""policydesk's version, the single source (setup.cfg reads it; --version, the Zammad
User-Agent and /metrics show it)."""

__version__ = "0.1.0"
