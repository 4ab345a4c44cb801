"""The core: events, the timeline, both ends of the echo as logic, checks. No sockets."""
