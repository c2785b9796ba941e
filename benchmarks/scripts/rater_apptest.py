"""The server alone: the rater app under Streamlit's AppTest, one thread per rater (``benchmarks.scripts.rater_latency``'s
second row group; see its docstring)."""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from benchmarks.scripts.rater_load import APP, WAIT_S, Group, Sample, collect, cpu_since, cpu_snapshot, log

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest


@contextlib.contextmanager
def shared_runtime() -> Iterator[None]:
    """One mock Streamlit runtime for all AppTest threads.

    AppTest puts a fresh mock runtime into a process-wide global (``Runtime._instance``) for every run
    and clears it after, and patches ``config.get_option`` for the run: from several threads at once, a
    script loses its media manager in the middle of a run. So the global is set once here, AppTest's
    own writes go to a stand-in, and the config patch is applied once around the whole phase.
    """
    from unittest.mock import MagicMock

    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
    from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import app_test
    from streamlit.testing.v1.util import patch_config_options

    runtime = MagicMock(spec=Runtime)
    runtime.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    runtime.dataframe_source_mgr = DataframeSourceManager()
    runtime.cache_storage_manager = MemoryCacheStorageManager()
    runtime.bidi_component_registry = BidiComponentManager()
    runtime.bidi_component_registry.discover_and_register_components(start_file_watching=False)
    saved = app_test.Runtime, app_test.patch_config_options
    app_test.Runtime = type("StandIn", (), {"_instance": None})
    app_test.patch_config_options = lambda overrides: contextlib.nullcontext()
    Runtime._instance = runtime
    try:
        with patch_config_options({"global.appTest": True}):
            yield
    finally:
        app_test.Runtime, app_test.patch_config_options = saved
        Runtime._instance = None


def screen_key(at: AppTest) -> str:
    keys = [r.key for r in at.radio if (r.key or "").startswith("fidelity-")]
    if len(keys) != 1:
        errors = [e.value for e in at.exception]
        raise RuntimeError(f"expected one rating screen, found {keys}; errors: {errors}")
    return keys[0].removeprefix("fidelity-")


def apptest_rater(
    token: str, items: int, think: float, rng: random.Random, start: threading.Barrier, group: Group
) -> list[Sample]:
    """One rater through AppTest: "Start", then ``items + 1`` submissions (the first a warm-up)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=WAIT_S)
    at.query_params["token"] = token
    at.run()
    at.button(key="start").click().run()
    key, out = screen_key(at), []
    start.wait(timeout=WAIT_S)
    for k in range(items + 1):
        time.sleep(rng.uniform(0.5, 1.5) * think)
        at.radio(key=f"fidelity-{key}").set_value("A")
        at.radio(key=f"alignment-{key}").set_value("B")
        t0 = time.time()
        at.button(key=f"submit-{key}").click().run()
        t1 = time.time()
        new = screen_key(at)
        if new == key:
            raise RuntimeError(f"screen {key} was submitted and is still shown")
        group.count()
        if k:
            out.append(Sample(int(key), int(new), 1000 * (t1 - t0), t0, None, t1))
        key = new
    return out


def run_apptest(db_url: str, tokens: list[str], args: argparse.Namespace, group: Group) -> None:
    """``apptest_rater`` in one thread per token, released together."""
    import streamlit as st
    from streamlit.logger import set_log_level

    from raters_ui.commands import app_env

    set_log_level("error")  # AppTest's threads warn "missing ScriptRunContext" outside their runs: expected
    os.environ.update(app_env(db_url, "demo"))  # the environment the server gets
    results: list = [None] * len(tokens)
    start = threading.Barrier(len(tokens) + 1)

    def one(k: int) -> None:
        try:
            rng = random.Random(f"{args.seed}:at:{k}")
            results[k] = apptest_rater(tokens[k], args.items, args.think, rng, start, group)
        except BaseException as err:  # noqa: BLE001  (reported in the table; the other raters still count)
            results[k] = err
            start.abort()

    with shared_runtime():
        threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(len(tokens))]
        for t in threads:
            t.start()
        with contextlib.suppress(threading.BrokenBarrierError):  # a rater failed to start: it is reported
            start.wait(timeout=WAIT_S)
        log(f"{group.backend} AppTest: {len(tokens)} threads on their first item; rating")
        before = cpu_snapshot(None)
        for t in threads:
            t.join()
        group.cpu = cpu_since(before, None)
    st.cache_resource.clear()  # the app's cached database handle: the next backend opens its own
    collect(group, results)
