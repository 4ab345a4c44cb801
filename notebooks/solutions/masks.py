"""Solutions to the exercises in 03-masks."""

import selectors


def wanted_events(has_pending_output, can_accept_more):
    """The events a connection should be registered for, given its state."""
    events = 0
    if can_accept_more:
        events |= selectors.EVENT_READ
    if has_pending_output:
        events |= selectors.EVENT_WRITE
    return events


def wait_readable(sock, timeout):
    """Wait until ``sock`` is readable or ``timeout`` seconds pass; say which."""
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(timeout))
