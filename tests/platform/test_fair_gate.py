"""The request gate in front of the app's pool: first come, first served, bounded waits."""

from __future__ import annotations

import asyncio

from wg_api.platform.database import FairGate


async def test_waiters_are_served_in_arrival_order_even_against_newcomers():
    gate = FairGate(1)
    assert await gate.acquire(1)
    served: list[int] = []

    async def wait(n: int) -> None:
        assert await gate.acquire(5)
        served.append(n)
        await asyncio.sleep(0)
        gate.release()

    waiters = [asyncio.create_task(wait(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    gate.release()
    # A newcomer arriving while the queue drains waits its turn behind everyone queued.
    late = asyncio.create_task(wait(99))
    await asyncio.gather(*waiters, late)
    assert served == [0, 1, 2, 3, 4, 99]


async def test_a_wait_that_runs_out_answers_false_and_leaves_no_trace():
    gate = FairGate(1)
    assert await gate.acquire(1)
    assert await gate.acquire(0.05) is False
    gate.release()
    # The slot given back goes to the next asker, not to the waiter that gave up.
    assert await gate.acquire(0.05) is True
    assert await gate.acquire(0.05) is False


async def test_a_cancelled_waiter_gives_its_place_and_any_slot_back():
    gate = FairGate(1)
    assert await gate.acquire(1)
    # Cancelled while queued: the slot given back later goes to the next asker.
    queued = asyncio.create_task(gate.acquire(5))
    await asyncio.sleep(0.01)
    queued.cancel()
    await asyncio.gather(queued, return_exceptions=True)
    gate.release()
    assert await gate.acquire(0.05) is True
    # Cancelled just as the slot is handed over: either it answers True (and its caller owns
    # the slot, to release) or it raises and gives the slot back; never is a slot lost.
    handed = asyncio.create_task(gate.acquire(5))
    await asyncio.sleep(0.01)
    gate.release()
    handed.cancel()
    [outcome] = await asyncio.gather(handed, return_exceptions=True)
    if outcome is True:
        gate.release()
    assert await gate.acquire(0.05) is True
    assert await gate.acquire(0.05) is False


async def test_a_timed_out_waiter_leaves_the_queue_at_once():
    """The end of a wait takes the waiter out of the queue: nobody hands a slot to it later, and
    the queue does not grow with waits that ran out."""
    gate = FairGate(1)
    assert await gate.acquire(1)
    results = await asyncio.gather(*(gate.acquire(0.02) for _ in range(20)))
    assert results == [False] * 20
    assert not gate._waiters  # the queue itself is what is checked
    gate.release()
    assert await gate.acquire(0) is True
