"""localstripe, bound to 127.0.0.1 only, keeping its data in memory only.

localstripe's own entry point listens on every interface and pickles its
whole store to /tmp after each write (shared by every instance on the
machine, and slower with each customer); neither suits a local stack or
tests that run side by side.

Usage: python -m scripts.localstripe_server PORT
"""
import sys


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    port = int(args[0]) if args else 8420

    from aiohttp import web
    from localstripe import resources
    from localstripe.server import app

    resources.Store.dump_to_disk = lambda self: None
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
