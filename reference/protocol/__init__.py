"""The sans-IO protocol core: frames, messages, auth and the two state machines.

Nothing in this package opens a socket, reads a clock or starts a thread: the
callers (the asyncio peers, the harness proxies, the checkers) feed bytes and
the current time in and take bytes and events out.
"""
