import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from templates_app import services
from templates_app.models import Template
from tests.templates_app.fixtures import order_template_data


@pytest.fixture(autouse=True)
def _no_asset_fetch(settings):
    # Image checks fetch over HTTP; tests that exercise them switch this back on with a loopback server.
    settings.COMMS_ASSET_CHECK = False


def _user(name: str, *perms: str):
    user = get_user_model().objects.create_user(name, f"{name}@example.com", "pw-" + name, is_staff=True)
    for perm in perms:
        app, code = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=code))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def editor(db):
    return _user("editor")


@pytest.fixture
def approver(db):
    return _user("approver", "templates_app.approve_template")


@pytest.fixture
def approver2(db):
    return _user("approver2", "templates_app.approve_template")


@pytest.fixture
def make_live(editor, approver, approver2):
    """Create a template and take it through review to active."""

    def make(tenant, **extra) -> Template:
        template = services.template_create(tenant=tenant, actor=editor, user=editor, data=order_template_data(**extra))
        version = template.versions.get()
        services.version_submit(version=version, actor=editor, user=editor)
        services.version_approve(version=version, user=approver)
        if template.critical:
            services.version_approve(version=version, user=approver2)
        template.refresh_from_db()
        return template

    return make
