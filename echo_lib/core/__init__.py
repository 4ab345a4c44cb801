"""The core: events, the timeline, the echo connection and validation. Pure Python, no sockets."""
