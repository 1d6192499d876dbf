"""SLA statements: what was promised and what was kept, per organization and month.

How the parts combine: `source` reads organizations, their plan history and their tickets
from Zammad (or `cli` reads a replay export); `compute` replays them with the live engine
(`integrations.replay`) into a `compute.Statement`; `render` (text, JSON), `html` and `pdf`
present it; `delivery` sends each account manager their customers' statements in Zammad once
a month; `cli` is ``policydesk statement``.
"""
