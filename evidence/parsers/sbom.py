"""SBOMs in CycloneDX JSON (``bomFormat: CycloneDX``) and SPDX JSON (``spdxVersion``): each component's
name, version, purl, type and licenses (SPDX ids, names or expressions, joined by ", ")."""

from evidence.parsers import ParseError, load_json

MAX_LICENSES = 1000  # characters of the joined license text kept per component
SPDX_NO_VALUE = {"", "NOASSERTION", "NONE"}


def _cyclonedx_licenses(item: dict) -> str:
    found: list[str] = []
    licenses = item.get("licenses")
    for choice in licenses if isinstance(licenses, list) else []:
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("expression"), str):
            found.append(choice["expression"])
            continue
        license_ = choice.get("license") if isinstance(choice.get("license"), dict) else {}
        value = license_.get("id") or license_.get("name")
        if isinstance(value, str) and value:
            found.append(value)
    return ", ".join(dict.fromkeys(found))[:MAX_LICENSES]


def _spdx_licenses(package: dict) -> str:
    found = [str(package.get(key) or "") for key in ("licenseConcluded", "licenseDeclared")]
    return ", ".join(dict.fromkeys(value for value in found if value not in SPDX_NO_VALUE))[:MAX_LICENSES]


def _cyclonedx_components(name: str, items, out: list, path: str) -> None:
    """Components and their nested ``components``, depth first in document order. Iterative: a document
    nested as deep as the JSON decoder allows must not exhaust Python's recursion (a 500)."""
    if items is None:
        return
    if not isinstance(items, list):
        raise ParseError(f"{name}: {path} must be a list")
    stack = [(enumerate(items), path)]
    while stack:
        level, path = stack[-1]
        step = next(level, None)
        if step is None:
            stack.pop()
            continue
        index, item = step
        where = f"{path}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ParseError(f"{name}: {where} has no name")
        out.append({"name": item["name"][:500], "version": str(item.get("version") or "")[:200],
                    "purl": str(item.get("purl") or "")[:1000], "kind": str(item.get("type") or "")[:50],
                    "licenses": _cyclonedx_licenses(item)})
        children = item.get("components")
        if children is not None:
            if not isinstance(children, list):
                raise ParseError(f"{name}: {where}.components must be a list")
            stack.append((enumerate(children), f"{where}.components"))


def _spdx_components(name: str, packages) -> list[dict]:
    if packages is None:
        return []
    if not isinstance(packages, list):
        raise ParseError(f"{name}: packages must be a list")
    out = []
    for index, package in enumerate(packages):
        if not isinstance(package, dict) or not isinstance(package.get("name"), str) or not package["name"]:
            raise ParseError(f"{name}: packages[{index}] has no name")
        purl = ""
        for ref in package.get("externalRefs") or []:
            if isinstance(ref, dict) and ref.get("referenceType") == "purl":
                purl = str(ref.get("referenceLocator") or "")
                break
        out.append({"name": package["name"][:500], "version": str(package.get("versionInfo") or "")[:200],
                    "purl": purl[:1000], "kind": str(package.get("primaryPackagePurpose") or "")[:50].lower(),
                    "licenses": _spdx_licenses(package)})
    return out


def parse(name: str, data: bytes) -> dict | None:
    document = load_json(name, data)
    if not isinstance(document, dict):
        return None
    if document.get("bomFormat") == "CycloneDX":
        spec = document.get("specVersion")
        if not isinstance(spec, str) or not spec:
            raise ParseError(f"{name}: CycloneDX document has no specVersion")
        components: list[dict] = []
        _cyclonedx_components(name, document.get("components"), components, "components")
        return {"file": name, "format": "CycloneDX", "spec_version": spec, "component_count": len(components),
                "components": components}
    if "spdxVersion" in document:
        spec = document.get("spdxVersion")
        if not isinstance(spec, str) or not spec.startswith("SPDX-"):
            raise ParseError(f"{name}: spdxVersion must look like 'SPDX-2.3'")
        components = _spdx_components(name, document.get("packages"))
        return {"file": name, "format": "SPDX", "spec_version": spec.removeprefix("SPDX-"),
                "component_count": len(components), "components": components}
    return None
