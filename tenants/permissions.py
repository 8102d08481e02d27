"""The permission matrix: the one place that says which role may do what.

Views declare the permission they need (``permission = "members.manage"``); nothing else compares
roles. ``docs/permissions.md`` is generated from this table (``python manage.py permission_matrix``)
and a test keeps the two identical.
"""

from tenants.choices import Role

O, A, M, S, R = (  # noqa: E741 - one letter per role keeps the matrix readable
    Role.OWNER, Role.ADMIN, Role.MEMBER, Role.SNAPSHOTTER, Role.READER
)

# permission -> (roles that hold it, what it allows)
MATRIX: dict[str, tuple[frozenset[str], str]] = {
    "org.view": (frozenset({O, A, M, R}), "See the org, its settings and member list"),
    "org.manage": (frozenset({O, A}), "Rename the org and change its settings"),
    "members.manage": (frozenset({O, A}), "Invite members, change roles, remove members"),
    "owners.manage": (frozenset({O}), "Grant or take away the owner role"),
    "tokens.manage": (frozenset({O, A}), "Create, rotate and revoke service accounts and their tokens"),
    "tokens.personal": (frozenset({O, A, M, R}), "Create personal API tokens acting with one's own role"),
    "audit.view": (frozenset({O, A}), "Read the audit log and verify the journal"),
    # Every role, the snapshotter included: agents are witnesses and need the checkpoints, keys, proofs and
    # hash tiles, which reveal nothing but hashes. The journal's entries are the audit trail: audit.view.
    "journal.view": (frozenset({O, A, M, S, R}),
                     "Read the journal's signed checkpoints, verifier keys, proofs and hash tiles (its entries "
                     "need audit.view)"),
    "environments.view": (frozenset({O, A, M, R}), "See environments, snapshots, diffs and events"),
    # The snapshotter too: `kosli snapshot --auto-environment` asks whether the environment exists (and its
    # type) before it reports, and goes on only on 200 or 404. The answer is the environment's identity only.
    "environments.identify": (frozenset({O, A, M, S, R}),
                              "Learn whether an environment exists, with its name and type only (no snapshots, "
                              "artifacts or events)"),
    "environments.report": (frozenset({O, A, M, S}),
                            "Create missing environments (or re-send their settings unchanged) and report snapshots"),
    "environments.edit": (frozenset({O, A, M}),
                          "Change an existing environment's type, description, tags, scaling or report interval"),
    "environments.manage": (frozenset({O, A}), "Archive, unarchive, rename and delete environments"),
    "evidence.view": (frozenset({O, A, M, R}), "See flows, trails, artifacts, attestations and evidence files"),
    "evidence.report": (frozenset({O, A, M}),
                        "Report flows, trails, artifacts and attestations; tag flows and repositories"),
    "evidence.override": (frozenset({O, A}), "Override the compliance of an attestation"),
    "evidence.manage": (frozenset({O, A}), "Archive, unarchive and rename flows"),
    # Controls are the org's governance requirements; seeing them and their decisions is evidence.view,
    # recording a decision on one is evidence.report (what CI tokens hold).
    "controls.manage": (frozenset({O, A}), "Create, update, tag, archive and unarchive controls"),
    "policies.view": (frozenset({O, A, M, R}), "See policies, allowlists and compliance"),
    "policies.manage": (frozenset({O, A}), "Create policies, attach and detach them, manage allowlists"),
    "actions.view": (frozenset({O, A, M}), "See alert actions and their delivery logs"),
    "actions.manage": (frozenset({O, A}), "Create, change, test and delete alert actions"),
    "reports.view": (frozenset({O, A, M, R}), "Generate and download audit reports"),
}

ROLE_ORDER = [O, A, M, S, R]


def has_permission(role: str | None, permission: str) -> bool:
    """True when ``role`` holds ``permission``. An unknown permission is a programming error."""
    if permission not in MATRIX:
        raise KeyError(f"unknown permission {permission!r}; add it to tenants/permissions.py")
    return role is not None and role in MATRIX[permission][0]


def permissions_for(role: str) -> list[str]:
    return [name for name, (roles, _) in MATRIX.items() if role in roles]


def matrix_markdown() -> str:
    header = "| Permission | What it allows | " + " | ".join(r.label for r in ROLE_ORDER) + " |"
    rule = "|---|---|" + "|".join(":-:" for _ in ROLE_ORDER) + "|"
    rows = [
        f"| `{name}` | {text} | " + " | ".join("✔" if role in roles else "—" for role in ROLE_ORDER) + " |"
        for name, (roles, text) in MATRIX.items()
    ]
    return "\n".join([header, rule, *rows]) + "\n"
