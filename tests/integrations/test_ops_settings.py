"""The one settings module: secrets and NAME_FILE, the store URL and where SQLite lives, listen addresses."""

from __future__ import annotations

import pytest

from integrations.service.config import parse_listen
from integrations.settings import ConfigError, default_store_url, optional_secret, secret, state_dir, store_url


def test_secret_from_the_variable_or_its_file(tmp_path):
    (tmp_path / "token").write_text("from-file\n")
    assert secret({"X": " direct "}, "X") == "direct"
    assert secret({"X_FILE": str(tmp_path / "token")}, "X") == "from-file"
    assert optional_secret({}, "X") is None
    with pytest.raises(ConfigError, match="X_FILE: cannot read"):
        secret({"X_FILE": str(tmp_path / "missing")}, "X")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        secret({"X_FILE": str(tmp_path / "empty")}, "X")
    with pytest.raises(ConfigError, match=r"X \(or X_FILE"):
        secret({}, "X")


def test_default_store_is_in_policydesk_home_never_the_root(tmp_path):
    url = default_store_url({"POLICYDESK_HOME": str(tmp_path / "state")})
    assert url == f"sqlite:///{tmp_path / 'state' / 'policydesk.db'}"
    assert (tmp_path / "state").is_dir()
    assert store_url(None, {"POLICYDESK_HOME": str(tmp_path)}) == f"sqlite:///{tmp_path / 'policydesk.db'}"


def test_without_policydesk_home_the_user_data_directory(tmp_path):
    assert state_dir({"HOME": str(tmp_path)}) == tmp_path / ".local" / "share" / "policydesk"
    assert state_dir({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "policydesk"


@pytest.mark.parametrize("url", ["sqlite:///tmp/a.db", "sqlite:rel.db", "plain.db", "postgresql://u@h/db",
                                 "postgres://u:p@h:5432/db", "host=127.0.0.1 dbname=test"])
def test_supported_store_urls_pass(url):
    assert store_url(url, {}) == url


@pytest.mark.parametrize("url, message", [
    ("mysql://x/y", "unsupported scheme 'mysql'"),
    ("redis://u:hunter2@h/0", "unsupported scheme"),
    ("sqlite://relative.db", "sqlite:///ABSOLUTE"),
])
def test_unsupported_store_urls_are_user_errors(url, message):
    with pytest.raises(ConfigError, match=message) as caught:
        store_url(url, {})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("text, expected", [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:0", ("::1", 0)),
                                            (":9000", ("127.0.0.1", 9000)), ("policydesk.internal:80", ("policydesk.internal", 80))])
def test_listen_addresses(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text, message", [("127.0.0.1:80000", "out of range"), ("127.0.0.1", "HOST:PORT"),
                                           ("bad host!:80", "not a host name"), ("[zz]:80", "not an IPv6"),
                                           ("127.0.0.1:-1", "HOST:PORT")])
def test_bad_listen_addresses(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_listen(text)
