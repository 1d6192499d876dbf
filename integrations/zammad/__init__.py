"""Zammad integration: the adapter (adapter.py) and sync (sync.py). The stand-in used by tests and demos is `integrations.zammad_standin`, apart from this package."""
