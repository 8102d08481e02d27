"""Shapes of the vulnerability API: the query parameters it accepts and the answers it gives (the answers
are dicts from ``vulns.exposure``; these serializers render them and document them in the schema)."""

from rest_framework import serializers

from vulns.choices import VulnSeverity

# --- query parameters -----------------------------------------------------------------------------------


class SeveritiesField(serializers.CharField):
    """``critical`` or a comma-separated list (``critical,high``): every value must be a severity."""

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        values = [value.strip().lower() for value in text.split(",") if value.strip()]
        wrong = [value for value in values if value not in VulnSeverity.values]
        if wrong or not values:
            raise serializers.ValidationError(
                f"{', '.join(repr(v) for v in wrong) or 'nothing'} is not a severity; use one or more of "
                f"{', '.join(VulnSeverity.values)}, separated by commas.")
        return set(values)


class EnvironmentQuery(serializers.Serializer):
    environment = serializers.CharField(required=False, max_length=100, help_text="an environment name")


class VulnerabilityListQuery(EnvironmentQuery):
    severity = SeveritiesField(required=False, max_length=100,
                               help_text="one severity or several, comma-separated: critical,high")
    running = serializers.BooleanField(required=False, allow_null=True, default=None,
                                       help_text="true: only vulnerabilities running now; false: only the others")


class ComponentQuery(EnvironmentQuery):
    purl = serializers.CharField(max_length=1000, help_text="pkg:TYPE/[NAMESPACE/]NAME, or …@VERSION for one version")


# --- answers -------------------------------------------------------------------------------------------


class WindowSerializer(serializers.Serializer):
    """One environment × artifact interval, read from the snapshot journal: the artifact ran in snapshots
    ``from_index <= N < to_index`` of ``environment`` (``to_index`` null: it still runs)."""

    environment = serializers.CharField()
    environment_id = serializers.IntegerField()
    artifact_name = serializers.CharField()
    artifact_names = serializers.ListField(child=serializers.CharField(),
                                           help_text="every name the fingerprint ran under in this window")
    fingerprint = serializers.CharField()
    components = serializers.ListField(child=serializers.CharField(), help_text="matched components (purls)")
    running = serializers.BooleanField()
    vars()["from"] = serializers.DateTimeField(help_text="time of snapshot from_index")
    since = serializers.DateTimeField(source="from", help_text="= from")
    to = serializers.DateTimeField(allow_null=True, help_text="time of snapshot to_index; null while running")
    from_index = serializers.IntegerField(help_text="first snapshot it ran in")
    to_index = serializers.IntegerField(allow_null=True, help_text="first snapshot it no longer ran in")
    from_journal_index = serializers.IntegerField(allow_null=True, help_text="journal leaf of snapshot from_index")
    to_journal_index = serializers.IntegerField(allow_null=True, help_text="journal leaf of snapshot to_index")


class SuppressionSerializer(serializers.Serializer):
    status = serializers.CharField()
    justification = serializers.CharField(allow_blank=True)
    impact_statement = serializers.CharField(allow_blank=True, required=False)
    vulnerability_id = serializers.CharField(required=False, help_text="the id the VEX statement names")
    attestation_id = serializers.IntegerField(required=False, help_text="the vex attestation")
    created_at = serializers.DateTimeField(required=False)


class SuppressedWindowSerializer(WindowSerializer):
    suppression = SuppressionSerializer(help_text="the VEX statement that suppresses it")


class CoverageUnknownSerializer(serializers.Serializer):
    """A running artifact whose vulnerabilities csm cannot know (no SBOM, or an unknown fingerprint)."""

    environment = serializers.CharField()
    environment_id = serializers.IntegerField()
    artifact_name = serializers.CharField()
    artifact_names = serializers.ListField(child=serializers.CharField())
    fingerprint = serializers.CharField(allow_blank=True)
    reason = serializers.ChoiceField(choices=["no_sbom", "unknown_fingerprint"])
    since = serializers.DateTimeField(help_text="running since")
    from_index = serializers.IntegerField(help_text="snapshot its current entry starts at")


class VulnerabilitySummarySerializer(serializers.Serializer):
    group_id = serializers.CharField(help_text="the group's id: its CVE when it has one")
    osv_ids = serializers.ListField(child=serializers.CharField(), help_text="the records of the group")
    aliases = serializers.ListField(child=serializers.CharField(), help_text="every id of the group")
    summary = serializers.CharField(allow_blank=True)
    severity = serializers.ChoiceField(choices=VulnSeverity.choices, help_text="the worst its records state")
    cvss_score = serializers.FloatField(allow_null=True)
    cvss_vector = serializers.CharField(allow_blank=True)
    published = serializers.DateTimeField(allow_null=True)
    modified = serializers.DateTimeField(allow_null=True)


class VulnerabilityListItemSerializer(VulnerabilitySummarySerializer):
    affected_artifacts = serializers.IntegerField(help_text="artifacts (fingerprints) with a matched component")
    running_artifacts = serializers.IntegerField(help_text="environment × artifact pairs running now, unsuppressed")
    running_environments = serializers.ListField(child=serializers.CharField())
    suppressed_artifacts = serializers.IntegerField(help_text="artifacts a VEX statement declares not affected")
    ever_ran = serializers.BooleanField()


class ReferenceSerializer(serializers.Serializer):
    type = serializers.CharField(allow_blank=True)
    url = serializers.CharField()


class AdvisoryRecordSerializer(serializers.Serializer):
    osv_id = serializers.CharField()
    summary = serializers.CharField(allow_blank=True)
    severity = serializers.CharField()
    cvss_score = serializers.FloatField(allow_null=True)
    cvss_vector = serializers.CharField(allow_blank=True)
    published = serializers.DateTimeField(allow_null=True)
    modified = serializers.DateTimeField()
    withdrawn = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField(allow_blank=True)


class AffectedSerializer(serializers.Serializer):
    osv_id = serializers.CharField()
    ecosystem = serializers.CharField()
    name = serializers.CharField()
    purl_type = serializers.CharField()
    package_key = serializers.CharField()
    ranges = serializers.JSONField(help_text="OSV ranges as the record states them")
    versions = serializers.ListField(child=serializers.CharField())


class VulnerabilityDetailSerializer(VulnerabilitySummarySerializer):
    id = serializers.CharField(help_text="the id asked for")
    details = serializers.CharField(allow_blank=True)
    withdrawn = serializers.DateTimeField(allow_null=True, help_text="set when every record is withdrawn")
    references = ReferenceSerializer(many=True)
    advisories = AdvisoryRecordSerializer(many=True)
    affected = AffectedSerializer(many=True)
    environment = serializers.CharField(allow_null=True, help_text="the environment asked about, or null: all")
    running = WindowSerializer(many=True, help_text="windows open now")
    history = WindowSerializer(many=True, help_text="past windows")
    suppressed = SuppressedWindowSerializer(many=True, help_text="windows of artifacts VEX declares unaffected")
    coverage_unknown = CoverageUnknownSerializer(many=True)
    matched_fingerprints = serializers.ListField(child=serializers.CharField())
    journal_index = serializers.IntegerField(help_text="the org journal's last leaf when answered")


class ComponentVulnerabilitySerializer(VulnerabilitySummarySerializer):
    components = serializers.ListField(child=serializers.CharField())
    fixed = serializers.ListField(child=serializers.CharField())
    suppressed = SuppressionSerializer(allow_null=True)
    first_matched_at = serializers.DateTimeField()


class ComponentArtifactSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    artifact_names = serializers.ListField(child=serializers.CharField())
    components = serializers.ListField(child=serializers.CharField(), help_text="its components the purl names")
    running = WindowSerializer(many=True)
    history = WindowSerializer(many=True)
    vulnerabilities = ComponentVulnerabilitySerializer(many=True)


class ComponentAnswerSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    purl = serializers.CharField()
    package_key = serializers.CharField()
    version = serializers.CharField(allow_blank=True)
    environment = serializers.CharField(allow_null=True)
    never_ran = serializers.IntegerField(help_text="artifacts with the component that never ran")
    coverage_unknown = CoverageUnknownSerializer(many=True)
    journal_index = serializers.IntegerField()
    results = ComponentArtifactSerializer(many=True)


class VulnerabilityListAnswerSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    environment = serializers.CharField(allow_null=True)
    journal_index = serializers.IntegerField()
    results = VulnerabilityListItemSerializer(many=True)
