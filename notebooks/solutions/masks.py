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
