"""Decisions per second of `Engine.evaluate` on one core, with every built-in hook.

The mix is a realistic day of a helpdesk: tickets on every plan (standard-heavy, as in a
real customer base), on every channel the policies know, arriving at any minute of the
year (in and out of opening hours, weekends), some asking for 24/7 emergency handling
(in scope or not, in French, English or German), some out of scope (webmastering,
third-party applications), some already answered, some paused in a pending state, and
``now`` anywhere from the arrival to three days later (escalation steps due or not).

Target: 50,000 decisions a second on one core.  Compared in the same run with the same
engine calling every hook through pluggy's own ``HookCaller`` (a plain
``pluggy.PluginManager``, which `plugin.manager.Hooks` never calls directly), i.e. what
the direct hook path saves.  ``--profile`` prints the cProfile hot spots
(``python -m benchmarks.bench_engine --profile``); ``--evaluate-only N`` runs the mix untimed,
for counting instructions with callgrind (`evaluate_only`).
"""

from __future__ import annotations

import cProfile
import datetime as dt
import pstats
import random
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pluggy

from benchmarks.harness import Comparison, compare, machine, table
from plugin import hookspecs
from plugin.engine import Engine
from plugin.hooks import BUILTIN_PLUGINS
from plugin.manager import get_plugin_manager
from plugin.model import Organization, Ticket
from plugin.policy import load_policies

POLICIES = Path(__file__).resolve().parent.parent / "policies"
ZURICH = ZoneInfo("Europe/Zurich")
SEED = 20261127
N_REQUESTS = 5000
TARGET_PER_SECOND = 50_000
ROUNDS = 7

PLANS = [("standard", 40), ("plus", 25), ("pro", 20), ("enterprise", 10), (None, 5)]  # None: not set
CHANNELS = [("email", 45), ("phone", 20), ("web", 25), ("chat", 5), ("twitter", 3), ("fax", 2)]
CATEGORIES = [("infrastructure", 20), ("hosting", 15), ("email", 15), ("domain", 10), ("storage", 5),
              ("billing", 10), ("third-party-application", 5), ("webmastering", 5), ("other", 10), (None, 5)]
LANGUAGES = [("en", 40), ("fr", 30), ("de", 25), (None, 5)]
MANAGERS = {
    "pro": {"account_manager": "ana.keller@provider.example"},
    "enterprise": {"account_manager": "marc.dubois@provider.example",
                   "technical_account_manager": "tom.meier@provider.example"},
}


def _pick(rng: random.Random, weighted: list[tuple[object, int]]) -> object:
    values, weights = zip(*weighted)
    return rng.choices(values, weights)[0]


def requests_mix(n: int = N_REQUESTS, seed: int = SEED) -> list[tuple[Ticket, Organization, dt.datetime]]:
    rng = random.Random(seed)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    mix = []
    for i in range(n):
        plan = _pick(rng, PLANS)
        created = (t0 + dt.timedelta(minutes=rng.randrange(365 * 1440))).astimezone(ZURICH)
        now = created + dt.timedelta(minutes=rng.choice([0, 5, 30, 90, 240, 600, 1440, 4320]))
        state, first_response, paused = "new", None, ()
        roll = rng.random()
        if roll < 0.15:
            state, first_response = "open", created + dt.timedelta(minutes=rng.randrange(1, 120))
        elif roll < 0.25:
            start = created + dt.timedelta(minutes=rng.randrange(1, 60))
            state, paused = "pending reminder", ((start, None),)
        elif roll < 0.30:
            start = created + dt.timedelta(minutes=10)
            paused = ((start, start + dt.timedelta(minutes=rng.randrange(5, 300))),)
            state = "open"
        ticket = Ticket(
            id=i,
            channel=_pick(rng, CHANNELS),
            created_at=created,
            category=_pick(rng, CATEGORIES),
            language=_pick(rng, LANGUAGES),
            emergency_requested=rng.random() < 0.15,
            state=state,
            first_response_at=first_response,
            tags=frozenset(rng.sample(["vip", "plan:pro", "sla:warning", "customer-waiting"], rng.randrange(3))),
            priority=rng.choice([None, "1 low", "2 normal", "3 high"]),
            paused=paused,
        )
        org = Organization(id=rng.randrange(1, 500), name="Org", plan=plan,
                           account_managers=MANAGERS.get(plan or "", {}), partner=plan == "plus" and rng.random() < 0.2)
        mix.append((ticket, org, max(now, created)))
    return mix


def pluggy_only_manager() -> pluggy.PluginManager:
    """The built-ins on a plain pluggy manager: every hook goes through pluggy's own call."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, module in BUILTIN_PLUGINS.items():
        pm.register(module, name=name)
    return pm


def run_mix(engine: Engine, mix: list[tuple[Ticket, Organization, dt.datetime]]) -> None:
    evaluate = engine.evaluate
    for ticket, org, now in mix:
        evaluate(ticket, org, now)


def profile(engine: Engine, mix: list[tuple[Ticket, Organization, dt.datetime]], top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for ticket, org, now in mix:
        engine.evaluate(ticket, org, now)
    profiler.disable()
    import io

    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def evaluate_only(rounds: int, n: int = 2000) -> str:
    """Load, warm up, then evaluate the mix of ``n`` requests ``rounds`` times, untimed: for
    counting instructions, which do not depend on the machine's speed::

        valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
            python -m benchmarks.bench_engine --evaluate-only 0   # and 2; the difference / 4000
    """
    engine = Engine(load_policies(POLICIES), get_plugin_manager())
    mix = requests_mix(n)
    run_mix(engine, mix)
    for _ in range(rounds):
        run_mix(engine, mix)
    return f"evaluated {rounds} x {n} requests"


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    if "--evaluate-only" in argv:
        return evaluate_only(int(argv[argv.index("--evaluate-only") + 1]))
    policies = load_policies(POLICIES)
    engine = Engine(policies, get_plugin_manager())
    through_pluggy = Engine(policies, pluggy_only_manager())
    mix = requests_mix()
    for e in (engine, through_pluggy):  # warm caches (calendar indexes) as a running service has them
        run_mix(e, mix[:500])
    plugins = sorted(name for name, _ in get_plugin_manager().list_name_plugin())
    ours, theirs = compare(lambda: run_mix(engine, mix), lambda: run_mix(through_pluggy, mix), work=len(mix),
                           rounds=ROUNDS)
    rate = ours.rates()
    lines = [
        f"plugins: {', '.join(plugins)}",
        f"mix: {len(mix)} requests (plans, channels, categories, languages, emergencies, paused, answered)",
        f"machine: {machine()}",
        "",
        table("Engine.evaluate, decisions per second on one core", [
            Comparison("Engine.evaluate, realistic mix", rate, theirs.rates(), "hooks through pluggy's call",
                       target=f"{TARGET_PER_SECOND:,}/s", met=rate.median >= TARGET_PER_SECOND,
                       higher_is_better=True),
        ]),
        f"per decision: {ours.per_op_us().show(1)}",
    ]
    if "--profile" in argv:
        lines += ["", profile(engine, mix)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
