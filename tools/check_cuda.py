"""Compile every Warp module of meshsim and kernels/ for CUDA (PTX) on a machine without a GPU.

Discovery needs no list of modules:
1. every submodule of `meshsim` and of `meshsim.kernels` is imported;
2. every function of those modules cached with functools.cache whose source declares a `@wp.kernel` (the
   closure factories such as the FEM's `make_kernels(dim, scalar)`) is called for its instances
   (`FACTORY_INSTANCES`: dim in (2, 3), scalar in (wp.float32, wp.float64)), so each closure-built module is
   registered;
3. Warp's module registry is walked for modules whose kernels come from our source files; a module holds its
   generic kernels' declared overloads, and `compile_aot_module` builds all of them.
Cross-check: every source file with `@wp.kernel` lines must contribute as many distinct kernels (by function
name) as it has such lines, or discovery has missed something and the tool fails.

Usage: python tools/check_cuda.py [--arch 70 80 90] [--out DIR]. Prints one JSON line last; exit 1 on failure.
"""

import argparse
import functools
import importlib
import inspect
import itertools
import json
import pkgutil
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import warp as wp

# meshsim.kernels is installed from kernels/ (a package-dir mapping), so walking meshsim alone misses it.
ROOTS = ("meshsim", "meshsim.kernels")
SCALARS = (wp.float32, wp.float64)
# The instances of a kernel factory, by its parameter names.
FACTORY_INSTANCES = {
    ("dim", "scalar"): list(itertools.product((2, 3), SCALARS)),  # the FEM
    ("scalar",): [(s,) for s in SCALARS],  # the edge attention
}
KERNEL_DECORATOR = re.compile(r"^\s*@wp\.kernel\b", re.M)


def import_all() -> list[str]:
    names = {}  # ordered, without repeats (an installed meshsim holds kernels/ inside: both walks find it)
    for root in ROOTS:
        pkg = importlib.import_module(root)
        names[root] = None
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{root}."):
            if info.name.endswith(".__main__"):
                continue  # running it is the CLI
            importlib.import_module(info.name)
            names[info.name] = None
    return list(names)


def source_roots() -> list[Path]:
    return [Path(importlib.import_module(r).__file__).resolve().parent for r in ROOTS]


def ours(path: str | None) -> bool:
    if not path:
        return False
    p = Path(path).resolve()
    return any(p.is_relative_to(r) for r in source_roots())


def call_factories(module_names: list[str]) -> list[str]:
    """Instantiate closure-built kernel modules: cached factories whose source holds `@wp.kernel`."""
    called = []
    for name in module_names:
        mod = sys.modules[name]
        for attr, obj in vars(mod).items():
            fn = getattr(obj, "__wrapped__", None)
            if not (isinstance(obj, functools._lru_cache_wrapper) and inspect.isfunction(fn)):
                continue
            if fn.__module__ != name or not KERNEL_DECORATOR.search(inspect.getsource(fn)):
                continue
            params = tuple(inspect.signature(fn).parameters)
            if params not in FACTORY_INSTANCES:
                raise SystemExit(f"check-cuda: {name}.{attr}{list(params)}: kernel factory with unknown parameters; "
                                 "teach tools/check_cuda.py its instances (FACTORY_INSTANCES)")
            for args in FACTORY_INSTANCES[params]:
                obj(*args)
            called.append(f"{name}.{attr}")
    return called


def our_modules() -> list:
    """Warp modules (from the registry) holding at least one kernel defined in our source files."""
    mods = [m for m in _registry().values()
            if any(ours(k.func.__code__.co_filename) for k in m.kernels.values())]
    return sorted(mods, key=lambda m: m.name)


def _registry() -> dict:
    for path in ("warp._src.context", "warp.context"):
        try:
            ctx = importlib.import_module(path)
        except ImportError:
            continue
        if hasattr(ctx, "user_modules"):
            return ctx.user_modules
    raise SystemExit("check-cuda: cannot find Warp's module registry (warp.*.context.user_modules)")


def _nvrtc_archs() -> set[int]:
    for path in ("warp._src.context", "warp.context"):
        try:
            return set(importlib.import_module(path).runtime.nvrtc_supported_archs)
        except (ImportError, AttributeError):
            continue
    return set()


def kernel_key(k) -> tuple[str, str]:
    return (str(Path(k.func.__code__.co_filename).resolve()), k.func.__name__)


def grep_counts() -> dict[str, int]:
    counts = {}
    for root in source_roots():
        for path in root.rglob("*.py"):
            n = len(KERNEL_DECORATOR.findall(path.read_text()))
            if n:
                counts[str(path.resolve())] = n
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", type=int, nargs="+", default=[75, 80, 90],
                    help="SM versions (default 75 80 90; Warp 1.19 ships CUDA 13 NVRTC, which has no sm_70)")
    ap.add_argument("--out", default=None, help="folder for the PTX (default: a temporary one)")
    args = ap.parse_args(argv)
    wp.config.quiet = True
    wp.init()
    start = time.perf_counter()
    supported = _nvrtc_archs()
    unsupported = [a for a in args.arch if supported and a not in supported]
    if unsupported:
        print(f"check-cuda: sm_{', sm_'.join(map(str, unsupported))} not supported by this Warp's NVRTC "
              f"(supported: {sorted(supported)}); choose others with --arch", file=sys.stderr)
        return 2
    imported = import_all()
    factories = call_factories(imported)
    modules = our_modules()
    found: dict[str, set] = {}
    kernels, errors = 0, []
    for module in modules:
        for k in module.kernels.values():
            path, fname = kernel_key(k)
            found.setdefault(path, set()).add(fname)
            kernels += len(k.overloads) if k.is_generic else 1  # generic: its declared instances
            if k.is_generic and not k.overloads:
                errors.append(f"{module.name}.{fname}: generic kernel without declared instances (wp.overload); "
                              "it would only compile at its first launch")
    missing = {p: (n, len(found.get(p, ()))) for p, n in grep_counts().items() if len(found.get(p, ())) != n}
    if missing:
        errors.append(f"discovery mismatch (file: @wp.kernel lines, kernels found): {missing}")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="check_cuda_"))
    compiled = 0
    for arch in args.arch:
        for module in modules:
            try:
                wp.compile_aot_module(module, device=None, arch=arch, module_dir=str(out / f"sm_{arch}"),
                                      use_ptx=True)
                compiled += 1
            except Exception as exc:  # noqa: BLE001 - every codegen error is reported, then we fail
                errors.append(f"sm_{arch} {module.name}: {type(exc).__name__}: {exc}")
                traceback.print_exc()
    ptx = sorted(str(p.relative_to(out)) for p in out.rglob("*.ptx"))
    summary = {"ok": not errors, "modules": len(modules), "kernels": kernels, "arches": args.arch,
               "compiled": compiled, "ptx_files": len(ptx), "factories": factories,
               "seconds": round(time.perf_counter() - start, 1), "errors": errors,
               "module_names": [m.name for m in modules]}
    for e in errors:
        print(f"check-cuda: {e}", file=sys.stderr)
    print(f"check-cuda: {len(modules)} modules, {kernels} kernels compiled for "
          f"{', '.join(f'sm_{a}' for a in args.arch)} ({len(ptx)} PTX files)" if not errors else
          f"check-cuda: FAILED ({len(errors)} errors)")
    print(json.dumps(summary))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
