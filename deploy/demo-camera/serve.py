#!/usr/bin/python3
"""Runs tests/testkit/rtsp_server.py (copied next to this file in the image) on the address in
ANPR_RTSP_BIND (default 0.0.0.0) instead of 127.0.0.1, so that other containers reach the camera.

    serve.py MEDIA.ts [MOUNT] [PORT]     (the arguments of rtsp_server.py)

The test kit's server binds the loopback address on purpose (tests must not expose it); a
container's loopback address is its own, so here the bind address is replaced, nothing else.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rtsp_server  # noqa: E402  (imports gi and GstRtspServer)
from gi.repository import GstRtspServer  # noqa: E402

BIND = os.environ.get("ANPR_RTSP_BIND", "0.0.0.0")
_set_address = GstRtspServer.RTSPServer.set_address


def _set_bind_address(server, _address):
    _set_address(server, BIND)


GstRtspServer.RTSPServer.set_address = _set_bind_address

if __name__ == "__main__":
    sys.exit(rtsp_server.main())
