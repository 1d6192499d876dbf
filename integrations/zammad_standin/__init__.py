"""A Zammad stand-in for tests and demos: the part of Zammad's REST API policydesk uses,
derived from Zammad's own source.  The policydesk service never imports it.

How the parts combine:

- ``schema`` -- the columns of every model, from Zammad's migrations; ``store`` -- the tables,
  settings, permissions (TicketPolicy) and ``param_cleanup`` (unknown keys dropped).
- ``state.State`` mixes one module per Zammad model family into the store: ``users``
  (users, organizations, groups), ``tickets`` (tickets, articles, core-workflow mandatory
  fields, transactions), ``tags_mentions``, ``object_manager``, ``admin_objects``
  (calendars, SLAs, triggers, webhooks), ``history`` (has_history), ``escalation`` (SLA,
  calendar, breaks, escalation fields, time events); ``render`` renders records as Zammad's JSON.
- ``conditions`` evaluates selector conditions for triggers, SLAs and the condition search;
  ``search`` answers searches with or without Elasticsearch.
- ``app.ZammadApp`` (WSGI: auth, errors, latency, fault injection) mixes in the handlers of
  ``routes_people``, ``routes_tickets`` and ``routes_admin``; ``protocol`` holds the
  request/response types and pagination; ``faults`` the fault injector and request log.
- ``webhooks`` runs the triggers on each transaction and delivers webhooks as
  TriggerWebhookJob does (payload from ``custom_payload`` when customised); it also runs the
  periodic escalation check.  ``server`` seeds a State (``seed.yaml``) and serves it.

Each behaviour names the Zammad file it follows where it is implemented.  Serve it with
``python -m integrations.zammad_standin`` (``--no-elasticsearch``, ``--call-delay 0.03``).
"""

from integrations.zammad_standin.server import StandIn, build_state, running_standin
from integrations.zammad_standin.state import State

__all__ = ["StandIn", "State", "build_state", "running_standin"]
