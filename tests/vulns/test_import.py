"""OSV import (``import_vulns``, ``vulns.osv``): real advisories from the public databases
(tests/vulns/fixtures/osv/SOURCES.md) read from a directory, a zip and a local HTTP server."""

import json
import shutil
import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from vulns import hooks, osv
from vulns.choices import VulnSeverity
from vulns.models import Advisory, AdvisoryAlias, AffectedPackage, VulnSource

FIXTURES = Path(__file__).parent / "fixtures"
OSV_DIR = FIXTURES / "osv"
UPDATES_DIR = FIXTURES / "osv-updates"
ALL_IDS = {"GHSA-h5c8-rqwp-cp95", "GHSA-462w-v97r-4m45", "PYSEC-2019-217", "PYSEC-2021-13", "GHSA-35jh-r3h4-6jhm",
           "GHSA-jfh8-c2jp-5v3q", "GO-2023-2102", "GO-2022-0617", "RUSTSEC-2020-0071", "GHSA-8xww-x3g3-6jcv",
           "GHSA-5crp-9r3c-p9vr", "DSA-3029-1", "CVE-2022-27449"}
WITHDRAWN_IDS = {"PYSEC-2021-13", "GO-2022-0617"}

pytestmark = pytest.mark.django_db


def run_import(*sources) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_vulns", *[str(source) for source in sources], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def zip_of(directory: Path, target: Path) -> Path:
    """A zip laid out like osv.dev's per-ecosystem all.zip: one record per member, at the top level."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*.json")):
            archive.write(path, path.name)
    return target


def advisory_writes(queries) -> list[str]:
    return [query["sql"] for query in queries
            if query["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
            and ("vulns_advisory" in query["sql"] or "vulns_affectedpackage" in query["sql"])]


# --- directory, zip, re-import ------------------------------------------------------------------------


def test_a_directory_of_real_records_is_imported_with_packages_severity_and_counts():
    out, err = run_import(OSV_DIR)

    assert "11 created, 0 updated, 0 unchanged, 2 withdrawn, 0 rejected" in out
    assert err == ""
    assert set(Advisory.objects.values_list("osv_id", flat=True)) == ALL_IDS
    keys = set(AffectedPackage.objects.values_list("package_key", flat=True))
    assert {"pypi/jinja2", "npm/lodash", "npm/lodash-es", "maven/org.apache.logging.log4j/log4j-core",
            "golang/golang.org/x/net", "cargo/time", "gem/actionpack", "nuget/newtonsoft.json",
            "deb/debian/nginx", "apk/alpine/mariadb"} <= keys
    # Debian's release stays in the ecosystem, beside the key; one Alpine row per release branch.
    assert AffectedPackage.objects.get(package_key="deb/debian/nginx").ecosystem == "Debian:7"
    assert AffectedPackage.objects.filter(advisory__osv_id="CVE-2022-27449").count() == 5
    log4j = Advisory.objects.get(osv_id="GHSA-jfh8-c2jp-5v3q")
    assert (log4j.severity, log4j.cvss_score) == (VulnSeverity.CRITICAL, 10.0)
    assert log4j.cvss_vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
    assert log4j.record["database_specific"]["severity"] == "CRITICAL"  # the record kept as published
    ranges = AffectedPackage.objects.filter(advisory=log4j).values_list("ranges", flat=True)
    assert [{"introduced": "2.13.0"}, {"fixed": "2.15.0"}] in [r[0]["events"] for r in ranges]
    # No CVSS vector: the database's own word (GHSA LOW), and without either: unknown, never low.
    assert Advisory.objects.get(osv_id="GHSA-8xww-x3g3-6jcv").severity == VulnSeverity.LOW
    go = Advisory.objects.get(osv_id="GO-2023-2102")
    assert go.severity == VulnSeverity.UNKNOWN
    assert go.published is None and go.modified.year == 1  # the Go database's zero time is no publication date
    assert Advisory.objects.get(osv_id="DSA-3029-1").severity == VulnSeverity.UNKNOWN
    assert Advisory.objects.get(osv_id="RUSTSEC-2020-0071").severity == VulnSeverity.MEDIUM
    assert set(Advisory.objects.exclude(withdrawn=None).values_list("osv_id", flat=True)) == WITHDRAWN_IDS
    source = VulnSource.objects.get(location=str(OSV_DIR))
    assert source.last_status == "ok" and source.last_counts["created"] == 11 and source.last_success_at


def test_reimporting_unchanged_records_writes_nothing(django_capture_on_commit_callbacks):
    run_import(OSV_DIR)
    before = dict(Advisory.objects.values_list("osv_id", "updated_at"))

    with CaptureQueriesContext(connection) as queries:
        result = osv.import_sources([str(OSV_DIR)])

    assert (result.unchanged, result.created, result.updated, result.withdrawn) == (13, 0, 0, 0)
    assert result.changed_ids == []
    assert advisory_writes(queries.captured_queries) == []
    assert dict(Advisory.objects.values_list("osv_id", "updated_at")) == before


def test_a_zip_like_osv_dev_all_zip_imports_the_same_records(tmp_path):
    archive = zip_of(OSV_DIR, tmp_path / "all.zip")

    out, _ = run_import(archive)

    assert "11 created, 0 updated, 0 unchanged, 2 withdrawn, 0 rejected" in out
    assert set(Advisory.objects.values_list("osv_id", flat=True)) == ALL_IDS
    # The same records from another source (directory, reformatted or not) are unchanged.
    out, _ = run_import(OSV_DIR)
    assert "0 created, 0 updated, 13 unchanged" in out


def test_a_record_reformatted_but_equal_counts_as_unchanged(tmp_path):
    run_import(OSV_DIR / "maven")
    record = json.loads((OSV_DIR / "maven" / "GHSA-jfh8-c2jp-5v3q.json").read_text())
    (tmp_path / "log4j.json").write_text(json.dumps(dict(reversed(list(record.items())))))

    out, _ = run_import(tmp_path)

    assert "0 created, 0 updated, 1 unchanged" in out


# --- modified, older, withdrawn -----------------------------------------------------------------------


def test_a_newer_modified_updates_the_advisory_and_replaces_its_packages():
    run_import(OSV_DIR / "nuget")
    first = Advisory.objects.get(osv_id="GHSA-5crp-9r3c-p9vr")
    old_rows = set(AffectedPackage.objects.filter(advisory=first).values_list("pk", flat=True))
    assert (first.severity, first.group_id, first.aliases) == (VulnSeverity.LOW, "GHSA-5crp-9r3c-p9vr", [])

    out, _ = run_import(UPDATES_DIR)

    assert "0 created, 1 updated, 0 unchanged" in out
    advisory = Advisory.objects.get(osv_id="GHSA-5crp-9r3c-p9vr")
    assert advisory.modified.isoformat() == "2024-01-03T20:06:36+00:00"
    assert (advisory.severity, advisory.cvss_score) == (VulnSeverity.HIGH, 7.5)
    assert advisory.aliases == ["CVE-2024-21907"] and advisory.group_id == "CVE-2024-21907"
    new_rows = set(AffectedPackage.objects.filter(advisory=advisory).values_list("pk", flat=True))
    assert len(new_rows) == 1 and not new_rows & old_rows
    assert [advisory] == osv.group_for("cve-2024-21907")


def test_an_older_modified_never_overwrites_what_is_stored():
    run_import(UPDATES_DIR)

    out, _ = run_import(OSV_DIR / "nuget")

    assert "0 created, 0 updated, 0 unchanged, 0 withdrawn, 0 rejected, 1 older than stored (ignored)" in out
    advisory = Advisory.objects.get(osv_id="GHSA-5crp-9r3c-p9vr")
    assert advisory.aliases == ["CVE-2024-21907"] and advisory.severity == VulnSeverity.HIGH


def test_withdrawing_a_stored_advisory_marks_it_and_counts_it_as_withdrawn(tmp_path):
    withdrawn = json.loads((OSV_DIR / "pypi" / "PYSEC-2021-13.json").read_text())
    before = {key: value for key, value in withdrawn.items() if key != "withdrawn"}
    before["modified"] = "2021-06-01T00:00:00Z"  # the record as it stood before PyPA withdrew it
    (tmp_path / "PYSEC-2021-13.json").write_text(json.dumps(before))
    run_import(tmp_path)
    assert Advisory.objects.get(osv_id="PYSEC-2021-13").withdrawn is None

    result = osv.import_sources([str(OSV_DIR / "pypi")])

    assert result.withdrawn == 1
    advisory = Advisory.objects.get(osv_id="PYSEC-2021-13")
    assert advisory.withdrawn.isoformat() == "2023-07-25T12:32:00+00:00"
    assert advisory.pk in result.changed_ids


# --- alias groups -------------------------------------------------------------------------------------


def test_aliases_group_ghsa_pysec_and_cve_whatever_the_order_and_case(tmp_path):
    # The PYSEC record first, alone: it already carries the CVE as its group.
    (tmp_path / "pysec").mkdir()
    shutil.copy(OSV_DIR / "pypi" / "PYSEC-2019-217.json", tmp_path / "pysec")
    run_import(tmp_path / "pysec")
    assert Advisory.objects.get(osv_id="PYSEC-2019-217").group_id == "CVE-2019-10906"

    run_import(OSV_DIR / "pypi")

    group = {advisory.osv_id for advisory in osv.group_for("CVE-2019-10906")}
    assert group == {"PYSEC-2019-217", "GHSA-462w-v97r-4m45"}
    assert {a.osv_id for a in osv.group_for("ghsa-462w-v97r-4m45")} == group
    assert {a.osv_id for a in osv.group_for("pysec-2019-217")} == group
    assert {a.osv_id for a in osv.group_for("GHSA-h5c8-rqwp-cp95")} == {"GHSA-h5c8-rqwp-cp95"}
    assert Advisory.objects.get(osv_id="GHSA-h5c8-rqwp-cp95").group_id == "CVE-2024-22195"
    assert osv.group_for("CVE-1999-0001") == [] and osv.group_for("") == []


def test_an_alias_removed_splits_the_group_again(tmp_path):
    run_import(OSV_DIR / "pypi")
    pysec = json.loads((OSV_DIR / "pypi" / "PYSEC-2019-217.json").read_text())
    pysec["aliases"] = ["GHSA-462w-v97r-4m45"]  # a revision that drops the CVE and keeps the GHSA link
    pysec["modified"] = "2024-01-01T00:00:00Z"
    (tmp_path / "PYSEC-2019-217.json").write_text(json.dumps(pysec))
    run_import(tmp_path)
    # Still linked through the GHSA, whose own alias is the CVE.
    assert {a.group_id for a in osv.group_for("PYSEC-2019-217")} == {"CVE-2019-10906"}

    pysec["aliases"], pysec["modified"] = [], "2024-02-01T00:00:00Z"
    (tmp_path / "PYSEC-2019-217.json").write_text(json.dumps(pysec))
    run_import(tmp_path)

    assert Advisory.objects.get(osv_id="PYSEC-2019-217").group_id == "PYSEC-2019-217"
    assert Advisory.objects.get(osv_id="GHSA-462w-v97r-4m45").group_id == "CVE-2019-10906"
    assert {a.osv_id for a in osv.group_for("CVE-2019-10906")} == {"GHSA-462w-v97r-4m45"}


def test_a_single_upstream_id_links_but_a_notice_of_many_upstream_ids_only_answers_for_each(tmp_path):
    run_import(OSV_DIR / "alpine")
    alpine = json.loads((OSV_DIR / "alpine" / "CVE-2022-27449.json").read_text())
    single = {**alpine, "id": "ALPINE-CVE-2022-27449", "upstream": ["CVE-2022-27449"]}
    notice = {**alpine, "id": "NOTICE-1", "upstream": ["CVE-2022-27449", "CVE-2022-27451"]}
    for record in (single, notice):
        (tmp_path / f"{record['id']}.json").write_text(json.dumps(record))

    run_import(tmp_path)

    assert Advisory.objects.get(osv_id="ALPINE-CVE-2022-27449").group_id == "CVE-2022-27449"
    assert Advisory.objects.get(osv_id="NOTICE-1").group_id == "NOTICE-1"
    assert AdvisoryAlias.objects.get(advisory__osv_id="NOTICE-1", alias="CVE-2022-27451").links_group is False
    assert {a.osv_id for a in osv.group_for("CVE-2022-27449")} == {
        "CVE-2022-27449", "ALPINE-CVE-2022-27449", "NOTICE-1"}
    assert {a.osv_id for a in osv.group_for("CVE-2022-27451")} == {"NOTICE-1"}


# --- bad input ----------------------------------------------------------------------------------------


BAD_RECORDS = {
    "not-json.json": (b"{\"id\": ", "not valid JSON"),
    "array.json": (b"[]", "not a JSON object"),
    "no-modified.json": (json.dumps({"id": "X-1"}).encode(), "modified: required"),
    "bad-time.json": (json.dumps({"id": "X-2", "modified": "yesterday"}).encode(), "modified: 'yesterday' is not"),
    "bad-event.json": (json.dumps({"id": "X-3", "modified": "2024-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [
            {"introduced": "0", "fixed": "1"}]}]}]}).encode(),
        "affected[0].ranges[0].events[0]: must have exactly one"),
    "schema-2.json": (json.dumps({"id": "X-4", "modified": "2024-01-01T00:00:00Z", "schema_version": "2.0.0"}).encode(),
                      "schema_version"),
    "nul.json": (json.dumps({"id": "X-5", "modified": "2024-01-01T00:00:00Z", "summary": "a\u0000b"}).encode(),
                 "could not be stored"),
    "huge-number.json": (b'{"id": "X-7", "modified": "2024-01-01T00:00:00Z", "database_specific": {"n": 1e400}}',
                         "out of range"),
    "deep.json": (b'{"id": "X-8", "modified": "2024-01-01T00:00:00Z", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                  "nested more than"),
    "latin1.json": ("{\"id\": \"X-6\", \"summary\": \"caf\u00e9\"}".encode("latin-1"), "not UTF-8"),
}


def test_bad_records_are_rejected_with_file_and_reason_and_the_good_ones_kept(tmp_path):
    for name, (content, _) in BAD_RECORDS.items():
        (tmp_path / name).write_bytes(content)
    shutil.copy(OSV_DIR / "npm" / "GHSA-35jh-r3h4-6jhm.json", tmp_path)

    out, err = run_import(tmp_path)

    assert f"1 created, 0 updated, 0 unchanged, 0 withdrawn, {len(BAD_RECORDS)} rejected" in out
    for name, (_, reason) in BAD_RECORDS.items():
        line = next(line for line in err.splitlines() if f"rejected {name}:" in line)
        assert reason in line, line
    assert list(Advisory.objects.values_list("osv_id", flat=True)) == ["GHSA-35jh-r3h4-6jhm"]
    assert not AdvisoryAlias.objects.filter(alias__startswith="X-").exists()  # nothing half-written
    assert VulnSource.objects.get(location=str(tmp_path)).last_rejected[0]["reason"]


def test_a_source_that_cannot_be_read_fails_the_command(tmp_path):
    (tmp_path / "broken.zip").write_bytes(b"not a zip at all")

    with pytest.raises(CommandError, match="could not be read") as caught:
        run_import(OSV_DIR / "npm", tmp_path / "missing", tmp_path / "broken.zip")

    assert "no such file or directory" in str(caught.value) and "not a zip archive" in str(caught.value)
    assert Advisory.objects.filter(osv_id="GHSA-35jh-r3h4-6jhm").exists()  # the readable source still imported
    assert VulnSource.objects.get(location=str(tmp_path / "broken.zip")).last_status == "error"


def test_a_zip_member_beyond_the_record_limit_is_rejected_unread(tmp_path, settings):
    settings.CSM_VULN_MAX_RECORD_BYTES = 4096
    archive = zip_of(OSV_DIR / "maven", tmp_path / "all.zip")  # log4j's record is 12 KB
    with zipfile.ZipFile(archive, "a") as zf:
        zf.write(OSV_DIR / "npm" / "GHSA-35jh-r3h4-6jhm.json", "GHSA-35jh-r3h4-6jhm.json")

    out, err = run_import(archive)

    assert "1 created" in out and "1 rejected" in out
    assert "rejected GHSA-jfh8-c2jp-5v3q.json: larger than 4096 bytes" in err


def test_import_refuses_to_run_beside_another_import():
    with osv.sync_lock():
        with pytest.raises(CommandError, match="another vulnerability import"):
            run_import(OSV_DIR / "npm")
    assert not Advisory.objects.exists()
    run_import(OSV_DIR / "npm")  # the lock is released
    assert Advisory.objects.exists()


# --- the advisories_changed hook ----------------------------------------------------------------------


@pytest.fixture
def changed_calls():
    calls: list[list[int]] = []

    def listener(advisory_ids):
        # A real listener reads the committed rows, as matching does.
        calls.append(sorted(Advisory.objects.filter(pk__in=advisory_ids).values_list("pk", flat=True)))

    hooks.advisories_changed(listener)
    yield calls
    hooks._advisories_changed.remove(listener)


def test_the_import_tells_listeners_exactly_the_created_updated_and_withdrawn_advisories(
        changed_calls, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run_import(OSV_DIR)
    assert sorted(pk for call in changed_calls for pk in call) == sorted(Advisory.objects.values_list("pk", flat=True))

    changed_calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        run_import(OSV_DIR)  # unchanged: nobody is asked to re-match anything
    assert changed_calls == []

    with django_capture_on_commit_callbacks(execute=True):
        run_import(UPDATES_DIR)
    assert changed_calls == [[Advisory.objects.get(osv_id="GHSA-5crp-9r3c-p9vr").pk]]


def test_listeners_run_only_after_the_batch_committed(changed_calls, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_import(OSV_DIR / "npm")
    assert changed_calls == []  # still inside the caller's transaction
    for callback in callbacks:
        callback()
    assert changed_calls == [[Advisory.objects.get().pk]]


# --- severity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("severity, expected", [
    ([{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
      {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:N/I:N/A:L"}], ("critical", 9.3)),
    ([{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}], ("high", 7.5)),
    ([{"type": "CVSS_V3", "score": "not a vector"}], ("unknown", None)),
    ([{"type": "Ubuntu", "score": "medium"}], ("medium", None)),
])
def test_severity_prefers_cvss_v4_then_v3_then_v2_and_is_unknown_without_one(severity, expected):
    parsed = osv.parse_record({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "severity": severity})
    assert (parsed.severity, parsed.cvss_score) == expected


@pytest.mark.parametrize("first, second, counts", [
    (OSV_DIR / "nuget", UPDATES_DIR / "nuget", "1 created, 1 updated, 0 unchanged"),
    (UPDATES_DIR / "nuget", OSV_DIR / "nuget", "1 created, 0 updated, 0 unchanged, 0 withdrawn, 0 rejected, 1 older"),
])
def test_two_versions_of_a_record_in_one_source_end_with_the_newer(tmp_path, first, second, counts):
    for prefix, directory in (("1", first), ("2", second)):
        shutil.copytree(directory, tmp_path / f"{prefix}-{directory.parent.name}")

    out, _ = run_import(tmp_path)

    assert counts in out
    assert Advisory.objects.get(osv_id="GHSA-5crp-9r3c-p9vr").aliases == ["CVE-2024-21907"]


def test_an_ecosystem_csm_does_not_match_is_kept_in_the_record_but_not_indexed(tmp_path):
    record = json.loads((OSV_DIR / "npm" / "GHSA-35jh-r3h4-6jhm.json").read_text())
    record["affected"].append({"package": {"ecosystem": "GitHub Actions", "name": "lodash/setup-action"},
                               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]})
    (tmp_path / "GHSA-35jh-r3h4-6jhm.json").write_text(json.dumps(record))

    run_import(tmp_path)

    advisory = Advisory.objects.get()
    assert sorted(advisory.affected.values_list("package_key", flat=True)) == ["npm/lodash", "npm/lodash-es"]
    assert advisory.record["affected"][2]["package"]["ecosystem"] == "GitHub Actions"


def test_a_package_severity_counts_when_the_record_states_none():
    parsed = osv.parse_record({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "x"},
         "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}]})
    assert (parsed.severity, parsed.cvss_score) == (VulnSeverity.CRITICAL, 9.8)


def test_documents_in_memory_are_imported_by_the_same_rules():
    log4j = json.loads((OSV_DIR / "maven" / "GHSA-jfh8-c2jp-5v3q.json").read_text())

    result = osv.import_documents([log4j, {"id": "X-1"}, ["not", "a", "record"]], location="generated")

    assert (result.created, result.rejected) == (1, 2)
    assert [(file, reason.split(":")[0]) for _, file, reason in result.rejections] == [
        ("X-1", "modified"), ("2", "the document is not a JSON object")]
    assert Advisory.objects.get().source == "generated"
    assert osv.import_documents([log4j], location="generated").unchanged == 1


def test_a_corrupt_member_of_a_zip_is_rejected_and_the_others_imported(tmp_path):
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(OSV_DIR / "maven" / "GHSA-jfh8-c2jp-5v3q.json", "GHSA-jfh8-c2jp-5v3q.json")
        zf.write(OSV_DIR / "npm" / "GHSA-35jh-r3h4-6jhm.json", "GHSA-35jh-r3h4-6jhm.json")
    data = bytearray(archive.read_bytes())
    start = data.index(b"GHSA-jfh8-c2jp-5v3q.json") + len("GHSA-jfh8-c2jp-5v3q.json")  # the first member's data
    data[start + 100:start + 140] = bytes(40)
    archive.write_bytes(bytes(data))

    out, err = run_import(archive)

    assert "1 created" in out and "1 rejected" in out
    assert "rejected GHSA-jfh8-c2jp-5v3q.json: cannot be read from the zip" in err
    assert list(Advisory.objects.values_list("osv_id", flat=True)) == ["GHSA-35jh-r3h4-6jhm"]
