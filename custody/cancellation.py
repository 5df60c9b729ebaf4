"""What can be cancelled: one rule for the workflows, the JSON API and the console.

Why one place: the rule used to be written three times (workflow validator, route, console) and the
three disagreed about integrated pulls. A request can be cancelled while it waits on someone or
something outside custody: the owner (notified, consented but not yet done uploading) or an
integrated camera's recorder (the pull). Once the owner has sent every file, or the footage has been
pulled, verification and attachment follow on their own and the request is no longer cancellable:
evidence already received stays in custody.
"""

from __future__ import annotations

from custody.models import TERMINAL_STATUSES

#: Statuses in which a request still waits on its owner or its recorder.
OPEN_FOR_CANCEL: dict[str, frozenset[str]] = {
    "registered": frozenset({"requested", "notified", "consented"}),
    "integrated": frozenset({"requested"}),
}


def cancel_refusal(*, kind: str, status: str, files_complete: bool = False) -> str | None:
    """None when a request of `kind` in `status` can be cancelled; otherwise why not, in words for
    the person who asked."""
    if status in TERMINAL_STATUSES:
        return f"This request has already ended ({status}); there is nothing to cancel."
    if files_complete or status not in OPEN_FOR_CANCEL.get(kind, frozenset()):
        return (
            f"This request can no longer be cancelled ({status}): its footage has been received and is "
            "being verified and attached."
        )
    return None


def can_cancel(*, kind: str, status: str, files_complete: bool = False) -> bool:
    return cancel_refusal(kind=kind, status=status, files_complete=files_complete) is None
