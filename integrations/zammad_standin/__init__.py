"""A faithful Zammad stand-in: the part of Zammad's REST API policydesk uses.

Modules: ``state`` (in-memory records and write operations), ``app`` (WSGI app:
routing, auth, rendering, errors), ``webhooks`` (triggers and signed, retried
deliveries), ``faults`` (fault injection and request log), ``server`` (seeding,
waitress, `running_standin`).  Serve it with ``python -m integrations.zammad_standin``.

Behaviour follows Zammad's source: app/controllers/application_controller/
authenticates.rb, handles_errors.rb, has_user.rb, paginates/pagination.rb,
renders_models.rb; tickets_controller.rb, users_controller.rb, tags_controller.rb,
mentions_controller.rb, ticket_articles_controller.rb,
object_manager_attributes_controller.rb; app/jobs/trigger_webhook_job.rb and
record_payload/*.rb; lib/user_agent.rb.
"""

from integrations.zammad_standin.server import StandIn, build_state, running_standin
from integrations.zammad_standin.state import State

__all__ = ["StandIn", "State", "build_state", "running_standin"]
