"""VEX documents: OpenVEX JSON (``@context`` https://openvex.dev/ns…) and CycloneDX VEX (``bomFormat:
CycloneDX`` with ``vulnerabilities[]`` carrying an ``analysis``), normalized into one statement shape:

``{"vulnerability", "aliases", "status", "justification", "impact_statement", "action_statement",
"timestamp", "products": [{"id", "kind", "purl", "digests", "subcomponents"}], "file"}``

- ``status`` in OpenVEX's words (``vulns.choices.VexStatus``); CycloneDX ``analysis.state`` maps onto
  them: ``not_affected`` / ``false_positive`` → not_affected, ``resolved`` / ``resolved_with_pedigree`` →
  fixed, ``exploitable`` → affected, ``in_triage`` → under_investigation.
- a product's ``kind`` says what it names: ``artifact`` (an image or other whole product — an ``oci`` /
  ``docker`` purl, a name that is no purl, CycloneDX's ``metadata.component``), ``package`` (a package purl:
  a component inside the artifact), or ``unresolved`` (a CycloneDX ``affects[].ref`` this document does not
  resolve). ``digests`` are the SHA-256 digests it names (in a purl, an ``@id``, or its hashes).
- ``timestamp`` is the statement's own, else the document's (OpenVEX inheritance), as written.

What the spec requires is enforced (a ``ParseError`` naming the file and the field → 400): a known
status, a known justification label, and for OpenVEX a ``not_affected`` statement with neither a
``justification`` nor an ``impact_statement`` is refused (the spec's MUST). Which artifact a statement
applies to is decided when it is indexed (``vulns.vex``), not here: the parser knows no artifact."""

import re
from urllib.parse import unquote

from django.utils.dateparse import parse_datetime
from packageurl import PackageURL

from evidence.parsers import ParseError, load_json

OPENVEX_CONTEXT = "https://openvex.dev/ns"
OPENVEX_STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
OPENVEX_JUSTIFICATIONS = ("component_not_present", "vulnerable_code_not_present",
                          "vulnerable_code_not_in_execute_path", "vulnerable_code_cannot_be_controlled_by_adversary",
                          "inline_mitigations_already_exist")
CYCLONEDX_STATES = {"not_affected": "not_affected", "false_positive": "not_affected", "resolved": "fixed",
                    "resolved_with_pedigree": "fixed", "exploitable": "affected", "in_triage": "under_investigation"}
CYCLONEDX_JUSTIFICATIONS = ("code_not_present", "code_not_reachable", "requires_configuration", "requires_dependency",
                            "requires_environment", "protected_by_compiler", "protected_at_runtime",
                            "protected_at_perimeter", "protected_by_mitigating_control")
IMAGE_PURL_TYPES = ("oci", "docker")

MAX_STATEMENTS = 10_000  # per attestation: more is refused, not cut (a cut VEX would silently drop statements)
MAX_PRODUCTS = 1_000  # products, or subcomponents of one product, per statement
MAX_ID = 200
MAX_IDENTIFIER = 1_000
MAX_TEXT = 4_000
DIGEST = re.compile(r"sha256(?::|%3a)([0-9a-f]{64})", re.IGNORECASE)


def _text(value, name: str, where: str, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{name}: {where} must be a string")
    return value.strip()[:limit]


def _timestamp(value, name: str, where: str) -> str:
    text = _text(value, name, where, 100)
    if text and parse_datetime(text) is None:
        raise ParseError(f"{name}: {where} is not an RFC 3339 timestamp: {text[:40]!r}")
    return text


def _digests(*texts: str) -> list[str]:
    found = []
    for text in texts:
        found.extend(match.lower() for match in DIGEST.findall(text or ""))
    return sorted(set(found))


def _purl_kind(identifier: str) -> tuple[str, str]:
    """(kind, purl) of an identifier: a package purl names a component, an image purl or anything else
    the whole product."""
    try:
        parsed = PackageURL.from_string(identifier)
    except ValueError:
        return "artifact", ""
    return ("artifact" if parsed.type in IMAGE_PURL_TYPES else "package"), identifier


def _component_identifier(item, name: str, where: str) -> str:
    """An OpenVEX component (product or subcomponent): its purl identifier, else its ``@id``; a string is
    itself (OpenVEX before v0.2.0 listed products as strings)."""
    if isinstance(item, str):
        return item.strip()[:MAX_IDENTIFIER]
    if not isinstance(item, dict):
        raise ParseError(f"{name}: {where} must be an object")
    identifiers = item.get("identifiers")
    if identifiers is not None and not isinstance(identifiers, dict):
        raise ParseError(f"{name}: {where}.identifiers must be an object")
    purl = _text((identifiers or {}).get("purl"), name, f"{where}.identifiers.purl", MAX_IDENTIFIER)
    identifier = purl or _text(item.get("@id"), name, f"{where}.@id", MAX_IDENTIFIER)
    if not identifier:
        raise ParseError(f"{name}: {where} names no component (no @id and no identifiers.purl)")
    return identifier


def _openvex_product(item, name: str, where: str) -> dict:
    identifier = _component_identifier(item, name, where)
    hashes = item.get("hashes") if isinstance(item, dict) else None
    if hashes is not None and not isinstance(hashes, dict):
        raise ParseError(f"{name}: {where}.hashes must be an object")
    kind, purl = _purl_kind(identifier)
    texts = [identifier, _text(item.get("@id"), name, f"{where}.@id", MAX_IDENTIFIER) if isinstance(item, dict) else ""]
    sha256 = (hashes or {}).get("sha-256")
    if isinstance(sha256, str):
        texts.append(f"sha256:{sha256}")
    subcomponents = []
    raw = item.get("subcomponents") if isinstance(item, dict) else None
    if raw is not None:
        if not isinstance(raw, list):
            raise ParseError(f"{name}: {where}.subcomponents must be a list")
        if len(raw) > MAX_PRODUCTS:
            raise ParseError(f"{name}: {where}.subcomponents has more than {MAX_PRODUCTS} entries (the limit)")
        subcomponents = [_component_identifier(sub, name, f"{where}.subcomponents[{index}]")
                         for index, sub in enumerate(raw)]
    return {"id": identifier, "kind": kind, "purl": purl, "digests": _digests(*texts),
            "subcomponents": sorted(set(subcomponents))}


def _openvex_vulnerability(value, name: str, where: str) -> tuple[str, list[str]]:
    if isinstance(value, str):  # OpenVEX before v0.2.0: the id as a string
        vulnerability, aliases = value.strip(), []
    elif isinstance(value, dict):
        vulnerability = _text(value.get("name"), name, f"{where}.name", MAX_ID)
        raw = value.get("aliases") or []
        if not isinstance(raw, list) or not all(isinstance(alias, str) for alias in raw):
            raise ParseError(f"{name}: {where}.aliases must be a list of strings")
        aliases = [alias.strip()[:MAX_ID] for alias in raw if alias.strip()]
    else:
        raise ParseError(f"{name}: {where} is required (an object with a name)")
    if not vulnerability:
        raise ParseError(f"{name}: {where}.name is required")
    return vulnerability[:MAX_ID], sorted(set(aliases) - {vulnerability})


def _openvex(name: str, document: dict) -> dict:
    statements = document.get("statements")
    if not isinstance(statements, list) or not statements:
        raise ParseError(f"{name}: statements must be a non-empty list")
    if len(statements) > MAX_STATEMENTS:
        raise ParseError(f"{name}: more than {MAX_STATEMENTS} statements (the limit)")
    document_time = _timestamp(document.get("timestamp"), name, "timestamp")
    out = []
    for index, statement in enumerate(statements):
        where = f"statements[{index}]"
        if not isinstance(statement, dict):
            raise ParseError(f"{name}: {where} must be an object")
        vulnerability, aliases = _openvex_vulnerability(statement.get("vulnerability"), name, f"{where}.vulnerability")
        status = statement.get("status")
        if status not in OPENVEX_STATUSES:
            raise ParseError(f"{name}: {where}.status must be one of {', '.join(OPENVEX_STATUSES)}")
        justification = _text(statement.get("justification"), name, f"{where}.justification", MAX_ID)
        if justification and justification not in OPENVEX_JUSTIFICATIONS:
            raise ParseError(f"{name}: {where}.justification {justification[:60]!r} is not an OpenVEX label; use one "
                             f"of {', '.join(OPENVEX_JUSTIFICATIONS)}")
        impact = _text(statement.get("impact_statement"), name, f"{where}.impact_statement")
        if status == "not_affected" and not justification and not impact:
            raise ParseError(f"{name}: {where} is not_affected without a justification or an impact_statement "
                             "(OpenVEX requires one of them)")
        products = statement.get("products")
        if products is not None and not isinstance(products, list):
            raise ParseError(f"{name}: {where}.products must be a list")
        if len(products or []) > MAX_PRODUCTS:
            raise ParseError(f"{name}: {where}.products has more than {MAX_PRODUCTS} entries (the limit)")
        out.append({
            "vulnerability": vulnerability, "aliases": aliases, "status": status, "justification": justification,
            "impact_statement": impact,
            "action_statement": _text(statement.get("action_statement"), name, f"{where}.action_statement"),
            "timestamp": _timestamp(statement.get("timestamp"), name, f"{where}.timestamp") or document_time,
            "products": [_openvex_product(item, name, f"{where}.products[{i}]")
                         for i, item in enumerate(products or [])],
            "file": name,
        })
    context = document["@context"]
    return {"file": name, "format": "OpenVEX", "spec_version": context.rsplit("/", 1)[-1].removeprefix("ns") or "",
            "document_id": _text(document.get("@id"), name, "@id", MAX_IDENTIFIER),
            "author": _text(document.get("author"), name, "author", MAX_ID), "timestamp": document_time,
            "statements": out}


def _cyclonedx_refs(name: str, document: dict) -> dict[str, dict]:
    """bom-ref → component, for ``metadata.component`` (marked) and every nested component (iteratively)."""
    refs: dict[str, dict] = {}
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    top = metadata.get("component")
    if isinstance(top, dict) and isinstance(top.get("bom-ref"), str):
        refs[top["bom-ref"]] = {**top, "_is_product": True}
    stack = [document.get("components")]
    while stack:
        items = stack.pop()
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict):
                if isinstance(item.get("bom-ref"), str):
                    refs.setdefault(item["bom-ref"], item)
                stack.append(item.get("components"))
    return refs


def _cyclonedx_component_product(ref: str, component: dict) -> dict:
    purl = component.get("purl") if isinstance(component.get("purl"), str) else ""
    hashes = [f"sha256:{h['content']}" for h in component.get("hashes") or []
              if isinstance(h, dict) and str(h.get("alg", "")).upper() == "SHA-256"
              and isinstance(h.get("content"), str)]
    if component.get("_is_product"):
        kind = "artifact"
    else:
        kind = _purl_kind(purl)[0] if purl else "unresolved"
    return {"id": ref[:MAX_IDENTIFIER], "kind": kind, "purl": purl[:MAX_IDENTIFIER], "digests": _digests(purl, *hashes),
            "subcomponents": []}


def _cyclonedx_product(ref: str, refs: dict[str, dict]) -> dict:
    """An ``affects[].ref``: a bom-ref of this document, a BOM-Link (``urn:cdx:serial/version#bom-ref``)
    whose fragment is one or is a purl, or a purl."""
    target = ref
    if ref.startswith("urn:cdx:") and "#" in ref:
        target = unquote(ref.split("#", 1)[1])
    if target in refs:
        return _cyclonedx_component_product(ref, refs[target])
    if target.startswith("pkg:"):
        kind, purl = _purl_kind(target)
        if purl:
            return {"id": ref[:MAX_IDENTIFIER], "kind": kind, "purl": purl[:MAX_IDENTIFIER],
                    "digests": _digests(purl), "subcomponents": []}
    return {"id": ref[:MAX_IDENTIFIER], "kind": "unresolved", "purl": "", "digests": [], "subcomponents": []}


def _cyclonedx(name: str, document: dict) -> dict:
    spec = document.get("specVersion")
    if not isinstance(spec, str) or not spec:
        raise ParseError(f"{name}: CycloneDX document has no specVersion")
    vulnerabilities = document.get("vulnerabilities")
    if not isinstance(vulnerabilities, list) or not vulnerabilities:
        raise ParseError(f"{name}: a CycloneDX VEX needs a non-empty vulnerabilities list (this looks like an SBOM: "
                         "attest it as sbom)")
    if len(vulnerabilities) > MAX_STATEMENTS:
        raise ParseError(f"{name}: more than {MAX_STATEMENTS} vulnerabilities (the limit)")
    refs = _cyclonedx_refs(name, document)
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    document_time = _timestamp(metadata.get("timestamp"), name, "metadata.timestamp")
    out = []
    unanalysed = 0
    for index, vulnerability in enumerate(vulnerabilities):
        where = f"vulnerabilities[{index}]"
        if not isinstance(vulnerability, dict):
            raise ParseError(f"{name}: {where} must be an object")
        vuln_id = _text(vulnerability.get("id"), name, f"{where}.id", MAX_ID)
        if not vuln_id:
            raise ParseError(f"{name}: {where}.id is required")
        analysis = vulnerability.get("analysis")
        if analysis is None:
            unanalysed += 1  # a scanner's finding, not a statement about exploitability
            continue
        if not isinstance(analysis, dict):
            raise ParseError(f"{name}: {where}.analysis must be an object")
        state = analysis.get("state")
        if state not in CYCLONEDX_STATES:
            raise ParseError(f"{name}: {where}.analysis.state must be one of {', '.join(CYCLONEDX_STATES)}")
        justification = _text(analysis.get("justification"), name, f"{where}.analysis.justification", MAX_ID)
        if justification and justification not in CYCLONEDX_JUSTIFICATIONS:
            raise ParseError(f"{name}: {where}.analysis.justification {justification[:60]!r} is not a CycloneDX label; "
                             f"use one of {', '.join(CYCLONEDX_JUSTIFICATIONS)}")
        response = analysis.get("response") or []
        if isinstance(response, str):  # seen in CycloneDX's own examples, though the schema wants a list
            response = [response]
        if not isinstance(response, list) or not all(isinstance(r, str) for r in response):
            raise ParseError(f"{name}: {where}.analysis.response must be a list of strings")
        affects = vulnerability.get("affects") or []
        if not isinstance(affects, list) or len(affects) > MAX_PRODUCTS:
            raise ParseError(f"{name}: {where}.affects must be a list of at most {MAX_PRODUCTS} entries")
        products = []
        for i, affected in enumerate(affects):
            ref = affected.get("ref") if isinstance(affected, dict) else None
            if not isinstance(ref, str) or not ref.strip():
                raise ParseError(f"{name}: {where}.affects[{i}].ref is required")
            products.append(_cyclonedx_product(ref.strip(), refs))
        aliases = sorted({str(r.get("id")).strip()[:MAX_ID] for r in vulnerability.get("references") or []
                          if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"].strip()} - {vuln_id})
        timestamp = (_timestamp(analysis.get("lastUpdated"), name, f"{where}.analysis.lastUpdated")
                     or _timestamp(analysis.get("firstIssued"), name, f"{where}.analysis.firstIssued")
                     or _timestamp(vulnerability.get("updated"), name, f"{where}.updated")
                     or _timestamp(vulnerability.get("published"), name, f"{where}.published") or document_time)
        out.append({
            "vulnerability": vuln_id, "aliases": aliases, "status": CYCLONEDX_STATES[state],
            "state": state, "justification": justification,
            "impact_statement": _text(analysis.get("detail"), name, f"{where}.analysis.detail"),
            "action_statement": ", ".join(r.strip() for r in response if r.strip())[:MAX_TEXT],
            "timestamp": timestamp, "products": products, "file": name,
        })
    if not out:
        raise ParseError(f"{name}: no vulnerability has an analysis: a CycloneDX VEX states analysis.state for each")
    return {"file": name, "format": "CycloneDX", "spec_version": spec,
            "document_id": _text(document.get("serialNumber"), name, "serialNumber", MAX_IDENTIFIER),
            "author": "", "timestamp": document_time, "statements": out, "unanalysed": unanalysed}


def product_scope(product: dict, fingerprint: str) -> list[str] | None:
    """What one product of a statement covers of the artifact ``fingerprint``: None, none of it (it names
    another artifact's digest, or is unresolved); ``[]``, all of it; else the component identifiers it
    narrows to (its subcomponents, or itself when it is a package)."""
    subcomponents = sorted(set(product.get("subcomponents") or []))
    digests = product.get("digests") or []
    if (fingerprint and fingerprint in digests) or (product.get("kind") == "artifact" and not digests):
        return subcomponents
    if product.get("kind") == "package" and (subcomponents or product.get("purl")):
        return subcomponents or [product["purl"]]
    return None


def statement_scope(statement: dict, fingerprint: str) -> list[str] | None:
    """What a statement covers of the artifact ``fingerprint`` (see ``product_scope``); a statement without
    products is about the artifact its attestation is about, all of it (OpenVEX's inheritance from the
    encapsulating attestation)."""
    products = statement.get("products") or []
    if not products:
        return []
    narrowed: set[str] = set()
    for product in products:
        scope = product_scope(product, fingerprint)
        if scope == []:
            return []
        narrowed |= set(scope or [])
    return sorted(narrowed) if narrowed else None


def parse_document(name: str, document) -> dict | None:
    """A decoded document → its normalized statements, None when it is no VEX document."""
    if not isinstance(document, dict):
        return None
    context = document.get("@context")
    if isinstance(context, str) and context.startswith(OPENVEX_CONTEXT):
        return _openvex(name, document)
    if document.get("bomFormat") == "CycloneDX":
        return _cyclonedx(name, document)
    return None


def parse(name: str, data: bytes) -> dict | None:
    return parse_document(name, load_json(name, data))
