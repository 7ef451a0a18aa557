from __future__ import annotations

import asyncrouter


def test_all_is_sorted_and_complete() -> None:
    names = asyncrouter.__all__
    assert len(names) == len(set(names))  # ruff's RUF022 keeps the order sorted
    public = {n for n in dir(asyncrouter) if not n.startswith("_")}
    # every public attribute except submodules is exported
    import types

    public = {n for n in public if not isinstance(getattr(asyncrouter, n), types.ModuleType)}
    assert set(names) == public
