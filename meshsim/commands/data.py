"""`meshsim data inspect FILE`, `meshsim data import DIR -o OUT.h5` and `meshsim data import-series SOURCE... -o
OUT.h5`: trajectory stores."""

from __future__ import annotations

import json

from meshsim.commands import add_command, add_file_arg, add_json_flag, command_group


def register(subparsers) -> None:
    sub = command_group(subparsers, "data", "inspect, validate and import trajectory datasets (HDF5)")
    inspect = add_command(
        sub, "inspect", run_inspect,
        help="validate a trajectory/rollout file and summarize it",
        description="Validate every trajectory of a meshsim HDF5 file (shapes, dtypes, index ranges, node types, "
        "finite values, dt) and print trajectories, nodes, cells, frames, dt, units, fields, node types with "
        "counts and value ranges. Exit code 2 with one line if anything is wrong.",
    )
    add_file_arg(inspect)
    add_json_flag(inspect, "the summary")

    imp = add_command(
        sub, "import", run_import,
        help="convert a DeepMind MeshGraphNets / HCMT TFRecord dataset to a meshsim HDF5 store",
        description="Convert DIR/meta.json + DIR/<split>.tfrecord (DeepMind MeshGraphNets layout, e.g. "
        "deforming_plate, or HCMT's Impact Plate) without TensorFlow. Resumes an interrupted import.",
    )
    imp.add_argument("dir", help="dataset folder holding meta.json and <split>.tfrecord")
    imp.add_argument("-o", "--output", required=True, help="output store (.h5); an existing one is resumed")
    imp.add_argument("--split", default="train", choices=("train", "valid", "test"), help="split (default: train)")
    imp.add_argument("--dt", type=float, default=None, help="seconds per frame when meta.json has none (dt = 0)")
    imp.add_argument("--limit", type=int, default=None, help="import only the first N trajectories")
    add_json_flag(imp)

    series = add_command(
        sub, "import-series", run_import_series,
        help="convert time series from any FEM code (.pvd, XDMF, temporal VTKHDF, .vtu/.vtk frames) to a new store",
        description="One trajectory per SOURCE: a .pvd collection, an XDMF temporal collection, a temporal VTKHDF "
        "file, a folder or quoted glob of per-frame .vtu/.vtk files, or a list of such files (consecutive frame "
        "files form one trajectory). dt comes from the time values (or --dt). Every source is checked before "
        "OUT.h5 is written; bad input writes nothing.",
    )
    series.add_argument("sources", nargs="+", metavar="SOURCE", help="series file, folder, glob or frame files")
    series.add_argument("-o", "--output", required=True, help="new output store (.h5)")
    series.add_argument("--dt", type=float, default=None, help="seconds between frames (files without time values)")
    series.add_argument("--displacement", default=None, metavar="NAME",
                        help="point array of displacements (default: 'displacement' when present); world_pos = "
                        "points + NAME when the mesh is stored undeformed")  # fmt: skip
    series.add_argument("--field", action="append", default=None, metavar="NEW=OLD[*SCALE]",
                        help="keep point array OLD as fields/NEW, times SCALE (repeatable; default: every "
                        "floating point array under its own name)")  # fmt: skip
    series.add_argument(
        "--node-type",
        action="append",
        default=None,
        metavar="RULE",
        help="ARRAY (node types), TYPE:ARRAY (non-zero nodes / cell set) or TYPE:x<=0[,y>1] "
        "(plane, half-space, box); repeatable, later rules win (default: array 'node_type')",
    )
    series.add_argument("--obstacle", default=None, metavar="MESH", help="static obstacle mesh appended as "
                        "OBSTACLE nodes (same cell kind)")  # fmt: skip
    add_json_flag(series)


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


def run_import_series(args) -> int:
    from meshsim.datasets.series import import_series

    result = import_series(args.sources, args.output, dt=args.dt, displacement=args.displacement, fields=args.field,
                           node_types=args.node_type, obstacle=args.obstacle)  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"imported {result['imported']} trajectories into {result['output']}")
    for row in result["trajectories"]:
        types = ", ".join(f"{k}: {v}" for k, v in row["node_types"].items())
        print(
            f"  {row['id']}: {row['frames']} frames, {row['nodes']} nodes ({row['cell_type']}), dt {row['dt']:g} s, "
            f"fields {', '.join(row['fields']) or '-'}; node types {types}"
        )
    for note in result["notes"]:
        print(f"note: {note}")
    return 0
