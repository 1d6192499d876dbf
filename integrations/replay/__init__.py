"""Replay: run the policies over past tickets and see what would have been met or breached.

- `records`: the input format (one `TicketRecord` per past ticket), JSONL/CSV readers and
  writers, and ``ticket_history.schema.json`` which documents it;
- `run`: the replay itself (`Replayer`, `replay_file`), one engine with the live service;
- `report`: the terminal table, the JSON summary and the HTML report with charts;
- `generate`: realistic synthetic histories for demos, tests and benchmarks;
- `zammad_source`: past tickets read from a Zammad through the adapter;
- `cli`: the ``policydesk replay`` subcommand.

See ``docs/replay.md``.
"""
