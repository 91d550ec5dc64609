"""The kernel at the bottom (issue 15, moves 1 and 7): the guard for the import rules, the audit log's
state-only move, and the one rate window every limit counts through.

The import walk is the guard later work keeps: no import cycle between apps (the kernel's upper
packages count as apps of their own), counting imports inside functions too, so a cycle cannot be
dodged by hiding one side in a function; and no import at all from the kernel (outside its upper
packages) into another app.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from comms.audit import audit_record
from comms.models import AuditEntry, Recipient
from comms.redis import RateWindow, parse_rate, rate_window, redis_client

ROOT = Path(__file__).resolve().parents[2]
APPS = ("comms", "templates_app", "delivery", "preferences", "tracking", "webhooks", "admin_console")
UPPER = ("comms/router", "comms/campaigns", "comms/conversations", "comms/devserver")


def _node_of_module(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] not in APPS:
        return None
    return ".".join(parts[:2]) if "/".join(parts[:2]) in UPPER else parts[0]


def _node_of_file(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    for upper in UPPER:
        if rel.startswith(upper + "/"):
            return upper.replace("/", ".")
    return rel.split("/")[0]


def _edges() -> tuple[dict[str, set[str]], list[str]]:
    """Edges between apps (module level and inside functions alike), and every import from the bare
    kernel to an app."""
    edges: dict[str, set[str]] = {}
    kernel_up: list[str] = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = _node_of_file(path)
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    continue
                for module in modules:
                    target = _node_of_module(module)
                    if target is None or target == source:
                        continue
                    if source == "comms" and not target.startswith("comms"):
                        kernel_up.append(f"{path.relative_to(ROOT)}:{node.lineno} -> {module}")
                    edges.setdefault(source, set()).add(target)
    return edges, kernel_up


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one app (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_apps():
    edges, _ = _edges()
    assert _cycles(edges) == []


def test_the_kernel_imports_no_other_app():
    _, kernel_up = _edges()
    assert kernel_up == []


def test_preferences_reaches_delivery_only_through_named_settings(settings):
    """delivery calls preferences' send-time decision, so preferences may not import delivery, not even
    inside a function (as it did for the unsubscribe page and double opt-in): it names what it needs."""
    from django.utils.module_loading import import_string

    edges, _ = _edges()
    assert "preferences" in edges["delivery"] and "delivery" not in edges.get("preferences", set())
    assert callable(import_string(settings.COMMS_MESSAGE_ADDRESS_SELECTOR))
    assert callable(import_string(settings.COMMS_SYSTEM_EMAIL_SENDER))


def test_the_guard_sees_a_cycle():
    """The walk would catch the kind of cycle it guards against (a guard that sees nothing proves nothing)."""
    assert _cycles({"comms": {"delivery"}, "delivery": {"tracking"}, "tracking": {"delivery"}}) == [
        ["delivery", "tracking"]]


def test_the_audit_log_is_the_kernels_and_keeps_its_table():
    assert AuditEntry._meta.label == "comms.AuditEntry"
    assert AuditEntry._meta.db_table == "admin_console_auditentry"


@pytest.mark.django_db
def test_audit_record_labels_the_actor_and_the_trigger_still_refuses_changes(tenant):
    user = get_user_model().objects.create_user("auditor", "auditor@example.com", "pw")
    person = Recipient.objects.create(tenant=tenant, external_id="audited")
    entry = audit_record(actor=user, action="recipient.touch", target=person, reason="why")
    system = audit_record(actor=None, action="tenant.touch", target=tenant)
    assert (entry.actor_label, entry.tenant_id, entry.target_type) == ("auditor", tenant.pk, "comms.recipient")
    assert (system.actor_label, system.tenant_id, system.target_id) == ("system", None, str(tenant.pk))
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")


@pytest.mark.django_db(transaction=True)
def test_a_database_from_before_the_audit_move_keeps_its_rows_and_grants(tenant):
    """Migrate back to when the console owned the model, grant and write there, migrate forward."""
    executor = MigrationExecutor(connection)
    executor.migrate([("admin_console", "0011_stats_update_without_join")])
    ContentType.objects.clear_cache()
    old = ContentType.objects.get(app_label="admin_console", model="auditentry")
    permission = Permission.objects.get(content_type=old, codename="view_auditentry")
    group = Group.objects.create(name="Auditors")
    group.permissions.add(permission)
    user = get_user_model().objects.create_user("reader", "reader@example.com", "pw", is_staff=True)
    user.groups.add(group)
    with connection.cursor() as cursor:  # a row written while the table belonged to the console
        cursor.execute("INSERT INTO admin_console_auditentry (at, actor_label, action, target_type, target_id, "
                       "target_label, diff, reason) VALUES (now(), 'old', 'x.y', 't', '1', '', '{}', '')")

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()

    moved = ContentType.objects.get_for_model(AuditEntry)
    assert (moved.pk, moved.app_label) == (old.pk, "comms")
    assert not ContentType.objects.filter(app_label="admin_console", model="auditentry").exists()
    assert list(group.permissions.all()) == [permission]
    assert get_user_model().objects.get(pk=user.pk).has_perm("comms.view_auditentry")
    row = AuditEntry.objects.get(actor_label="old")
    with pytest.raises(DatabaseError), transaction.atomic():  # the append-only trigger came along
        AuditEntry.objects.filter(pk=row.pk).delete()


def test_parse_rate():
    assert parse_rate("600/min") == (600, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("100/hour") == (100, 3600)
    assert parse_rate("1/day") == (1, 86400)


def test_one_rate_window_counts_expires_and_reads():
    window = rate_window("comms:test-window", seconds=60, limit=2)
    assert isinstance(window, RateWindow) and window.name.startswith("comms:test-window:")
    assert 0 < window.wait <= 60
    assert [window.hit(), window.hit(), window.hit()] == [1, 2, 3]
    assert window.used() == 3
    assert 60 < redis_client().ttl(window.name) <= 61  # the key outlives its window by a second


def test_webhook_and_lockout_limits_count_through_the_rate_window(settings, rf):
    from comms.throttles import auth_failed, auth_locked
    from comms import errors
    from webhooks.intake import _rate_ok

    settings.COMMS_WEBHOOK_RATES = {"default": "2/min"}
    assert [_rate_ok("acme")[0] for _ in range(3)] == [True, True, False]
    assert rate_window("comms:webhook-rate:acme", seconds=60).used() == 3

    settings.COMMS_AUTH_FAILURE_LIMIT = 2
    request = rf.get("/", REMOTE_ADDR="203.0.113.9")
    auth_failed(request, kind="test")
    auth_locked(request)  # one failure: not locked yet
    auth_failed(request, kind="test")
    with pytest.raises(errors.RateLimited):
        auth_locked(request)


def test_the_api_key_budget_counts_through_the_rate_window(settings):
    from comms.auth import ApiKeyRateThrottle

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                          "api_key": "2/min"}}
    counter = ApiKeyRateThrottle().counter("abc123")
    assert isinstance(counter, RateWindow) and counter.name.startswith("comms:throttle:abc123:")
    assert (counter.limit, counter.seconds) == (2, 60)
