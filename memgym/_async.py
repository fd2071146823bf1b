"""Running coroutines from synchronous code: the one runner every memgym module uses.

    >>> run_sync(backend.generate(request))          # from a script, a notebook or a thread
    >>> loop = BackgroundLoop("reader"); loop.run(agent.act(obs, ctx)); loop.close()

`run_sync` runs a coroutine to completion on a fresh event loop (in a helper thread when the
caller's thread already runs one). Resources bound to an event loop (an httpx client) register a
clean-up with `at_loop_exit`, which `run_sync` and `BackgroundLoop` await before their loop
closes, so a client made for one call is closed with it instead of leaking. `BackgroundLoop` is
one long-lived loop on its own thread that many threads submit to: their coroutines run
concurrently there (so a backend batches them), on one loop (so one client serves them all).

This module sits below every other (it imports nothing from memgym).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["BackgroundLoop", "at_loop_exit", "run_sync"]

T = TypeVar("T")

_EXIT: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Callable[[], Awaitable[Any]]]]
_EXIT = weakref.WeakKeyDictionary()
_EXIT_LOCK = threading.Lock()


def at_loop_exit(callback: Callable[[], Awaitable[Any]]) -> bool:
    """Await `callback()` before the running event loop closes, if memgym made that loop.

    Returns:
        True when registered (a loop of `run_sync` or `BackgroundLoop`); False for a loop the
        caller owns (e.g. its `asyncio.run`), whose resources the caller closes.
    """
    loop = asyncio.get_running_loop()
    with _EXIT_LOCK:
        callbacks = _EXIT.get(loop)
        if callbacks is None:
            return False
        callbacks.append(callback)
    return True


async def _run_exit_callbacks() -> None:
    loop = asyncio.get_running_loop()
    with _EXIT_LOCK:
        callbacks = _EXIT.pop(loop, [])
    for callback in callbacks:
        await callback()


async def _owned(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a loop memgym owns, then the loop's exit callbacks."""
    with _EXIT_LOCK:
        _EXIT.setdefault(asyncio.get_running_loop(), [])
    try:
        return await coro
    finally:
        await _run_exit_callbacks()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code and return its result.

    Outside an event loop this is `asyncio.run`, except that Ctrl-C raises KeyboardInterrupt at
    once: asyncio's own handler only cancels the main task, which waits for episodes that
    compute without yielding (a CPU model, a scripted policy), so the run went on and a second
    Ctrl-C printed two tracebacks. Inside a running loop (a Jupyter cell, an async web app),
    where `asyncio.run` refuses, the coroutine runs on its own loop in a helper thread while the
    caller waits (`await` the coroutine instead to keep the caller's loop responsive). Either
    way the clean-ups registered with `at_loop_exit` run before the loop closes.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        own_sigint = (threading.current_thread() is threading.main_thread()
                      and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if not own_sigint:
            return asyncio.run(_owned(coro))
        signal.signal(signal.SIGINT, _interrupt)  # asyncio.run then keeps it
        try:
            return asyncio.run(_owned(coro))
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(_owned(coro))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="memgym-run-sync", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class BackgroundLoop:
    """One event loop on its own daemon thread, started on first use, that any thread submits
    coroutines to and waits for (`run`); `close` runs the loop's exit clean-ups and stops it.

    Args:
        name: the thread's name (shown in stack dumps).
    """

    def __init__(self, name: str = "memgym-loop"):
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                with _EXIT_LOCK:
                    _EXIT[loop] = []
                self._thread = threading.Thread(target=loop.run_forever, name=self.name,
                                                daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for its result (never call it from that loop)."""
        loop = self._start()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError(f"BackgroundLoop {self.name!r}.run called from its own loop; "
                               "await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def close(self) -> None:
        """Run the loop's exit clean-ups (close its clients), stop it and join its thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(_run_exit_callbacks(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()
        loop.close()
