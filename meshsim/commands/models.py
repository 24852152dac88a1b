"""`meshsim models`: the pretrained models installed with meshsim (usable by name wherever a checkpoint is)."""

from __future__ import annotations

from meshsim.commands import add_command, add_json_flag


def register(subparsers) -> None:
    p = add_command(
        subparsers, "models", run,
        help="list the pretrained models shipped with meshsim (use a name wherever a checkpoint path is accepted)",
        description="Shipped weights: name, scene, model kind, training budget and the held-out figures beside "
        "holding every node still. `meshsim rollout NAME DATA.h5 -o out.h5` and `meshsim study NAME SCENE ...` "
        "take a name instead of a checkpoint file.",
    )
    add_json_flag(p, "the registry")


def run(args) -> int:
    import json

    from meshsim.train.pretrained import format_models, registry

    models = registry()
    print(json.dumps(models, indent=1) if args.json else format_models(models))
    return 0
