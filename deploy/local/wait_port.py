"""Exit 0 when HOST PORT accepts a TCP connection, 1 otherwise (one try)."""

import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
try:
    with socket.create_connection((host, port), timeout=0.5):
        sys.exit(0)
except OSError:
    sys.exit(1)
