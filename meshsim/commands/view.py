"""`meshsim view FILE.h5`: play a trajectory or rollout file back in the browser."""

from __future__ import annotations

from meshsim.commands import add_command, add_file_arg


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "view", run_view,
        help="play a trajectory/rollout file back in the browser (ground truth beside prediction)",
        description="Serve FILE and a three.js playback page on a local port, print the URL and open it. "
        "Keys: space play/pause, left/right step (shift: 10), home/end, c colour field, r fixed/per-frame colour "
        "range, x clip plane axis, w wireframe, p PNG, [ ] speed, Escape close the probe. Click a node to plot its "
        "history (ground truth and prediction). Ctrl-C stops the server. Remote machines: ssh -L PORT:127.0.0.1:PORT.",
    )
    add_file_arg(parser)
    parser.add_argument("--traj", default=None, help="trajectory id shown first (default: the first one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free port)")
    parser.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")


def run_view(args) -> int:
    from meshsim.viewer.server import serve

    serve(args.file, host=args.host, port=args.port, traj=args.traj, open_browser=not args.no_browser)
    return 0
