"""evidence/filters.py: kosli's ``limit`` on the flow, trail, artifact and attestation lists through
FilterSets, on real PostgreSQL rows: clamped to 1..500, newest first, and parsed by csm.lib.bounded, so a
Unicode digit or a sign is a 400 naming ``limit`` (``int()`` used to read '٣' as 3 and '-1' as 1)."""

import pytest

from evidence.filters import ArtifactFilterSet, TrailFilterSet
from evidence.models import Artifact, Trail
from tests.evidence.conftest import begin_trail, make_flow, report_artifact

pytestmark = pytest.mark.django_db


@pytest.fixture
def trails(reporter):
    make_flow(reporter)
    for n in range(3):
        begin_trail(reporter, name=f"build-{n}")
        assert report_artifact(reporter, f"{n}" * 64, trail=f"build-{n}").status_code in (200, 201)
    return reporter


def test_trail_and_artifact_filtersets_take_the_newest_up_to_the_limit(org, trails):
    newest = [t.name for t in TrailFilterSet({"limit": "2"}, queryset=Trail.objects.for_org(org)).qs_or_400()]
    assert newest == ["build-2", "build-1"]
    artifacts = ArtifactFilterSet({"limit": "1"}, queryset=Artifact.objects.for_org(org)).qs_or_400()
    assert [a.fingerprint for a in artifacts] == ["2" * 64]
    assert len(TrailFilterSet({}, queryset=Trail.objects.for_org(org)).qs_or_400()) == 3


@pytest.mark.parametrize("path", ["/api/v2/trails/acme/backend", "/api/v2/artifacts/acme/backend"])
def test_limit_over_the_api_is_clamped(trails, path):
    assert len(trails.get(path, {"limit": "0"}).json()) == 1
    assert len(trails.get(path, {"limit": "2"}).json()) == 2
    assert len(trails.get(path, {"limit": "9" * 18}).json()) == 3


@pytest.mark.parametrize("path", ["/api/v2/trails/acme/backend", "/api/v2/artifacts/acme/backend",
                                  "/api/v2/flows/acme"])
@pytest.mark.parametrize("limit", ["\u0663", "-1", "two"])
def test_a_limit_that_is_not_ascii_digits_is_a_400_naming_it(trails, path, limit):
    response = trails.get(path, {"limit": limit})
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["limit"] and error["message"].startswith("limit must be a whole number")
