"""`meshsim models`: the pretrained models installed with meshsim (usable by name wherever a checkpoint is)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the pretrained models shipped with meshsim (use a name wherever a checkpoint path is accepted)",
        description="Shipped weights: name, scene, model kind, training budget and the held-out figures beside "
        "holding every node still. `meshsim rollout NAME DATA.h5 -o out.h5` and `meshsim study NAME SCENE ...` "
        "take a name instead of a checkpoint file.",
    )
    p.add_argument("--json", action="store_true", help="print the registry as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from meshsim.train.pretrained import format_models, registry

    models = registry()
    print(json.dumps(models, indent=1) if args.json else format_models(models))
    return 0
