"""Sending domains, their DKIM keys and the history of their DNS checks (imported by delivery.models).

A key moves pending → active → retiring → retired. A pending key is published but does not sign until
a DNS check has seen it (receivers that cannot fetch the key fail the signature, RFC 6376 §6.1.2);
a retiring key no longer signs but stays in the records until its overlap ends, so mail signed with
it just before a rotation still verifies while it sits in queues (RFC 6376 §3.1 on selectors).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from comms.crypto import decrypt_json, encrypt_json


class SendingDomain(models.Model):
    """A domain a tenant sends From; its keys sign mail whose From domain is it or a subdomain of it."""

    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="+")
    domain = models.CharField(max_length=253, help_text="A-label (IDNA) form, lower case, no trailing dot.")
    return_path = models.CharField(max_length=253, blank=True,
                                   help_text="Bounce (envelope sender) domain: bounce.example.com for example.com.")
    check_status = models.CharField(max_length=8, default="unknown", help_text="Worst result of the last DNS check.")
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "domain"], name="sendingdomain_unique")]
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    @property
    def unicode_domain(self) -> str:
        """The domain as people write it (U-labels), for display."""
        import idna

        try:
            return idna.decode(self.domain)
        except idna.IDNAError:
            return self.domain


class DkimKey(models.Model):
    class Algorithm(models.TextChoices):
        RSA = "rsa", "RSA-2048 (rsa-sha256)"
        ED25519 = "ed25519", "Ed25519 (ed25519-sha256, RFC 8463)"

    class State(models.TextChoices):
        PENDING = "pending"  # published, waiting for a DNS check to see it before it signs
        ACTIVE = "active"  # signs
        RETIRING = "retiring"  # no longer signs, still published until retire_at
        RETIRED = "retired"  # may be removed from DNS

    domain = models.ForeignKey(SendingDomain, on_delete=models.CASCADE, related_name="keys")
    selector = models.CharField(max_length=63)
    algorithm = models.CharField(max_length=8, choices=Algorithm.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    private_key_encrypted = models.TextField(editable=False)
    public_key = models.TextField(help_text="The p= value: base64 of the key as published.")
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retire_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["domain", "selector"], name="dkimkey_unique_selector")]
        indexes = [models.Index(fields=["state"], condition=Q(state__in=["pending", "active", "retiring"]),
                                name="dkimkey_live_idx")]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.domain} ({self.algorithm}, {self.state})"

    @property
    def private_key(self) -> str:
        """The private key as dkimpy wants it: RSA as PEM, Ed25519 as base64 of the 32-byte seed."""
        return decrypt_json(self.private_key_encrypted)

    @private_key.setter
    def private_key(self, value: str) -> None:
        self.private_key_encrypted = encrypt_json(value)


class DomainCheck(models.Model):
    """One DNS check of a sending domain: each check's result, kept as history."""

    domain = models.ForeignKey(SendingDomain, on_delete=models.CASCADE, related_name="checks")
    checked_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=8, help_text="Worst of the results: ok < unknown < warn < fail.")
    results = models.JSONField(default=dict)
    regressions = models.JSONField(default=list, blank=True, help_text="Checks that went from ok to fail.")

    class Meta:
        indexes = [models.Index(fields=["domain", "-checked_at"], name="domaincheck_recent_idx")]
        ordering = ["-checked_at", "-id"]
