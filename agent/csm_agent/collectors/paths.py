"""Server environments: files and directories on this machine, fingerprinted (type ``server``)."""

import json
import os
import tomllib

import yaml

from csm_agent.errors import SourceError, UsageError
from csm_agent.fingerprint import fingerprint

ENV_TYPE = "server"


def load_paths_file(path):
    """Read a paths spec (YAML, JSON or TOML): ``version: 1`` and ``artifacts: {name: {path, exclude}}``.

    Returns a list of (name, path, excludes) in file order.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UsageError(f"cannot read paths file {path}: {exc.strerror}") from exc
    try:
        if path.endswith(".toml"):
            spec = tomllib.loads(raw.decode())
        elif path.endswith(".json"):
            spec = json.loads(raw)
        else:
            spec = yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"paths file {path} is not valid: {exc}") from exc
    if not isinstance(spec, dict):
        raise UsageError(f"paths file {path}: expected a mapping with 'version' and 'artifacts'")
    if spec.get("version") != 1:
        raise UsageError(f"paths file {path}: 'version' must be 1 (got {spec.get('version')!r})")
    artifacts = spec.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        raise UsageError(f"paths file {path}: 'artifacts' must be a non-empty mapping of name -> {{path, exclude}}")
    out = []
    for name, item in artifacts.items():
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"]:
            raise UsageError(f"paths file {path}: artifacts.{name}.path must be a non-empty string")
        exclude = item.get("exclude", [])
        if isinstance(exclude, str):
            exclude = [exclude]
        if not isinstance(exclude, list) or not all(isinstance(e, str) for e in exclude):
            raise UsageError(f"paths file {path}: artifacts.{name}.exclude must be a list of globs")
        unknown = set(item) - {"path", "exclude"}
        if unknown:
            raise UsageError(f"paths file {path}: artifacts.{name} has unknown keys {sorted(unknown)}")
        out.append((str(name), item["path"], exclude))
    return out


def collect(specs, digest_format="csm", workers=None):
    """One artifact per (name, path, excludes): its fingerprint and the path's modification time."""
    artifacts = []
    for name, path, excludes in specs:
        sha = fingerprint(path, excludes, digest_format, workers)
        try:
            mtime = int(os.stat(path).st_mtime)
        except OSError as exc:
            raise SourceError(f"cannot stat {path}: {exc.strerror}") from exc
        artifacts.append({"digests": {name: sha}, "creationTimestamp": mtime})
    return artifacts
