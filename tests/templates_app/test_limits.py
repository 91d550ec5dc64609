"""Preview and submit report every content limit the send path enforces; the send refuses the same.

Before, preview of an email whose HTML was 15.9 MB reported nothing, and the send was then refused
over the 1 MiB cap; push titles, in-app titles, bodies and links were not checked either.
"""

from __future__ import annotations

import pytest

from delivery.models import Message
from templates_app import services

pytestmark = pytest.mark.django_db

CAP = 4096  # COMMS_MAX_EMAIL_BODY_BYTES for these tests (1 MiB by default)

# (channel, the locale part that renders {{big}}, how long `big` is, what the problem says)
CASES = [
    ("email", {"body_html": "<p>{{big}}</p>"}, CAP, f"bytes; the limit is {CAP}"),
    ("email", {"body_text": "{{big}}"}, CAP + 1, f"email body is {CAP + 1} bytes; the limit is {CAP}"),
    ("email", {"subject": "{{big}}"}, 999, "subject is 999 characters; email allows 998"),
    ("push", {"push_title": "{{big}}"}, 101, "subject is 101 characters; push allows 100"),
    ("push", {"push_body": "{{big}}"}, 257, "body is 257 characters; push allows 256"),
    ("in_app", {"in_app_content": {"title": "{{big}}", "body": "b"}}, 256, "subject is 256 characters; in_app allows 255"),
    ("in_app", {"in_app_content": {"title": "t", "body": "{{big}}"}}, 10_001, "body is 10001 characters; in_app allows"),
    ("in_app", {"in_app_content": {"title": "t", "body": "b", "link": "https://x.example/{{big}}"}}, 2040,
     "link is 2058 characters; in_app allows 2048"),
    ("in_app", {"in_app_content": {"title": "{{big}}"}}, 1, "in-app content has no body"),
]
BASE = {"locale": "en-US", "subject": "S", "body_text": "T", "push_title": "P", "push_body": "B",
        "in_app_content": {"title": "t", "body": "b"}}


@pytest.fixture(autouse=True)
def _small_cap(settings):
    settings.COMMS_MAX_EMAIL_BODY_BYTES = CAP


def _data(channel: str, part: dict, big: str) -> dict:
    return {"template_key": "limits", "name": "Limits", "channels": [channel],
            "variables_schema": {"type": "object", "properties": {"big": {"type": "string"}}},
            "sample_variables": {"big": big}, "locales": [{**BASE, **part}]}


@pytest.mark.parametrize(("channel", "part", "size", "problem"), CASES)
def test_preview_reports_and_submit_refuses_what_the_send_refuses(admin_api, channel, part, size, problem):
    assert admin_api.post("/api/v1/templates", _data(channel, part, "x"), format="json").status_code == 201
    fine = admin_api.post("/api/v1/templates/limits/preview", {"variables": {"big": "x"}}, format="json").json()
    assert fine["channels"][channel]["problems"] == [] or "no body" in problem

    preview = admin_api.post("/api/v1/templates/limits/preview", {"variables": {"big": "x" * size}}, format="json")
    assert preview.status_code == 200
    assert any(problem in p for p in preview.json()["channels"][channel]["problems"]), preview.json()

    admin_api.put("/api/v1/templates/limits", {"sample_variables": {"big": "x" * size}}, format="json")
    submit = admin_api.post("/api/v1/templates/limits/submit")
    assert submit.status_code == 400 and submit.json()["code"] == "COMMS_TEMPLATE_INVALID"
    assert any(problem in p for p in submit.json()["details"]["problems"])


@pytest.fixture
def live(tenant, editor, approver):
    def make(channel: str, part: dict):
        template = services.template_create(tenant=tenant, actor=editor, user=editor, data=_data(channel, part, "x"))
        version = template.versions.get()
        services.version_submit(version=version, actor=editor, user=editor)
        services.version_approve(version=version, user=approver)
        version.refresh_from_db()
        return version

    return make


SENDABLE = [c for c in CASES if "no body" not in c[3]]  # a template without an in-app body is never live


@pytest.mark.parametrize(("channel", "part", "size", "problem"), [c for c in SENDABLE if c[0] != "push"])
def test_the_send_refuses_with_the_problem_preview_showed(api, admin_api, live, channel, part, size, problem):
    live(channel, part)
    admin_api.put("/api/v1/recipients/u-1", {"email": "u1@example.com"}, format="json")
    response = api.post("/api/v1/messages", {"channel": channel, "recipient_id": "u-1", "template": "limits",
                                             "variables": {"big": "x" * size}}, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "COMMS_TEMPLATE_RENDER"
    assert any(problem in p for p in response.json()["details"]["problems"])
    assert not Message.objects.exists()


@pytest.mark.parametrize(("part", "size", "problem"), [(c[1], c[2], c[3]) for c in SENDABLE if c[0] == "push"])
def test_push_rendering_for_send_refuses_the_same(live, part, size, problem):
    from comms import errors

    version = live("push", part)
    with pytest.raises(errors.TemplateRenderFailed) as refused:
        services.render_for_send(version=version, channel="push", variables={"big": "x" * size}, locale="",
                                 timezone="UTC", recipient_key="u-1")
    assert any(problem in p for p in refused.value.details["problems"])


def test_a_bulk_row_rendered_by_the_worker_is_held_to_the_cap(api, live):
    live("email", {"body_text": "{{big}}"})
    response = api.post("/api/v1/messages/bulk", {
        "channel": "email", "template": "limits",
        "recipients": [{"to": "a@example.com", "variables": {"big": "x"}},
                       {"to": "b@example.com", "variables": {"big": "x" * (CAP + 1)}}]}, format="json")
    assert response.status_code in (200, 202), response.content
    from delivery.services import drain_all

    drain_all()
    statuses = dict(Message.objects.values_list("recipient_address", "status"))
    assert statuses["b@example.com"] == "failed" and statuses["a@example.com"] != "failed"
