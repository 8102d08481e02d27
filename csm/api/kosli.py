"""What the kosli CLI can read. csm answers compliance in three states (``compliant`` true / false /
null, null meaning unknown: no policy applies). The kosli CLI reads ``compliant`` as a JSON boolean with
an unchecked type assertion (``kosli list snapshots``, ``kosli assert snapshot``, ``kosli assert
artifact``): a null makes it crash instead of answering. A request from the CLI (its User-Agent is
``Kosli/<version>``) therefore gets ``false`` where csm says null — the safe reading: unknown is never
compliant, so the CLI prints NON-COMPLIANT and an assert fails. Every other client gets the null."""

KOSLI_CLI_AGENT = "Kosli/"


def is_kosli_cli(request) -> bool:
    return request.headers.get("User-Agent", "").startswith(KOSLI_CLI_AGENT)


def compliant_for(request, compliant: bool | None) -> bool | None:
    """``compliant`` as this client can read it: null (unknown) becomes false for the kosli CLI."""
    if compliant is None and is_kosli_cli(request):
        return False
    return compliant
