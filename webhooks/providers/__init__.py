"""One module per inbound provider; each class declares everything about its provider (see
``webhooks.intake.IntakeView``) and is listed once in ``webhooks.registry.PROVIDERS``."""
