"""Exit 0 when the Kafka broker at HOST:PORT answers an ApiVersions request, 1 otherwise."""

import socket
import struct
import sys

host, port = sys.argv[1].rsplit(":", 1)


def api_versions_request() -> bytes:
    """A framed ApiVersions v0 request (api key 18): every broker version answers it."""
    client_id = b"lexcare-wait"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


try:
    with socket.create_connection((host, int(port)), timeout=1.0) as sock:
        sock.sendall(api_versions_request())
        header = sock.recv(4)
        sys.exit(0 if len(header) == 4 else 1)
except OSError:
    sys.exit(1)
