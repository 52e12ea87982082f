"""An evaluation leaves nothing behind: a long-running process (a GitOps generator, the fuzzer)
evaluating many build files must not grow with each one."""

from __future__ import annotations

import gc
import weakref

from dsl.lang import _evaluator, evaluate_source

SOURCE = 'def build():\n    base(image="debian:bookworm", dev=True)\n    install.python_packages(name=["six"])\n'


def test_an_evaluation_is_freed_once_its_result_is_returned(monkeypatch):
    alive: list[weakref.ref] = []
    run = _evaluator.Evaluation.run

    def tracked(self, *args, **kwargs):
        alive.append(weakref.ref(self))
        return run(self, *args, **kwargs)

    monkeypatch.setattr(_evaluator.Evaluation, "run", tracked)
    results = [evaluate_source(SOURCE) for _ in range(3)]
    gc.collect()
    assert len(alive) == 3 and all(ref() is None for ref in alive), "evaluations kept alive after returning"
    assert all(r.environment.build.base.dev for r in results)
