import datetime

from rest_framework import serializers

from reports.choices import ReportKind
from reports.models import AuditReport


class ReportRequestSerializer(serializers.Serializer):
    """Body of POST /reports. Which fields are required depends on ``kind`` (checked by the service)."""

    kind = serializers.ChoiceField(choices=ReportKind.choices)
    environment = serializers.CharField(required=False, help_text="kind=environment: the environment name; "
                                                                  "kind=exposure: optional, one environment")
    fingerprint = serializers.CharField(required=False, help_text="kind=artifact: lowercase 64-hex SHA-256")
    vulnerability = serializers.CharField(required=False, help_text="kind=exposure: any id of the vulnerability "
                                                                    "(CVE-…, GHSA-…, PYSEC-…)")
    # "from" is a Python keyword: declared below under its wire name.
    to = serializers.CharField(required=False, help_text="ISO 8601 date or date-time, exclusive")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField(required=False, help_text="ISO 8601 date or date-time, inclusive")
        return fields


class ReportSerializer(serializers.ModelSerializer):
    """A report's status; hashes, sizes and download links once it is done."""

    requested_by = serializers.CharField(read_only=True)
    pdf_sha256 = serializers.SerializerMethodField()
    data_sha256 = serializers.SerializerMethodField()
    pdf_size = serializers.SerializerMethodField()
    data_size = serializers.SerializerMethodField()
    page_count = serializers.SerializerMethodField()
    journal_index = serializers.SerializerMethodField()
    journal = serializers.SerializerMethodField()
    withdrawn_at = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = AuditReport
        fields = ["id", "kind", "title", "params", "sections", "status", "progress", "progress_note", "error",
                  "requested_by", "created_at", "started_at", "finished_at", "pdf_sha256", "data_sha256", "pdf_size",
                  "data_size", "page_count", "journal_index", "journal", "withdrawn_at", "links"]
        read_only_fields = fields

    def _output(self, report):
        return report.output_or_none

    def get_pdf_sha256(self, report) -> str | None:
        output = self._output(report)
        return output.pdf_sha256 if output else None

    def get_data_sha256(self, report) -> str | None:
        output = self._output(report)
        return output.data_sha256 if output else None

    def get_pdf_size(self, report) -> int | None:
        output = self._output(report)
        return output.pdf_size if output else None

    def get_data_size(self, report) -> int | None:
        output = self._output(report)
        return output.data_size if output else None

    def get_page_count(self, report) -> int | None:
        output = self._output(report)
        return output.page_count if output else None

    def get_journal_index(self, report) -> int | None:
        """The number of the journal leaf that committed to this report's output (None until it is done),
        as every record that appends a leaf answers it; ``journal.covers_index`` is what the report covers."""
        output = self._output(report)
        return output.leaf.index if output else None

    def get_journal(self, report) -> dict | None:
        """The journal position the report covers and the leaf that committed to its hashes."""
        output = self._output(report)
        if not output:
            return None
        return {"covers_index": output.journal_index, "covers_hash": output.journal_hash,
                "report_leaf_index": output.leaf.index, "report_leaf_hash": output.leaf.leaf_hash}

    def get_withdrawn_at(self, report) -> datetime.datetime | None:
        """When an erasure of a person it printed deleted its PDF and JSON (downloads then answer 410)."""
        output = self._output(report)
        return output.withdrawn_at if output else None

    def get_links(self, report) -> dict:
        base = f"/api/v2/orgs/{report.org.slug}/reports/{report.pk}"
        links = {"self": base}
        output = self._output(report)
        if output and output.withdrawn_at is None:
            links.update({"pdf": f"{base}/pdf", "json": f"{base}/json"})
        return links
