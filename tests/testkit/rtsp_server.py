#!/usr/bin/python3
"""A small RTSP server for tests: serves one H.264 MPEG-TS file, looped
forever, at one mount point, with GStreamer's RTSP server (Debian packages
python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-base/-good/-bad).

    rtsp_server.py MEDIA.ts [MOUNT] [PORT]

MOUNT defaults to /plate, PORT to 0 (a free port). Prints "PORT <n>" on one
line of stdout once it listens, then serves until killed.

Run it with /usr/bin/python3: that is the interpreter Debian's `gi` belongs to.
"""

import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def answer_seeking_query(_pad, info):
    """Answers upstream SEEKING queries as handled with nothing set, so the
    media counts as not seekable. Without this the server tries to seek the
    looped TS on `PLAY Range: npt=0-`, tsdemux refuses and PLAY gets 503."""
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.HANDLED
    return Gst.PadProbeReturn.OK


def looped_file_factory(media):
    location = media.replace("\\", "\\\\").replace('"', '\\"')
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( multifilesrc location="{location}" loop=true ! tsdemux ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    # Each client gets its own pipeline: a shared one gives late joiners
    # packet loss and decode errors until the next IDR.
    factory.set_shared(False)
    factory.connect("media-configure", not_seekable)
    return factory


def not_seekable(_factory, media):
    payloader = media.get_element().get_by_name("pay0")
    if payloader is not None:
        payloader.get_static_pad("sink").add_probe(
            Gst.PadProbeType.QUERY_UPSTREAM, answer_seeking_query
        )


def main():
    if len(sys.argv) < 2 or len(sys.argv) > 4:
        sys.stderr.write("usage: rtsp_server.py MEDIA.ts [MOUNT] [PORT]\n")
        return 2
    media = os.path.abspath(sys.argv[1])
    mount = sys.argv[2] if len(sys.argv) > 2 else "/plate"
    port = sys.argv[3] if len(sys.argv) > 3 else "0"
    if not os.path.isfile(media):
        sys.stderr.write(f"rtsp_server.py: no such file {media}\n")
        return 2
    if not mount.startswith("/"):
        mount = "/" + mount

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    server.get_mount_points().add_factory(mount, looped_file_factory(media))
    if server.attach(None) == 0:
        sys.stderr.write(f"rtsp_server.py: cannot listen on 127.0.0.1:{port}\n")
        return 1
    print(f"PORT {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
