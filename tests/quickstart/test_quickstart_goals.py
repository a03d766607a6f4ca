"""The quickstart's goal arithmetic (fast, no run): the sign test behind "GRPO improves on SFT"
and the torch-thread choice."""

from __future__ import annotations

import math

import pytest

from deepmmsearch import quickstart
from deepmmsearch.quickstart_summary import sign_test


def test_sign_test_is_the_exact_binomial_tail():
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 0) == pytest.approx(1 / 32)
    assert sign_test(6, 7) == pytest.approx(sum(math.comb(13, k) for k in range(6, 14)) / 2 ** 13)
    # 6 fixed against 7 broken is no evidence either way; 20 against 2 is
    assert sign_test(6, 7) > 0.5 and sign_test(20, 2) < 0.001


def test_threads_auto_takes_two_only_when_two_cpus_are_idle(monkeypatch):
    monkeypatch.setattr(quickstart.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(quickstart, "idle_cpus", lambda window_s=0.5: 1.9)
    assert quickstart.choose_threads("auto") == 2
    monkeypatch.setattr(quickstart, "idle_cpus", lambda window_s=0.5: 1.1)
    assert quickstart.choose_threads("auto") == 1
    assert quickstart.choose_threads(3) == 3


def test_idle_cpus_is_between_zero_and_the_cpu_count():
    idle = quickstart.idle_cpus(0.05)
    assert 0.0 <= idle <= (quickstart.os.cpu_count() or 1) + 1e-6
