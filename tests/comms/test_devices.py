"""Push device registry: register, move between recipients, list, unregister."""

import pytest

pytestmark = pytest.mark.django_db
TOKEN = "fcm-token_" + "a" * 140


def test_register_move_list_unregister(admin_api):
    admin_api.put("/api/v1/recipients/u-1", {"email": "a@example.com"}, format="json")
    admin_api.put("/api/v1/recipients/u-2", {"email": "b@example.com"}, format="json")
    first = admin_api.post("/api/v1/recipients/u-1/devices", {"token": TOKEN, "platform": "android"}, format="json")
    assert first.status_code == 201, first.content
    again = admin_api.post("/api/v1/recipients/u-1/devices", {"token": TOKEN, "platform": "android"}, format="json")
    assert again.status_code == 200
    moved = admin_api.post("/api/v1/recipients/u-2/devices", {"token": TOKEN, "platform": "ios"}, format="json")
    assert moved.status_code == 200 and moved.json()["platform"] == "ios"
    assert admin_api.get("/api/v1/recipients/u-1/devices").json()["results"] == []
    assert [d["token"] for d in admin_api.get("/api/v1/recipients/u-2/devices").json()["results"]] == [TOKEN]
    assert admin_api.post("/api/v1/devices/unregister", {"token": TOKEN}, format="json").json() == {"unregistered": True}
    assert admin_api.post("/api/v1/devices/unregister", {"token": TOKEN}, format="json").status_code == 404


def test_bad_device_input(admin_api):
    admin_api.put("/api/v1/recipients/u-1", {"email": "a@example.com"}, format="json")
    bad = admin_api.post("/api/v1/recipients/u-1/devices", {"token": "has spaces in it", "platform": "android"},
                         format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "COMMS_VALIDATION_ERROR"
    unknown = admin_api.post("/api/v1/recipients/ghost/devices", {"token": TOKEN, "platform": "web"}, format="json")
    assert unknown.status_code == 422 and unknown.json()["code"] == "COMMS_RECIPIENT_NOT_FOUND"
    platform = admin_api.post("/api/v1/recipients/u-1/devices", {"token": TOKEN, "platform": "nokia"}, format="json")
    assert platform.status_code == 400
