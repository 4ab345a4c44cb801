"""The driver: real sockets and selectors, recording, the thread runner, loop, server, client."""
