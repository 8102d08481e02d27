"""What csm learned is normal for an org's credentials, so a deviation can be flagged (identity.activity)."""

from django.db import models
from django.utils import timezone

from csm.scoping import OrgScopedManager
from tenants.models import ApiToken, Org


class TokenNetwork(models.Model):
    """A network (the /24 of an IPv4 address, the /56 of an IPv6 one: ``CSM_UNUSUAL_IPV*_PREFIX``) an API
    token was used from. The first one is learned silently; every later new one is flagged once.
    ``last_seen`` moves when the shared cache forgot the pair (at most once per
    ``CSM_UNUSUAL_NETWORK_CACHE_SECONDS``), not on every request."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="networks")
    network = models.CharField(max_length=50, help_text="CIDR, e.g. 10.1.2.0/24")
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "network"], name="token_network_unique")]
        ordering = ["token", "first_seen"]

    def __str__(self):
        return f"{self.network} ({self.token.prefix}…)"


class EnvironmentReporter(models.Model):
    """Who reported an environment: a service account (``service_account:<id>``, whichever of its tokens),
    a person's token (``token:<id>``) or a person signed in (``user:<id>``). The first reporter of an
    environment is normal; a different, new one later is flagged. ``environment_id`` is a plain id
    (environments live on a higher floor, snapshots)."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    environment_id = models.BigIntegerField()
    reporter_key = models.CharField(max_length=64)
    reporter_label = models.CharField(max_length=255, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)

    objects = OrgScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "environment_id", "reporter_key"],
                                               name="environment_reporter_unique")]
        ordering = ["environment_id", "first_seen"]

    def __str__(self):
        return f"{self.reporter_label or self.reporter_key} → environment {self.environment_id}"
