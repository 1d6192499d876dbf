"""Broken-policy cases as overlays on the bundled policies, so they cannot drift from them.

A case directory holds only what it breaks, next to its ``expected.txt``:

- ``plans.yaml.patch``: a unified diff against the bundled ``plans.yaml``. Each hunk is
  found by its text (context and removed lines, which must occur exactly once), not by
  its line numbers, so an unrelated edit of the bundled file leaves the patch applying.
  A hunk whose text is gone fails loudly: the case must be looked at again.
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
    for old, new in _hunks(patch, where):
        at = [i for i in range(position, len(lines) - len(old) + 1) if lines[i:i + len(old)] == old]
        if len(at) != 1:
            shown = "".join(old).rstrip("\n")
            raise OverlayError(f"{where}: a hunk's text is found {len(at)} times (expected once) in the bundled "
                               f"file; update the case:\n{shown}")
        lines[at[0]:at[0] + len(old)] = new
        position = at[0] + len(new)
    return "".join(lines)


def _hunks(patch: str, where: str) -> list[tuple[list[str], list[str]]]:
    hunks: list[tuple[list[str], list[str]]] = []
    old: list[str] | None = None
    new: list[str] = []
    last: list[list[str]] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith(("--- ", "+++ ")) and old is None:
            continue
        if line.startswith("@@"):
            if old is not None:
                hunks.append((old, new))
            old, new = [], []
            continue
        if old is None:
            raise OverlayError(f"{where}: patch text before the first @@ hunk header: {line!r}")
        if line.rstrip("\n") == _NO_NEWLINE:
            for side in last:
                side[-1] = side[-1].rstrip("\n")
            continue
        tag, body = line[:1], line[1:]
        if tag == " ":
            old.append(body)
            new.append(body)
            last = [old, new]
        elif tag == "-":
            old.append(body)
            last = [old]
        elif tag == "+":
            new.append(body)
            last = [new]
        else:
            raise OverlayError(f"{where}: not a patch line: {line!r}")
    if old is not None:
        hunks.append((old, new))
    if not hunks:
        raise OverlayError(f"{where}: the patch has no hunk")
    return hunks


def make_patch(original: str, changed: str, name: str, context: int = 2) -> str:
    """A unified diff from ``original`` to ``changed`` that `apply_patch` reads back."""
    out: list[str] = []
    for line in difflib.unified_diff(original.splitlines(keepends=True), changed.splitlines(keepends=True),
                                     f"a/{name}", f"b/{name}", n=context):
        out.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE + "\n")
    return "".join(out)


if __name__ == "__main__":  # pragma: no cover - for looking at a case by hand
    print(materialise(Path(sys.argv[1]), Path(sys.argv[2])))
