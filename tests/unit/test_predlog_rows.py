"""A buffered prediction gives the garbage collector nothing to walk."""

from __future__ import annotations

import gc

from conforto.predictions.log import PREDICTION_FIELDS, queued_prediction


def test_queued_prediction_is_flat_and_untracked_by_the_collector() -> None:
    response = {
        "prediction_id": "a" * 32,
        "predicted_class": "warm",
        "probabilities": {"cool": 0.1, "neutral": 0.3, "warm": 0.6},
        "model_version": "3",
        "pmv": 1.2,
        "ppd": 35.0,
        "notes": ["tr (mean radiant temperature) taken equal to ta"],
    }
    inputs = {"ta": 30.0, "rh": 60.0, "season": "summer"}
    gc.freeze()  # the session's objects set aside: the collections below walk this test's only
    try:
        table, values = queued_prediction(response, inputs, latency_ms=2.5)
        assert table == "predictions"
        row = dict(zip(PREDICTION_FIELDS, values, strict=True))
        assert (row["prediction_id"], row["p_warm"], row["latency_ms"]) == ("a" * 32, 0.6, 2.5)
        assert dict(row["inputs"]) == inputs
        for _ in range(3):  # each collection untracks the tuples whose items it has untracked
            gc.collect()
        assert not gc.is_tracked(values)
        assert not gc.is_tracked(row["inputs"])
    finally:
        gc.unfreeze()
