"""memgym._async: the one coroutine runner (run_sync), the clean-ups that run before its loop
closes (at_loop_exit), and BackgroundLoop, one long-lived loop that many threads submit to."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from memgym._async import BackgroundLoop, at_loop_exit, run_sync
from memgym.agents import episode
from memgym.llm import balance, openai, vllm_server


def test_every_module_runs_coroutines_through_the_one_runner():
    assert episode.run_sync is run_sync
    assert openai.run_sync is balance.run_sync is vllm_server.run_sync is run_sync
    assert not hasattr(openai, "_run_blocking")


def test_run_sync_awaits_the_loops_exit_callbacks_before_closing_it():
    closed = []

    async def work():
        async def close():
            closed.append(asyncio.get_running_loop().is_closed())
        assert at_loop_exit(close)
        return 7

    assert run_sync(work()) == 7
    assert closed == [False]  # ran, on the loop, before it closed


def test_a_loop_memgym_did_not_make_gets_no_exit_callbacks():
    async def work():
        async def close():
            raise AssertionError("never called")
        return at_loop_exit(close)

    assert asyncio.run(work()) is False


def test_background_loop_runs_many_threads_coroutines_on_one_loop_then_closes_its_clients():
    loop, closed, seen = BackgroundLoop("test"), [], set()
    gate = threading.Barrier(4)

    async def read(i):
        seen.add(asyncio.get_running_loop())
        if i == 0:
            async def close():
                closed.append(True)
            at_loop_exit(close)
        await asyncio.sleep(0)
        return i

    def call(i):
        gate.wait()
        return loop.run(read(i))

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(call, range(4))) == [0, 1, 2, 3]
    assert len(seen) == 1 and not closed
    loop.close()
    assert closed == [True]
    assert loop.run(read(9)) == 9  # it starts again on demand
    loop.close()


def test_background_loop_refuses_a_call_from_its_own_loop():
    loop = BackgroundLoop("test")

    async def inner():
        return 1

    async def outer():
        return loop.run(inner())

    with pytest.raises(RuntimeError, match="from its own loop"):
        loop.run(outer())
    loop.close()
