"""The wheel and the sdist hold what the program and its tests need (built from a copy of the tree)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
                                 ".pytest_cache", "*.db", "*.db-*", "node_modules")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[set[str], set[str]]:
    tree = tmp_path_factory.mktemp("tree") / "policydesk"
    shutil.copytree(REPO, tree, ignore=IGNORED)
    out = tree / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(tree)], check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"],
                   check=True, capture_output=True, cwd=tree, timeout=300)
    wheel = zipfile.ZipFile(next(out.glob("*.whl"))).namelist()
    with tarfile.open(next(out.glob("*.tar.gz"))) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    return set(wheel), names


def source_packages() -> list[str]:
    return sorted(str(p.parent.relative_to(REPO)) for top in ("plugin", "integrations")
                  for p in (REPO / top).rglob("__init__.py") if "__pycache__" not in p.parts)


def test_the_wheel_holds_every_package_and_the_run_time_data(built):
    wheel, _ = built
    for package in source_packages():
        assert f"{package}/__init__.py" in wheel, package
    modules = [str(p.relative_to(REPO)) for top in ("plugin", "integrations") for p in (REPO / top).rglob("*.py")
               if "__pycache__" not in p.parts]
    assert not [m for m in modules if m not in wheel]
    for name in ("plans", "hours", "scope"):
        assert f"plugin/bundled_policies/{name}.yaml" in wheel and f"plugin/bundled_policies/{name}.schema.json" in wheel
    for data in ("integrations/zammad_standin/seed.yaml", "integrations/billing/contract.schema.json",
                 "integrations/billing/examples/subscription.created.json", "plugin/py.typed"):
        assert data in wheel, data
    assert not [n for n in wheel if n.startswith(("tests/", "policies/"))]
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in wheel)


def test_the_sdist_holds_the_tests_docs_and_policies(built):
    _, sdist = built
    tracked = [p.relative_to(REPO) for top in ("tests", "docs", "policies")
               for p in (REPO / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts
               and ".hypothesis" not in p.parts and p.suffix not in (".db", ".pyc")]
    missing = [str(p) for p in tracked if str(p) not in sdist]
    assert not missing, missing[:10]
    for name in ("LICENSE", "README.md", "setup.cfg", "setup.py", "pyproject.toml", "MANIFEST.in", ".ci/run"):
        assert name in sdist, name


def test_metadata_is_complete():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    meta = cfg["metadata"]
    assert meta["version"] == "attr: plugin.version.__version__"
    classifiers = meta["classifiers"]
    assert "License :: OSI Approved :: MIT License" in classifiers and "Programming Language :: Python :: 3.11" in classifiers
    assert "MIT License" in (REPO / "LICENSE").read_text()
    extras = cfg["options.extras_require"]
    assert "gunicorn" in extras["gunicorn"]
    for line in cfg["options"]["install_requires"].split("\n"):
        if line.strip():
            assert ">=" in line, f"{line}: every dependency declares the minimum .ci/run tests"


def test_version_is_single_sourced():
    from plugin.version import __version__
    from integrations.zammad.client import USER_AGENT

    result = subprocess.run([sys.executable, "-c", "import sys; from integrations.cli import main; sys.exit(main())",
                             "--version"], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == f"policydesk {__version__}"
    assert USER_AGENT.startswith(f"policydesk/{__version__} ")
