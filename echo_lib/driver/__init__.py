"""The driver: selector classes, recording, the background-thread runner, the loop, server and client."""
