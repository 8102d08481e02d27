"""Pull-request evidence as the kosli CLI reports it (``git_provider`` + ``pull_requests``: url,
merge_commit, state, author, approvers as names or ``{username, state, timestamp}``, and, from newer
CLIs, title, head_ref, created_at / merged_at). Compliant when at least one pull request has an approver
who is not its author. The PR number is taken from the payload or read from the URL's last path
segment (``/pull/12``, ``/merge_requests/12``, ``/pullrequest/12``)."""

import re

from csm.lib import links
from evidence.parsers import ParseError

NUMBER_IN_URL = re.compile(r"/(?:pull|pulls|merge_requests|pullrequest|pull-requests)/(\d{1,12})(?:[/?#]|$)")


def _number(pr: dict) -> str:
    value = pr.get("number")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isdigit() and len(value) <= 12:
        return value
    match = NUMBER_IN_URL.search(pr["url"])
    return match.group(1) if match else ""


def _string(pr: dict, key: str, limit: int) -> str:
    value = pr.get(key)
    return value[:limit] if isinstance(value, str) else ""


def _approver_name(approver) -> str:
    if isinstance(approver, dict):
        return str(approver.get("username") or approver.get("name") or approver.get("login") or "")
    return str(approver or "")


def parse(data: dict) -> dict:
    pull_requests = data.get("pull_requests")
    if pull_requests is None:
        pull_requests = []
    if not isinstance(pull_requests, list):
        raise ParseError("pull_requests must be a list")
    listed = []
    for index, pr in enumerate(pull_requests):
        if not isinstance(pr, dict) or not isinstance(pr.get("url"), str) or not pr["url"]:
            raise ParseError(f"pull_requests[{index}].url is missing")
        if not links.http_url(pr["url"]):
            raise ParseError(f"pull_requests[{index}].url must be an http(s) URL")
        approvers = pr.get("approvers") or []
        if not isinstance(approvers, list):
            raise ParseError(f"pull_requests[{index}].approvers must be a list")
        names = [name for name in (_approver_name(a) for a in approvers) if name]
        author = str(pr.get("author") or "")
        independent = [name for name in names if name != author]
        listed.append({"url": pr["url"][:1000], "merge_commit": str(pr.get("merge_commit") or "")[:64],
                       "state": str(pr.get("state") or ""), "author": author, "approvers": names,
                       "independent_approvers": independent, "number": _number(pr),
                       "title": _string(pr, "title", 500), "head_ref": _string(pr, "head_ref", 255),
                       "created_at": _string(pr, "created_at", 40), "merged_at": _string(pr, "merged_at", 40)})
    return {"provider": str(data.get("git_provider") or ""), "pull_requests": listed}
