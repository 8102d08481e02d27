"""Where OSV's ecosystems and package URLs meet: one key per package, whichever side names it.

An OSV record names a package by ``(ecosystem, name)`` — ``("PyPI", "Jinja2")``, ``("Maven",
"org.apache.logging.log4j:log4j-core")``, ``("Debian:12", "openssl")``; an SBOM component by its purl —
``pkg:pypi/jinja2@2.10``, ``pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1``,
``pkg:deb/debian/openssl@3.0.11-1~deb12u2?distro=debian-12``. Both become the same ``package_key``
(``pypi/jinja2``, ``maven/org.apache.logging.log4j/log4j-core``, ``deb/debian/openssl``): the purl type,
namespace and name, normalized the way that ecosystem compares names (PyPI's PEP 503 normalization,
lower case where the registry is case-insensitive). purls are parsed with packageurl-python.

A Linux distribution's release (Debian 12, Alpine 3.18) is not part of the key: the same package name
exists in every release with other version streams, so the release is kept beside the key
(``release``) and compared by ``same_release``.
"""

import re
from dataclasses import dataclass

from packageurl import PackageURL

# OSV ecosystem (before any ":release") → purl type and, for distributions, the purl namespace.
OSV_TO_PURL = {
    "PyPI": ("pypi", ""),
    "npm": ("npm", ""),
    "Maven": ("maven", ""),
    "Go": ("golang", ""),
    "crates.io": ("cargo", ""),
    "RubyGems": ("gem", ""),
    "NuGet": ("nuget", ""),
    "Packagist": ("composer", ""),
    "Hex": ("hex", ""),
    "Pub": ("pub", ""),
    "Debian": ("deb", "debian"),
    "Ubuntu": ("deb", "ubuntu"),
    "Alpine": ("apk", "alpine"),
}
PURL_TO_OSV = {"pypi": "PyPI", "npm": "npm", "maven": "Maven", "golang": "Go", "cargo": "crates.io",
               "gem": "RubyGems", "nuget": "NuGet", "composer": "Packagist", "hex": "Hex", "pub": "Pub",
               "deb": "Debian", "apk": "Alpine"}
# Registries whose names compare without regard to case.
CASE_INSENSITIVE = {"pypi", "npm", "nuget", "cargo", "composer", "hex", "pub", "deb", "apk"}
DEBIAN_CODENAMES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}


@dataclass(frozen=True)
class Package:
    purl_type: str
    key: str
    name: str
    release: str = ""  # the distribution release ("12", "3.18"); "" for language ecosystems
    version: str = ""


def _norm(purl_type: str, part: str) -> str:
    if purl_type == "pypi":
        return re.sub(r"[-_.]+", "-", part).lower()
    return part.lower() if purl_type in CASE_INSENSITIVE else part


def _key(purl_type: str, namespace: str, name: str) -> str:
    parts = [purl_type, _norm(purl_type, namespace) if namespace else "", _norm(purl_type, name)]
    return "/".join(part for part in parts if part)


def from_osv(ecosystem: str, name: str) -> Package | None:
    """The package an OSV ``affected[].package`` names, or None for an ecosystem csm does not match
    (GitHub Actions, OSS-Fuzz, …)."""
    base, _, release = ecosystem.partition(":")
    if base not in OSV_TO_PURL or not name:
        return None
    purl_type, namespace = OSV_TO_PURL[base]
    if purl_type == "maven":
        namespace, _, name = name.rpartition(":")
    elif purl_type == "golang" or (purl_type == "npm" and name.startswith("@")):
        namespace, _, name = name.rpartition("/")
    elif purl_type == "composer" and "/" in name:
        namespace, _, name = name.partition("/")
    return Package(purl_type, _key(purl_type, namespace, name), name, _release(purl_type, namespace, release))


def from_purl(purl: str) -> Package | None:
    """The package of an SBOM component's purl (with its version and distro release), or None when the
    purl is not valid or its type has no OSV ecosystem."""
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError:
        return None
    if parsed.type not in PURL_TO_OSV or not parsed.name:
        return None
    namespace = parsed.namespace or ""
    if parsed.type in ("deb", "apk") and not namespace:
        namespace = "debian" if parsed.type == "deb" else "alpine"
    distro = str((parsed.qualifiers or {}).get("distro") or "")
    return Package(parsed.type, _key(parsed.type, namespace, parsed.name), parsed.name,
                   _release(parsed.type, namespace.lower(), distro), parsed.version or "")


def _release(purl_type: str, namespace: str, release: str) -> str:
    """A distribution release in one spelling: Debian's major number (``debian-12``, ``bookworm``,
    ``12.4`` → ``12``), Ubuntu's ``22.04``, Alpine's ``major.minor`` (``v3.18``, ``3.18.4`` → ``3.18``)."""
    release = release.strip().lower().split(":")[0]
    if not release or purl_type not in ("deb", "apk"):
        return ""
    release = release.removeprefix(f"{namespace}-").removeprefix("v")
    if purl_type == "deb" and namespace == "debian":
        return DEBIAN_CODENAMES.get(release, release.split(".")[0])
    if purl_type == "apk":
        return ".".join(release.split(".")[:2])
    return release


def same_release(advisory_release: str, component_release: str) -> bool:
    """Whether an advisory for one distribution release applies to a component: a component whose purl
    names no release is matched against every release (it cannot be ruled out); an advisory without a
    release applies to all."""
    return not advisory_release or not component_release or advisory_release == component_release
