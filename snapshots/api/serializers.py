"""Input validation and output shapes of the snapshot API (kosli-compatible field names)."""

from rest_framework import serializers

from snapshots.choices import EnvironmentType
from snapshots.models import MAX_REPORT_INTERVAL_SECONDS, Environment, env_name_validator


def unix(moment) -> float | None:
    """kosli's timestamps: seconds since the epoch as a number (None stays None)."""
    return moment.timestamp() if moment else None


class EnvironmentInputSerializer(serializers.Serializer):
    """Body of ``PUT /api/v2/environments/{org}`` (create or update, idempotent)."""

    name = serializers.CharField(max_length=100, validators=[env_name_validator])
    type = serializers.ChoiceField(choices=EnvironmentType.choices)
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    include_scaling = serializers.BooleanField(required=False, allow_null=True, default=None)
    included_environments = serializers.ListField(child=serializers.CharField(max_length=100), required=False,
                                                  allow_null=True, default=None)
    tags = serializers.DictField(child=serializers.CharField(max_length=200, allow_blank=True), required=False,
                                 allow_null=True, default=None)
    expected_report_interval_seconds = serializers.IntegerField(min_value=60, max_value=MAX_REPORT_INTERVAL_SECONDS,
                                                                required=False, allow_null=True, default=None)

    # csm's own (kosli's CLI sends neither): the change windows, validated by snapshots.change_windows.
    change_windows = serializers.ListField(child=serializers.DictField(), required=False, allow_null=True,
                                          default=None, max_length=50)
    change_window_tz = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)

    require_authorization = serializers.BooleanField(required=False, allow_null=True, default=None)
    authorization_reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")

    def validate_tags(self, value):
        if value is not None and len(value) > 50:
            raise serializers.ValidationError("At most 50 tags.")
        return value


class EnvironmentAuthorizationSerializer(serializers.Serializer):
    """Body of ``PATCH /api/v2/environments/{org}/{env}``: require or relax authorization, with a reason."""

    require_authorization = serializers.BooleanField()
    reason = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")


def environment_data(env: Environment, members: list[str] | None = None, extra: dict | None = None) -> dict:
    """An environment as the API shows it (list and read). ``extra``: the environment enrichers' fields
    (``hooks.enrich_environments``: compliance, null when no policy applies). Without them compliance is
    null (unknown), never true."""
    return {
        "name": env.name,
        "type": env.type,
        "description": env.description,
        "tags": env.tags,
        "include_scaling": env.include_scaling,
        "included_environments": members if members is not None else [],
        "archived": env.archived,
        "created_at": env.created_at,
        "last_report_at": env.last_report_at,
        "last_reported_at": unix(env.last_report_at),
        "last_modified_at": unix(env.last_snapshot_at),
        "latest_snapshot_index": env.last_snapshot_index or None,
        "latest_snapshot_at": env.last_snapshot_at,
        "artifact_count": env.current_artifact_count,
        "expected_report_interval_seconds": env.expected_report_interval_seconds,
        "stale": env.is_stale(),
        "require_authorization": env.require_authorization,
        "change_windows": env.change_windows,
        "change_window_tz": env.change_window_tz,
        "compliant": None,
        "compliance_status": "unknown",
    } | (extra or {})


def event_data(event) -> dict:
    """One environment event (kosli's events-log field names plus ours)."""
    if event.kind == "scaled":
        description = f"Scaled from {event.old_count} to {event.new_count} instance(s)"
    elif event.kind == "started":
        description = f"Started: {event.new_count} instance(s)"
    else:
        description = f"Exited: {event.old_count} instance(s)"
    return {
        "snapshot_index": event.snapshot_index,
        "kind": event.kind,
        "artifact_name": event.name,
        "sha256": event.fingerprint,
        "fingerprint": event.fingerprint,
        "old_count": event.old_count,
        "new_count": event.new_count,
        "description": description,
        "reported_at": unix(event.created_at),
        "time": event.created_at,
        "pipeline": "",
        "deployments": [],
    }
