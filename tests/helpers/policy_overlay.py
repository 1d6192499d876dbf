"""Broken-policy cases as overlays on the bundled policies, so they cannot drift from them.

A case directory holds only what it breaks, next to its ``expected.txt``:

- ``plans.yaml.patch``: a unified diff against the bundled ``plans.yaml``. Each hunk is
  found by its text (context and removed lines, which must occur exactly once), not by
  its line numbers, so an unrelated edit of the bundled file leaves the patch applying;
  like ``patch``'s fuzz, context lines may be dropped from the hunk's edges (never the
  changed lines) until the rest is found exactly once. A hunk whose changed lines are
  gone fails loudly: the case must be looked at again.
- ``plans.yaml``: a whole replacement (for a file that is empty or of another shape).
- ``plans.yaml.removed``: the file is deleted.

To look at a case as ``policydesk validate`` does::

    python tests/helpers/policy_overlay.py tests/plugin/policies/invalid/bad-duration /tmp/bad-duration
    policydesk validate --policies /tmp/bad-duration
"""

from __future__ import annotations

import difflib
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "policies"
FILES = ("hours.yaml", "plans.yaml", "scope.yaml")
PATCH, REMOVED = ".patch", ".removed"
_NO_NEWLINE = "\\ No newline at end of file"


class OverlayError(Exception):
    """A case's overlay does not fit the bundled policies any more (or is malformed)."""


def overlay_files(case: Path) -> dict[str, str]:
    """``{policy file: how the case changes it}`` — ``"patch"``, ``"replace"`` or ``"remove"``."""
    found: dict[str, str] = {}
    for name in FILES:
        kinds = [kind for suffix, kind in (("", "replace"), (PATCH, "patch"), (REMOVED, "remove"))
                 if (case / (name + suffix)).exists()]
        if len(kinds) > 1:
            raise OverlayError(f"{case.name}: {name} is overlaid in several ways: {', '.join(kinds)}")
        if kinds:
            found[name] = kinds[0]
    return found


def materialise(case: Path, target: Path, bundled: Path = BUNDLED) -> Path:
    """Write the bundled policies with ``case``'s overlay applied into ``target``; return it."""
    target.mkdir(parents=True, exist_ok=True)
    overlays = overlay_files(case)
    if not overlays:
        raise OverlayError(f"{case.name}: no overlay (expected one of {', '.join(FILES)} with .patch, "
                           f"{REMOVED} or as a whole file)")
    for name in FILES:
        kind = overlays.get(name)
        if kind is None:
            shutil.copyfile(bundled / name, target / name)
        elif kind == "replace":
            shutil.copyfile(case / name, target / name)
        elif kind == "patch":
            original = (bundled / name).read_text(encoding="utf-8")
            patched = apply_patch(original, (case / (name + PATCH)).read_text(encoding="utf-8"), f"{case.name}/{name}")
            (target / name).write_text(patched, encoding="utf-8")
    return target


def apply_patch(text: str, patch: str, where: str = "") -> str:
    """``text`` with every hunk of the unified diff ``patch`` applied, each found by its content."""
    lines = text.splitlines(keepends=True)
    position = 0
    for old, new, lead, trail in _hunks(patch, where):
        for fuzz in range(max(lead, trail) + 1):
            cut_lead, cut_trail = min(fuzz, lead), min(fuzz, trail)
            core_old = old[cut_lead:len(old) - cut_trail]
            if not core_old:
                break  # a pure insertion needs some context to be placed
            at = [i for i in range(position, len(lines) - len(core_old) + 1) if lines[i:i + len(core_old)] == core_old]
            if len(at) == 1:
                lines[at[0]:at[0] + len(core_old)] = new[cut_lead:len(new) - cut_trail]
                position = at[0] + len(new) - cut_lead - cut_trail
                break
        else:
            at = []
        if len(at) != 1:
            shown = "".join(old).rstrip("\n")
            raise OverlayError(f"{where}: a hunk's text is found {len(at)} times (expected once) in the bundled "
                               f"file; update the case:\n{shown}")
    return "".join(lines)


def _hunks(patch: str, where: str) -> list[tuple[list[str], list[str], int, int]]:
    """Each hunk as (old lines, new lines, leading context lines, trailing context lines)."""
    hunks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] | None = None
    for line in patch.splitlines(keepends=True):
        if line.startswith(("--- ", "+++ ")) and current is None:
            continue
        if line.startswith("@@"):
            current = []
            hunks.append(current)
            continue
        if current is None:
            raise OverlayError(f"{where}: patch text before the first @@ hunk header: {line!r}")
        if line.rstrip("\n") == _NO_NEWLINE:
            if current:
                tag, body = current[-1]
                current[-1] = (tag, body.rstrip("\n"))
            continue
        if line[:1] not in (" ", "-", "+"):
            raise OverlayError(f"{where}: not a patch line: {line!r}")
        current.append((line[:1], line[1:]))
    if not hunks:
        raise OverlayError(f"{where}: the patch has no hunk")
    out = []
    for hunk in hunks:
        old = [body for tag, body in hunk if tag != "+"]
        new = [body for tag, body in hunk if tag != "-"]
        tags = [tag for tag, _ in hunk]
        lead = next((i for i, tag in enumerate(tags) if tag != " "), len(tags))
        trail = next((i for i, tag in enumerate(reversed(tags)) if tag != " "), len(tags))
        out.append((old, new, lead, trail))
    return out


def make_patch(original: str, changed: str, name: str, context: int = 2) -> str:
    """A unified diff from ``original`` to ``changed`` that `apply_patch` reads back."""
    out: list[str] = []
    for line in difflib.unified_diff(original.splitlines(keepends=True), changed.splitlines(keepends=True),
                                     f"a/{name}", f"b/{name}", n=context):
        out.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE + "\n")
    return "".join(out)


if __name__ == "__main__":  # pragma: no cover - for looking at a case by hand
    print(materialise(Path(sys.argv[1]), Path(sys.argv[2])))
