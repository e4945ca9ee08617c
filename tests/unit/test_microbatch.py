from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from conforto._serving.runtime import Asked, MicroBatcher


class EchoPredictor:
    """Returns each observation's ``ta`` (and its level, when one was asked); records batch
    sizes and the threads used."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.threads: set[str] = set()
        self.sites: list[list[str | None]] = []
        self.fail = fail

    def score(
        self,
        rows: list[dict[str, Any]],
        levels: list[float | None],
        sites: list[str | None],
    ) -> tuple[list[dict[str, Any]], None]:
        self.sites.append(sites)
        return self.predict(rows, levels), None

    def predict(
        self, rows: list[dict[str, Any]], levels: list[float | None]
    ) -> list[dict[str, Any]]:
        self.batches.append(len(rows))
        self.threads.add(threading.current_thread().name)
        time.sleep(0.01)  # long enough for concurrent requests to queue up
        if self.fail:
            raise RuntimeError("booster failed")
        return [
            {"ta": row["ta"]} | ({} if level is None else {"level": level})
            for row, level in zip(rows, levels, strict=True)
        ]


def test_concurrent_requests_are_batched_off_the_event_loop() -> None:
    predictor = EchoPredictor()
    batcher = MicroBatcher(predictor, max_batch=8)  # type: ignore[arg-type]

    async def run() -> list[Any]:  # the echoes, as the fake predictor made them
        return await asyncio.gather(*(batcher.predict({"ta": float(i)}) for i in range(20)))

    results = asyncio.run(run())
    batcher.close()
    assert [r["ta"] for r in results] == [float(i) for i in range(20)]  # each gets its own
    assert sum(predictor.batches) == 20
    assert max(predictor.batches) == 8
    assert len(predictor.batches) < 20
    assert predictor.threads == {"conforto-predict_0"}


def test_each_request_keeps_its_own_level_and_site_inside_a_batch() -> None:
    predictor = EchoPredictor()
    batcher = MicroBatcher(predictor, max_batch=8)  # type: ignore[arg-type]
    asked = [0.5 + 0.02 * i for i in range(12)]
    sites = [f"site {i % 3}" if i % 4 else None for i in range(12)]

    async def run() -> list[Any]:  # the echoes, as the fake predictor made them
        return await asyncio.gather(
            *(
                batcher.predict({"ta": float(i)}, Asked(0.0, site), level)
                for i, (level, site) in enumerate(zip(asked, sites, strict=True))
            )
        )

    results = asyncio.run(run())
    batcher.close()
    assert max(predictor.batches) > 1
    assert [(r["ta"], r["level"]) for r in results] == [
        (float(i), lv) for i, lv in enumerate(asked)
    ]
    assert [site for batch in predictor.sites for site in batch] == sites


def test_a_failing_batch_fails_every_waiting_request_and_recovers() -> None:
    predictor = EchoPredictor(fail=True)
    batcher = MicroBatcher(predictor)  # type: ignore[arg-type]

    async def run() -> list[Any]:
        first = await asyncio.gather(
            *(batcher.predict({"ta": 1.0}) for _ in range(3)), return_exceptions=True
        )
        predictor.fail = False
        return [*first, await batcher.predict({"ta": 2.0})]

    results = asyncio.run(run())
    batcher.close()
    assert all(isinstance(r, RuntimeError) for r in results[:3])
    assert results[3] == {"ta": 2.0}


def test_lone_request_goes_straight_through() -> None:
    predictor = EchoPredictor()
    batcher = MicroBatcher(predictor)  # type: ignore[arg-type]
    echoed: Any = asyncio.run(batcher.predict({"ta": 3.0}))
    assert echoed == {"ta": 3.0}
    batcher.close()
    assert predictor.batches == [1]
    with pytest.raises(RuntimeError):
        batcher._executor.submit(lambda: None)
