"""`meshsim data inspect FILE` and `meshsim data import DIR -o OUT.h5`: trajectory stores."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    group = subparsers.add_parser("data", help="inspect, validate and import trajectory datasets (HDF5)")
    sub = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    group.set_defaults(func=None, subparser=group)

    inspect = sub.add_parser(
        "inspect",
        help="validate a trajectory/rollout file and summarize it",
        description="Validate every trajectory of a meshsim HDF5 file (shapes, dtypes, index ranges, node types, "
        "finite values, dt) and print trajectories, nodes, cells, frames, dt, units, fields, node types with "
        "counts and value ranges. Exit code 2 with one line if anything is wrong.",
    )
    inspect.add_argument("file", help="trajectory or rollout file (.h5)")
    inspect.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    inspect.set_defaults(func=run_inspect)

    imp = sub.add_parser(
        "import",
        help="convert a DeepMind MeshGraphNets / HCMT TFRecord dataset to a meshsim HDF5 store",
        description="Convert DIR/meta.json + DIR/<split>.tfrecord (DeepMind MeshGraphNets layout, e.g. "
        "deforming_plate, or HCMT's Impact Plate) without TensorFlow. Resumes an interrupted import.",
    )
    imp.add_argument("dir", help="dataset folder holding meta.json and <split>.tfrecord")
    imp.add_argument("-o", "--output", required=True, help="output store (.h5); an existing one is resumed")
    imp.add_argument("--split", default="train", choices=("train", "valid", "test"), help="split (default: train)")
    imp.add_argument("--dt", type=float, default=None, help="seconds per frame when meta.json has none (dt = 0)")
    imp.add_argument("--limit", type=int, default=None, help="import only the first N trajectories")
    imp.add_argument("--json", action="store_true", help="print the result as one JSON object")
    imp.set_defaults(func=run_import)


def run_inspect(args) -> int:
    from meshsim.datasets import format_summary, summarize
    from meshsim.datasets.inspect import check_complete

    summary = summarize(args.file)
    print(json.dumps(summary) if args.json else format_summary(summary))
    check_complete(summary)
    return 0


def run_import(args) -> int:
    from meshsim.datasets.importers import import_tfrecord_dataset

    result = import_tfrecord_dataset(args.dir, args.output, split=args.split, dt=args.dt, limit=args.limit)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"imported {result['imported']} trajectories ({result['skipped']} already present) from "
              f"{result['source']} into {result['output']}")  # fmt: skip
        for note in result["notes"]:
            print(f"note: {note}")
    return 0
