"""Web sessions of people: one row per sign-in, so a person (or an admin) can see and end them
(docs/identity.md, "Sessions")."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class UserSession(models.Model):
    """A signed-in browser session. The Django session key is stored only as its SHA-256 (a row leaks no
    usable key); ``identity.middleware.SessionActivityMiddleware`` finds the row by hashing the cookie's key,
    updates ``last_seen_at`` and signs out a session whose row was ended elsewhere. Not tenant-owned: a person
    has one session across all their orgs; events about it are audited in each of their orgs."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="web_sessions")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    device = models.CharField(max_length=100, blank=True, help_text="Browser and system, from the user agent")
    method = models.CharField(max_length=40, help_text="How the person signed in: password, sso, signup, ...")
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["user", "ended_at"], name="user_session_live")]

    def __str__(self):
        return f"{self.device or 'unknown device'} ({self.user})"
