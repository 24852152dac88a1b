"""Progress of long work (generate, train, rollout, study, nclaw): a tqdm bar on a terminal, silent otherwise."""

from __future__ import annotations

import sys


def progress(total: int, initial: int = 0, enabled: bool = True, desc: str | None = None, unit: str = "step"):
    """The progress bar of long work (train, rollout, study, nclaw generate): tqdm on a terminal, a no-op object
    otherwise (CI logs and pipes stay clean)."""
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
    return _NoBar()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass
