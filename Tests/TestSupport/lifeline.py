"""Imported by the tests' Python peers: each exits when the test process that started it does."""

import os
import sys
import threading


def _exit_with_the_test():
    """The test that started this server holds its stdin: when the test process ends, however
    it ends (even killed), the read sees EOF and the server goes too, instead of holding the
    runner's output open and hanging `swift test`."""
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


threading.Thread(target=_exit_with_the_test, daemon=True).start()
