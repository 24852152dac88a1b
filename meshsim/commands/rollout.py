"""`meshsim rollout CKPT DATA.h5 -o rollout.h5 [--traj IDS] [--steps K]`: autoregressive learned rollout."""

from __future__ import annotations

from meshsim.commands import add_checkpoint_arg, add_command, add_force_flag, add_threads_flag


def register(subparsers) -> None:
    p = add_command(
        subparsers, "rollout", run,
        help="roll a trained model out over trajectories (ground truth stored beside the prediction)",
        description="Start from the first two ground-truth frames and feed predictions back; write a rollout file.",
    )
    add_checkpoint_arg(p)
    p.add_argument("data", help="HDF5 trajectory file (meshsim.datasets)")
    p.add_argument("-o", "--output", required=True, help="rollout file to write (.h5)")
    p.add_argument("--traj", default=None, help="comma-separated trajectory ids (default: all)")
    p.add_argument("--steps", type=int, default=None, help="rollout steps (default: all frames after the first two)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_force_flag(p, "the output file if it exists")
    p.add_argument("--batch", type=int, default=8,
                   help="trajectories of equal length rolled out together as one batched graph (default 8)")
    add_threads_flag(p)


def run(args) -> int:
    from meshsim.rollout import rollout_file

    ids = [i.strip() for i in args.traj.split(",") if i.strip()] if args.traj else None
    s = rollout_file(args.checkpoint, args.data, args.output, traj_ids=ids, steps=args.steps, device=args.device,
                     force=args.force, threads=args.threads, batch=args.batch)
    print(f"rolled out {len(s['trajectories'])} trajectories x {s['steps']} steps "
          f"({s['mean_step_seconds'] * 1e3:.2f} ms per trajectory and frame) -> {s['output']}")
    return 0
