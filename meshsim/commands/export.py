"""`meshsim export FILE.h5 --format vtkhdf|xdmf|pvd|obj|ply|glb`: ParaView time series and single-frame meshes."""

from __future__ import annotations

from meshsim.commands import add_command, add_file_arg, add_force_flag

FORMATS = ("vtkhdf", "xdmf", "pvd", "obj", "ply", "glb")


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "export", run_export,
        help="export a trajectory for ParaView (vtkhdf, xdmf, pvd) or one frame as a mesh (obj, ply, glb)",
        description="Time series carry points, displacement, stored fields, error (rollouts) and node_type per "
        "step: vtkhdf (temporal VTKHDF, ParaView >= 5.12), xdmf (+ .h5; reference mesh with a displacement "
        "field: apply Warp By Vector), pvd (+ one .vtu per step). obj/ply/glb write one frame's surface "
        "(points for particles), ply/glb with vertex colours. Default output: beside FILE.",
    )
    add_file_arg(parser)
    parser.add_argument("--format", required=True, choices=FORMATS, help="output format")
    parser.add_argument("-o", "--output", default=None, help="output path (its suffix must match the format)")
    parser.add_argument("--traj", default=None, help="trajectory id (default: the first)")
    parser.add_argument("--frame", type=int, default=None, help="frame for obj/ply/glb (default 0; -1 = last)")
    parser.add_argument("--source", choices=("gt", "pred"), default=None,
                        help="ground truth or prediction (default: pred in rollout files)")  # fmt: skip
    parser.add_argument("--color", default=None, help="field for vertex colours in ply/glb (default: error, "
                        "stress or speed; '' for none)")  # fmt: skip
    add_force_flag(parser, "existing outputs")


def run_export(args) -> int:
    from meshsim.viewer.export import export_trajectory

    written = export_trajectory(args.file, args.format, output=args.output, traj=args.traj, frame=args.frame,
                                source=args.source, color=args.color, force=args.force)  # fmt: skip
    for path in written:
        print(f"wrote {path}")
    return 0
