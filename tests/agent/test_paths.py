"""snapshot paths / snapshot path: paths files in YAML, JSON and TOML, excludes, and --watch."""

import json
import threading
import time

import pytest
from csm_agent import fingerprint as fp


@pytest.fixture
def deployed(tmp_path):
    app = tmp_path / "srv" / "app"
    (app / "lib").mkdir(parents=True)
    (app / "lib" / "core.py").write_text("VERSION = 1\n")
    (app / "app.log").write_text("noise\n")
    conf = tmp_path / "srv" / "nginx.conf"
    conf.write_text("worker_processes 2;\n")
    return app, conf


PATHS_FILES = {
    "paths.yaml": "version: 1\nartifacts:\n  app:\n    path: {app}\n    exclude: ['*.log']\n"
                  "  nginx:\n    path: {conf}\n",
    "paths.json": json.dumps({"version": 1, "artifacts": {"app": {"path": "{app}", "exclude": ["*.log"]},
                                                          "nginx": {"path": "{conf}"}}}),
    "paths.toml": 'version = 1\n[artifacts.app]\npath = "{app}"\nexclude = ["*.log"]\n'
                  '[artifacts.nginx]\npath = "{conf}"\n',
}


@pytest.mark.parametrize("filename", sorted(PATHS_FILES))
def test_paths_file_formats(run, fake_csm, csm_args, deployed, tmp_path, filename):
    app, conf = deployed
    spec = tmp_path / filename
    spec.write_text(PATHS_FILES[filename].replace("{app}", str(app)).replace("{conf}", str(conf)))
    code, _, err = run("snapshot", "paths", "web", "--paths-file", spec, *csm_args)
    assert code == 0, err
    (req,) = fake_csm.reports
    assert req.path == "/api/v2/environments/acme/web/report/server"
    digests = {name: sha for a in req.json["artifacts"] for name, sha in a["digests"].items()}
    assert digests == {"app": fp.fingerprint(str(app), ["*.log"]), "nginx": fp.fingerprint(str(conf))}
    # The excluded log file does not count: changing it changes nothing.
    (app / "app.log").write_text("more noise\n")
    assert fp.fingerprint(str(app), ["*.log"]) == digests["app"]


def test_paths_file_kosli_format(run, fake_csm, csm_args, deployed, tmp_path):
    app, conf = deployed
    spec = tmp_path / "p.yaml"
    spec.write_text(f"version: 1\nartifacts:\n  app:\n    path: {app}\n")
    assert run("snapshot", "paths", "web", "--paths-file", spec, "--digest-format", "kosli", *csm_args)[0] == 0
    assert fake_csm.reports[0].json["artifacts"][0]["digests"]["app"] == fp.fingerprint(str(app), fmt=fp.KOSLI)


@pytest.mark.parametrize(("content", "message"), [
    ("version: 2\nartifacts: {a: {path: /x}}\n", "'version' must be 1"),
    ("version: 1\n", "'artifacts' must be a non-empty mapping"),
    ("version: 1\nartifacts: {a: {exclude: []}}\n", "artifacts.a.path must be a non-empty string"),
    ("version: 1\nartifacts: {a: {path: /x, exclude: 3}}\n", "artifacts.a.exclude must be a list"),
    ("version: 1\nartifacts: {a: {path: /x, pth: 1}}\n", "unknown keys ['pth']"),
    ("version: [1\n", "is not valid"),
])
def test_bad_paths_file_exit_1(run, fake_csm, csm_args, tmp_path, content, message):
    spec = tmp_path / "p.yaml"
    spec.write_text(content)
    code, _, err = run("snapshot", "paths", "web", "--paths-file", spec, *csm_args)
    assert code == 1 and message in err
    assert fake_csm.requests == []


def test_one_missing_path_reports_nothing(run, fake_csm, csm_args, deployed, tmp_path):
    app, _ = deployed
    spec = tmp_path / "p.yaml"
    spec.write_text(f"version: 1\nartifacts:\n  app: {{path: {app}}}\n  gone: {{path: {tmp_path}/gone}}\n")
    code, _, err = run("snapshot", "paths", "web", "--paths-file", spec, *csm_args)
    assert code == 2 and "gone" in err
    assert fake_csm.requests == []


def test_watch_reports_again_when_a_watched_file_changes(run, fake_csm, csm_args, deployed):
    app, _ = deployed
    result = {}

    def agent():
        result["run"] = run("snapshot", "path", "web", "--path", app, "--name", "app", "--watch", "--debounce",
                            "0.2", "--max-reports", "2", *csm_args)

    thread = threading.Thread(target=agent)
    thread.start()
    deadline = time.monotonic() + 20
    while not fake_csm.reports and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake_csm.reports) == 1
    time.sleep(0.3)  # let the observer settle after the first walk
    (app / "lib" / "core.py").write_text("VERSION = 2\n")
    thread.join(20)
    assert not thread.is_alive()
    assert result["run"][0] == 0
    first, second = (r.json["artifacts"][0]["digests"]["app"] for r in fake_csm.reports)
    assert first != second
    assert second == fp.fingerprint(str(app))
