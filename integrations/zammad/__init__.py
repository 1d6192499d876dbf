"""Zammad integration: the adapter (adapter.py, sync.py) and a stand-in Zammad (standin/)."""
