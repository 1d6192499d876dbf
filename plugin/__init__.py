"""policydesk's engine: pure policy evaluation, no I/O.

Plugins import only `hookimpl` from here::

    from plugin import hookimpl

    @hookimpl
    def policydesk_plan(request, decision): ...
"""

from plugin.hookspecs import hookimpl

__all__ = ["hookimpl"]
