"""What an erased person leaves in the snapshots app (audit/erasure.py runs it; docs/operations.md,
"Erasure of a person"): reports received from them keep their body, hash and outcome, but who sent them
(``reporter_label`` and the ``actor`` the worker audits with: label, address, user agent) becomes
``ERASED``. Snapshots and environment names are label columns (registered in apps.py)."""

from django.db.models import Q

from audit.erasure import naming
from journal.personal import ERASED
from snapshots.models import Report
from tenants.models import ApiToken


def erase_reporters(ctx, users, email: str) -> dict[str, int]:
    tokens = ApiToken.objects.filter(user__in=users).values_list("pk", flat=True)
    rows = (Report.objects.filter(Q(user__in=users) | Q(token_id__in=tokens) | naming("reporter_label", [email]))
            .exclude(reporter_label=ERASED))
    erased = 0
    for pk, actor, erasures in rows.values_list("pk", "actor", "erasures").order_by("pk").iterator():
        actor = {**(actor or {}), "actor_label": ERASED, "ip": None, "user_agent": ERASED}
        Report.objects.filter(pk=pk).update(reporter_label=ERASED, actor=actor, erasures=erasures + 1)
        erased += 1
    return {"reports' reporter erased": erased}
