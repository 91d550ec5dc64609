"""Routes come from the provider registry: a new provider adds no line here."""

from webhooks.registry import urlpatterns as _registered

urlpatterns = _registered()
