"""The driver: selector classes, recording, the one background-thread runner, the loop,
the server and the client."""
