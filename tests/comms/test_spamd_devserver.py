"""`make run`'s spamd child (issue 19): started when spamd is installed, said so in the banner when not."""

from __future__ import annotations

import shutil

import pytest

from comms.devserver.spamd import NOT_INSTALLED, spamd_child


@pytest.mark.skipif(not shutil.which("spamd"), reason="needs Debian's spamd (make test installs it)")
def test_installed_spamd_becomes_a_supervised_child_and_sets_the_env(tmp_path):
    env: dict[str, str] = {}
    children, lines = spamd_child(tmp_path, env)
    cmd = children["spamd"]["cmd"]
    assert cmd[0].endswith("spamd") and "-L" in cmd and "--nouser-config" in cmd
    assert f"127.0.0.1:{env['COMMS_SPAMD_PORT']}" in cmd and env["COMMS_SPAMD_HOST"] == "127.0.0.1"
    assert "SpamAssassin" in lines[0]


def test_without_spamd_the_banner_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: spamd is not installed here
    env: dict[str, str] = {}
    children, lines = spamd_child(tmp_path, env)
    assert children == {} and lines == [NOT_INSTALLED] and "COMMS_SPAMD_HOST" not in env
    assert "spam check unavailable" in lines[0]


def test_an_external_spamd_is_left_alone(tmp_path):
    env = {"COMMS_SPAMD_HOST": "spamd.internal", "COMMS_SPAMD_PORT": "783"}
    children, lines = spamd_child(tmp_path, env)
    assert children == {} and "spamd.internal:783 (external)" in lines[0]
