"""Solutions to the exercises in 01-why-multiplexing."""

import selectors


def wait_for_any(socks, timeout):
    """Return the sockets of ``socks`` that are readable within ``timeout`` seconds (maybe none)."""
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        return [key.fileobj for key, mask in sel.select(timeout)]
