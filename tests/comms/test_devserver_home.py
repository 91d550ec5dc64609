"""The product never runs code from tests/: `make run`'s servers and stand-ins live in comms/devserver."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCT = ["comms", "config", "delivery", "templates_app", "preferences", "tracking", "webhooks", "admin_console"]


def _product_files():
    yield ROOT / "manage.py"
    for top in PRODUCT:
        yield from (ROOT / top).rglob("*.py")


def test_no_product_module_imports_or_spawns_tests():
    offenders = []
    for path in _product_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.startswith("tests.") else []  # `python -m tests.…`
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if n == "tests" or n.startswith("tests.")]
    assert offenders == []


def test_standins_are_served_from_the_devserver_package():
    from comms.devserver.up_standins import standin_children

    assert not (ROOT / "tests" / "standins").exists()
    assert (ROOT / "comms" / "devserver" / "standins" / "twilio.py").is_file()
    assert callable(standin_children)
