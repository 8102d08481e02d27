"""The org's journal page: where its history stands (the latest signed checkpoint, witnesses, the
timestamp), the keys that sign it, recent checkpoints, and how to verify all of it without trusting
csm (docs/journal.md). Every role may see it: it shows hashes and signatures, never a leaf's content."""

from django.db.models import Count
from django.shortcuts import render

from csm.web import org_view
from journal import selectors
from journal.models import JournalCheckpoint, JournalHead, JournalKey, JournalTree

RECENT = 20


@org_view("journal.view")
def journal_page(request):
    org = request.org
    recent = list(JournalCheckpoint.objects.for_org(org).annotate(cosigned=Count("cosignatures"))
                  .order_by("-id")[:RECENT])
    latest = recent[0] if recent else None
    head = JournalHead.objects.filter(org=org).first()
    keys = list(JournalKey.objects.order_by("-created_at", "-id"))
    return render(request, "journal/journal.html", {
        "latest": latest,
        "note": selectors.served_note(latest) if latest else "",
        "root_b64": selectors.b64(bytes.fromhex(latest.root_hash)) if latest else "",
        "tree": JournalTree.objects.filter(org=org).first(),
        "leaves": head.last_index if head else 0,
        "keys": keys,
        "current_key": keys[0].verifier if keys else "",
        "recent": recent,
        "api": f"{request.build_absolute_uri('/')}api/v2/journal/{org.slug}",
    })
