"""A pre-imported `meshsim` that forks one command at a time, so fault injection can afford many kills.

Each request (one JSON line on stdin: argv, cwd, log) forks a child that runs `meshsim.cli.main(argv)`, the
console script's own code path, with stdout/stderr sent to the log file. The zygote prints the child's pid,
waits for it and prints how it ended. Heavy libraries (torch, PyG, h5py, scipy) are imported once here; Warp is
left uninitialised so each child starts it fresh, as a real `meshsim` process does.
"""

import json
import os
import sys
import traceback

import h5py  # noqa: F401
import numpy  # noqa: F401
import scipy.sparse  # noqa: F401
import torch  # noqa: F401
import torch_geometric  # noqa: F401

from meshsim.cli import main


def _child(req: dict) -> int:
    os.chdir(req["cwd"])
    log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    try:
        return int(main(req["argv"]) or 0)
    except BaseException:  # a bug: keep the traceback in the log, as the console script would
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os._exit(_child(request))
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -signal
    print(json.dumps({"returncode": code}), flush=True)
