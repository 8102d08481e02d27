from django.apps import AppConfig


class JournalConfig(AppConfig):
    """The per-org append-only journal: leaves, the head, canonical encoding and verification.

    The ground floor: every other app appends to it (``journal.services.append_leaf``) and registers a
    check of its own leaf kinds (``journal.verify.register_row_check``); it imports none of them."""

    name = "journal"

    def ready(self):
        # A mistyped witness key would otherwise surface only when a witness's cosignature is refused:
        # stop every process at startup instead, naming the key (ImproperlyConfigured).
        from csm.metrics import register_scrape_collector
        from journal.metrics import collect_journal_metrics
        from journal.witness import witness_verifiers

        witness_verifiers()
        register_scrape_collector(collect_journal_metrics)
