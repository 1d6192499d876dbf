"""Zammad's tables: the columns each model has, and nothing else.

A parameter that is not a column is dropped silently on create and update, as
``param_cleanup`` does (app/models/application_model/can_cleanup_param.rb).  The
column lists follow Zammad's migrations; each table names the one it follows.
"""

from __future__ import annotations

from typing import Any

_STAMPS: dict[str, Any] = {"updated_by_id": 1, "created_by_id": 1, "created_at": None, "updated_at": None}

# db/migrate/20120101000001_create_base.rb (users; out_of_office_* and address included there)
USER_COLUMNS: dict[str, Any] = {
    "id": None, "organization_id": None, "login": "", "firstname": "", "lastname": "", "email": "",
    "image": None, "image_source": None, "web": "", "phone": "", "fax": "", "mobile": "",
    "department": None, "street": "", "zip": "", "city": "", "country": "", "address": None,
    "vip": False, "verified": False, "active": True, "note": "", "last_login": None, "source": None,
    "login_failed": 0, "out_of_office": False, "out_of_office_start_at": None,
    "out_of_office_end_at": None, "out_of_office_replacement_id": None, "preferences": {}, **_STAMPS,
}
# db/migrate/20120101000001_create_base.rb (organizations: name, shared, domain, domain_assignment, active, note)
# plus vip (db/migrate/20150206000001_create_vip.rb)
ORGANIZATION_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "shared": True, "domain": "", "domain_assignment": False, "active": True,
    "vip": False, "note": "", **_STAMPS,
}
# db/migrate/20120101000001_create_base.rb (groups) plus the tree columns name_last/parent_id and
# shared_drafts/reopen_time_in_days of Zammad 6's later migrations
GROUP_COLUMNS: dict[str, Any] = {
    "id": None, "signature_id": None, "email_address_id": None, "name": "", "name_last": "",
    "parent_id": None, "assignment_timeout": None, "follow_up_possible": "yes", "reopen_time_in_days": None,
    "follow_up_assignment": True, "active": True, "shared_drafts": True, "note": None, **_STAMPS,
}
# db/migrate/20120101000010_create_ticket.rb (tickets)
TICKET_COLUMNS: dict[str, Any] = {
    "id": None, "group_id": None, "priority_id": None, "state_id": None, "organization_id": None,
    "number": "", "title": "", "owner_id": 1, "customer_id": None, "note": None,
    "first_response_at": None, "first_response_escalation_at": None, "first_response_in_min": None,
    "first_response_diff_in_min": None, "close_at": None, "close_escalation_at": None, "close_in_min": None,
    "close_diff_in_min": None, "update_escalation_at": None, "update_in_min": None, "update_diff_in_min": None,
    "last_close_at": None, "last_contact_at": None, "last_contact_agent_at": None,
    "last_contact_customer_at": None, "last_owner_update_at": None, "create_article_type_id": None,
    "create_article_sender_id": None, "article_count": 0, "escalation_at": None, "pending_time": None,
    "type": None, "time_unit": None, "preferences": {}, **_STAMPS,
}
# db/migrate/20120101000010_create_ticket.rb (ticket_articles)
ARTICLE_COLUMNS: dict[str, Any] = {
    "id": None, "ticket_id": None, "type_id": None, "sender_id": None, "from": None, "to": None, "cc": None,
    "subject": None, "reply_to": None, "message_id": None, "message_id_md5": None, "in_reply_to": None,
    "content_type": "text/plain", "references": None, "body": "", "internal": False, "preferences": {},
    "updated_by_id": 1, "created_by_id": 1, "origin_by_id": None, "created_at": None, "updated_at": None,
}
# app/models/mention.rb: belongs_to :user, :mentionable (polymorphic) + default user relations
MENTION_COLUMNS: dict[str, Any] = {
    "id": None, "mentionable_type": "Ticket", "mentionable_id": None, "user_id": None, **_STAMPS,
}
# db/migrate/20120101000001_create_base.rb (calendars): NO note column
CALENDAR_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "timezone": "Europe/Berlin", "business_hours": {}, "default": False,
    "ical_url": None, "public_holidays": {}, "last_log": None, "last_sync": None, **_STAMPS,
}
# db/migrate/20120101000010_create_ticket.rb (slas) + SlaAddResponseTime (response_time): NO note column
SLA_COLUMNS: dict[str, Any] = {
    "id": None, "calendar_id": None, "name": "", "first_response_time": None, "update_time": None,
    "response_time": None, "solution_time": None, "condition": {}, **_STAMPS,
}
# db/migrate/20120101000010_create_ticket.rb (triggers) + Zammad 6's activator, execution_condition_mode,
# localization and timezone columns
TRIGGER_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "condition": {}, "perform": {}, "disable_notification": True, "note": None,
    "activator": "action", "execution_condition_mode": "selective", "localization": "system",
    "timezone": "system", "active": True, **_STAMPS,
}
# app/assets/javascripts/app/models/webhook.coffee (@configure, mirrors the webhooks table)
WEBHOOK_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "endpoint": "", "signature_token": None, "ssl_verify": True,
    "basic_auth_username": None, "basic_auth_password": None,
    "customized_payload": False, "custom_payload": None, "pre_defined_webhook_type": None,
    "preferences": {}, "note": None, "active": True, **_STAMPS,
}
# db/migrate/20120101000001_create_base.rb (object_manager_attributes)
ATTRIBUTE_COLUMNS: dict[str, Any] = {
    "id": None, "object_lookup_id": None, "name": "", "display": "", "data_type": "input",
    "data_option": {}, "data_option_new": {}, "editable": True, "active": True, "screens": {},
    "to_create": False, "to_migrate": False, "to_delete": False, "to_config": False, "position": 1550,
    **_STAMPS,
}
# db/migrate/20120101000010_create_ticket.rb (ticket_states)
STATE_COLUMNS: dict[str, Any] = {
    "id": None, "state_type_id": None, "name": "", "next_state_id": None, "ignore_escalation": False,
    "default_create": False, "default_follow_up": False, "note": None, "active": True, **_STAMPS,
}
# db/migrate/20120101000010_create_ticket.rb (ticket_priorities)
PRIORITY_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "default_create": False, "note": None, "active": True, **_STAMPS,
}
NAMED_COLUMNS: dict[str, Any] = {  # state types, article types/senders, roles, signatures, addresses
    "id": None, "name": "", "note": None, "active": True, **_STAMPS,
}
# db/migrate/20120101000001_create_base.rb (histories), kept per ticket (see history.py)
HISTORY_COLUMNS: dict[str, Any] = {
    "id": None, "o_id": None, "history_type": "", "history_object": "", "history_attribute": None,
    "related_o_id": None, "related_history_object": None, "id_from": None, "id_to": None,
    "value_from": None, "value_to": None, "created_by_id": 1, "created_at": None, "updated_at": None,
}

COLUMNS: dict[str, dict[str, Any]] = {
    "users": USER_COLUMNS, "organizations": ORGANIZATION_COLUMNS, "groups": GROUP_COLUMNS,
    "tickets": TICKET_COLUMNS, "articles": ARTICLE_COLUMNS, "mentions": MENTION_COLUMNS,
    "calendars": CALENDAR_COLUMNS, "slas": SLA_COLUMNS, "triggers": TRIGGER_COLUMNS,
    "webhooks": WEBHOOK_COLUMNS, "attributes": ATTRIBUTE_COLUMNS, "ticket_states": STATE_COLUMNS,
    "ticket_state_types": NAMED_COLUMNS, "ticket_priorities": PRIORITY_COLUMNS, "article_types": NAMED_COLUMNS,
    "article_senders": NAMED_COLUMNS, "roles": NAMED_COLUMNS, "signatures": NAMED_COLUMNS,
    "email_addresses": NAMED_COLUMNS, "histories": HISTORY_COLUMNS,
}
#: Rails class names, for "Couldn't find <Model> with 'id'=N".
MODEL_NAMES = {
    "users": "User", "organizations": "Organization", "groups": "Group", "tickets": "Ticket",
    "articles": "Ticket::Article", "mentions": "Mention", "calendars": "Calendar", "slas": "Sla",
    "triggers": "Trigger", "webhooks": "Webhook", "attributes": "ObjectManager::Attribute",
    "ticket_states": "Ticket::State", "ticket_state_types": "Ticket::StateType",
    "ticket_priorities": "Ticket::Priority", "article_types": "Ticket::Article::Type",
    "article_senders": "Ticket::Article::Sender", "roles": "Role", "signatures": "Signature",
    "email_addresses": "EmailAddress", "histories": "History",
}
#: belongs_to associations: column -> (table, expanded key).
BELONGS_TO: dict[str, dict[str, tuple[str, str]]] = {
    "users": {"organization_id": ("organizations", "organization"),
              "out_of_office_replacement_id": ("users", "out_of_office_replacement")},
    "organizations": {},
    "groups": {"signature_id": ("signatures", "signature"), "email_address_id": ("email_addresses", "email_address"),
               "parent_id": ("groups", "parent")},
    "tickets": {"group_id": ("groups", "group"), "organization_id": ("organizations", "organization"),
                "state_id": ("ticket_states", "state"), "priority_id": ("ticket_priorities", "priority"),
                "owner_id": ("users", "owner"), "customer_id": ("users", "customer"),
                "create_article_type_id": ("article_types", "create_article_type"),
                "create_article_sender_id": ("article_senders", "create_article_sender")},
    "articles": {"type_id": ("article_types", "type"), "sender_id": ("article_senders", "sender"),
                 "origin_by_id": ("users", "origin_by")},
    "slas": {"calendar_id": ("calendars", "calendar")},
    "ticket_states": {"state_type_id": ("ticket_state_types", "state_type"),
                      "next_state_id": ("ticket_states", "next_state")},
}
#: Tables whose objects can carry custom attributes (ObjectManager objects).
ATTRIBUTE_OBJECTS = {"Ticket": "tickets", "User": "users", "Organization": "organizations", "Group": "groups"}
OBJECT_LOOKUP_IDS = {"Ticket": 2, "User": 1, "Organization": 3, "Group": 4, "TicketArticle": 5}
DATA_TYPES = {"input", "textarea", "select", "multiselect", "tree_select", "multi_tree_select", "boolean",
              "integer", "date", "datetime", "autocompletion_ajax", "autocompletion_ajax_customer_organization",
              "user_autocompletion"}
RESERVED_ATTRIBUTE_NAMES = {"id", "type", "action", "object", "tags", "article", "created_by", "updated_by",
                            "organization", "customer", "owner", "group", "state", "priority"}

DEFAULT_ROLES = [(1, "Admin"), (2, "Agent"), (3, "Customer")]
# db/seeds/ticket_state_types.rb
DEFAULT_STATE_TYPES = [(1, "new"), (2, "open"), (3, "pending reminder"), (4, "pending action"), (5, "closed"),
                       (6, "merged"), (7, "removed")]
# db/seeds/ticket_states.rb + UpdateTicketState migration: (id, name, state type, ignore_escalation, extra)
DEFAULT_STATES: list[tuple[int, str, int, bool, dict[str, Any]]] = [
    (1, "new", 1, False, {"default_create": True}), (2, "open", 2, False, {"default_follow_up": True}),
    (3, "pending reminder", 3, True, {}), (4, "closed", 5, True, {}), (5, "merged", 6, True, {}),
    (6, "removed", 7, True, {"active": False}), (7, "pending close", 4, True, {"next_state_id": 4}),
]
# db/seeds/ticket_priorities.rb
DEFAULT_PRIORITIES = [(1, "1 low"), (2, "2 normal"), (3, "3 high")]
DEFAULT_ARTICLE_TYPES = [(1, "email"), (2, "sms"), (3, "chat"), (4, "fax"), (5, "phone"), (6, "twitter status"),
                         (7, "twitter direct-message"), (8, "facebook feed post"), (9, "facebook feed comment"),
                         (10, "note"), (11, "web"), (12, "telegram personal-message"),
                         (13, "facebook direct-message")]
DEFAULT_SENDERS = [(1, "Agent"), (2, "Customer"), (3, "System")]
#: Ticket::State.by_category (app/models/ticket/state.rb): state type names per category.
STATE_CATEGORIES = {
    "open": ("new", "open", "pending reminder", "pending action"),
    "work_on": ("new", "open"),
    "pending": ("pending reminder", "pending action"),
    "closed": ("closed",),
    "merged": ("merged",),
}
