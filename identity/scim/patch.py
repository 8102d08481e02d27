"""SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's representation (a dict), as Okta and Entra ID send it:
``op`` in any case (``Replace``), with or without ``path``, a ``value`` object whose keys are attribute paths
(``"name.givenName"``, an extension URN), value filters in paths (``emails[type eq "work"].value``,
``members[value eq "id"]``), and Entra's ``remove`` of ``members`` with a value list. The caller validates
the result like a PUT body, so a PATCH can produce nothing a PUT could not."""

from identity.scim.errors import ScimError
from identity.scim.filters import Compare, PatchPath, lookup, matches, parse_patch_path

READ_ONLY = {"id", "meta", "groups", "schemas"}  # ignored in a PATCH (Okta repeats the group's id)
CANONICAL = {name.lower(): name for name in (
    "userName", "externalId", "displayName", "nickName", "active", "emails", "name", "givenName", "familyName",
    "middleName", "formatted", "members", "value", "display", "type", "primary", "title", "locale",
    "phoneNumbers", "addresses", "roles", "preferredLanguage", "timezone", "userType", "profileUrl")}


def _name(container: dict, name: str) -> str:
    key, _ = lookup(container, name)
    return key or CANONICAL.get(name.lower(), name)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        _, va = lookup(a, "value")
        _, vb = lookup(b, "value")
        if va is not None or vb is not None:
            return str(va) == str(vb)
    return a == b


def _merge(target: dict, value: dict) -> dict:
    merged = dict(target)
    for key, item in value.items():
        merged[_name(merged, key)] = item
    return merged


def _seed(path: PatchPath) -> dict:
    """A new element for a filtered path that matched nothing: ``emails[type eq "work"].value`` adds
    ``{"type": "work", "value": ...}`` (what Entra ID means when the user had no work address yet)."""
    node = path.filter
    if isinstance(node, Compare) and node.op == "eq" and len(node.path.names) == 1:
        return {_name({}, node.path.names[0]): node.value}
    raise ScimError(400, f"No value of '{path.path}' matches the path's filter.", "noTarget")


def _apply_filtered(op: str, container: dict, key: str, path: PatchPath, value):
    elements = container.get(key)
    elements = list(elements) if isinstance(elements, list) else []
    hits = [i for i, element in enumerate(elements) if isinstance(element, dict) and matches(path.filter, element)]
    if op == "remove":
        if path.sub is None:
            elements = [e for i, e in enumerate(elements) if i not in hits]
        else:
            for i in hits:
                elements[i] = {k: v for k, v in elements[i].items() if k.lower() != path.sub.lower()}
    else:
        if not hits:
            elements.append(_seed(path))
            hits = [len(elements) - 1]
        for i in hits:
            if path.sub is not None:
                elements[i] = _merge(elements[i], {path.sub: value})
            elif isinstance(value, dict):
                elements[i] = _merge(elements[i], value)
            else:
                raise ScimError(400, f"Replacing values of '{path.path}' needs an object value.", "invalidValue")
    container[key] = elements


def _apply(op: str, resource: dict, path: PatchPath, value):
    names = path.path.names
    if names[0].lower() in READ_ONLY:
        return
    container = resource
    for name in names[:-1]:
        key = _name(container, name)
        child = container.get(key)
        if not isinstance(child, dict):
            if op == "remove":
                return
            child = {}
        container[key] = child = dict(child)
        container = child
    key = _name(container, names[-1])
    if path.filter is not None:
        _apply_filtered(op, container, key, path, value)
        return
    current = container.get(key)
    if op == "remove":
        if value is not None and isinstance(current, list):  # Entra: remove members with a value list
            drop = _as_list(value)
            container[key] = [e for e in current if not any(_same(e, d) for d in drop)]
        else:
            container.pop(key, None)
    elif op == "add" and isinstance(current, list):
        added = list(current)
        for item in _as_list(value):
            if not any(_same(item, e) for e in added):
                added.append(item)
        container[key] = added
    elif isinstance(current, dict) and isinstance(value, dict):
        container[key] = _merge(current, value)
    else:
        container[key] = value


def apply_patch(resource: dict, body) -> dict:
    """The resource after the PatchOp ``body``; ScimError (400) for a malformed operation."""
    if not isinstance(body, dict):
        raise ScimError(400, "A PATCH body is a PatchOp object.", "invalidSyntax")
    _, operations = lookup(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "A PATCH body needs a non-empty 'Operations' list.", "invalidSyntax")
    resource = dict(resource)
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            raise ScimError(400, f"Operations[{index}] is not an object.", "invalidSyntax")
        _, op = lookup(operation, "op")
        op = str(op or "").lower()
        if op not in ("add", "remove", "replace"):
            raise ScimError(400, f"Operations[{index}].op must be add, remove or replace.", "invalidSyntax")
        _, path = lookup(operation, "path")
        _, value = lookup(operation, "value")
        if path:
            if not isinstance(path, str):
                raise ScimError(400, f"Operations[{index}].path must be a string.", "invalidPath")
            _apply(op, resource, parse_patch_path(path), value)
            continue
        if op == "remove":
            raise ScimError(400, f"Operations[{index}]: remove needs a path.", "noTarget")
        if not isinstance(value, dict):
            raise ScimError(400, f"Operations[{index}]: without a path, the value must be an object.", "invalidValue")
        for key, item in value.items():
            _apply(op, resource, parse_patch_path(key), item)
    return resource
