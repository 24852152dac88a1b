"""`meshsim render FILE.h5 -o out.mp4|out.gif|frames/`: deterministic video of a trajectory (headless Chromium)."""

from __future__ import annotations

from meshsim.commands import add_command, add_file_arg, add_force_flag


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "render", run_render,
        help="render a trajectory to MP4, GIF or PNG frames (headless chromium, every frame exactly once)",
        description="Draws each frame in the viewer page inside headless Chromium (the system chromium, "
        "driven by Playwright) and encodes it: .mp4 (H.264 via imageio-ffmpeg), .gif, or a folder of PNGs. "
        "Ground truth beside prediction for rollouts, with the colour legend and the clock.",
    )
    add_file_arg(parser)
    parser.add_argument("-o", "--output", required=True, help="out.mp4, out.gif, or a folder for PNG frames")
    parser.add_argument("--traj", default=None, help="trajectory id (default: the first)")
    parser.add_argument("--fps", type=float, default=30, help="frames per second of the video (default 30)")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT in pixels (default 1280x720)")
    parser.add_argument("--color", default=None, help="field to colour by (default: error, stress or speed; '' none)")
    add_force_flag(parser)


def run_render(args) -> int:
    from meshsim.viewer.render import parse_size, render_video

    result = render_video(args.file, args.output, traj=args.traj, fps=args.fps, size=parse_size(args.size),
                          color=args.color, force=args.force)  # fmt: skip
    print(f"wrote {result['output']}: {result['frames']} frames of trajectory {result['trajectory']}, "
          f"{result['size'][0]}x{result['size'][1]} at {result['fps']:g} fps in {result['seconds']} s")  # fmt: skip
    return 0
