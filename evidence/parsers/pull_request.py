"""Pull-request evidence as the kosli CLI reports it (``git_provider`` + ``pull_requests``: url,
merge_commit, state, author, approvers as names or ``{username, state, timestamp}``). Compliant when at
least one pull request has an approver who is not its author."""

from csm.lib import links
from evidence.parsers import ParseError


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
                       "independent_approvers": independent})
    return {"provider": str(data.get("git_provider") or ""), "pull_requests": listed}
