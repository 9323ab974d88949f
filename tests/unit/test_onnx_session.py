"""ocrserve.onnx_session: the memory policies give the same answers, an unknown one is refused,
and the environment chooses the policy of every session (the benchmark's switch)."""

from __future__ import annotations

import numpy as np
import pytest

from ocrserve.errors import ModelLoadError
from ocrserve.onnx_session import DEFAULT_MEMORY, MEMORY_POLICIES, create_session
from ocrserve.ppocr.weights import weights_path


def test_every_policy_answers_the_same() -> None:
    rng = np.random.default_rng(0)
    batch = rng.random((2, 3, 48, 192), dtype=np.float32)
    answers = []
    for policy in MEMORY_POLICIES:
        session = create_session(weights_path("cls"), 1, memory=policy)
        assert session.memory == policy
        name = session.get_inputs()[0].name  # the session's own methods pass through
        answers.append(session.run(None, {name: batch})[0])
    for answer in answers[1:]:
        np.testing.assert_array_equal(answer, answers[0])


def test_the_policy_comes_from_the_environment_and_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OCRSERVE_ORT_MEMORY", raising=False)
    assert create_session(weights_path("cls"), 1).memory == DEFAULT_MEMORY
    monkeypatch.setenv("OCRSERVE_ORT_MEMORY", "plain")
    assert create_session(weights_path("cls"), 1).memory == "plain"
    with pytest.raises(ModelLoadError, match="Unknown ONNX Runtime memory policy 'huge'"):
        create_session(weights_path("cls"), 1, memory="huge")
