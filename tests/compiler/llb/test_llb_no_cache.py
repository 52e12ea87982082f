"""``compile_environment(no_cache=True)``: what ``dsl build --no-cache`` sends BuildKit."""

from __future__ import annotations

import pytest

from compiler.llb import compile_environment
from tests.compiler.llb._decode import decode
from tests.compiler.llb._envs import apt_pip, dev_workspace


@pytest.mark.parametrize("caps", [frozenset(), frozenset({"mergeop", "diffop"})])
@pytest.mark.parametrize("make", [apt_pip, dev_workspace])
def test_every_op_ignores_the_cache_with_the_same_digests(make, caps) -> None:
    env = make()
    cached = decode(compile_environment(env, caps=caps).definition)
    fresh = compile_environment(env, caps=caps, no_cache=True)
    uncached = decode(fresh.definition)
    # same ops, same bytes: the next normal build still finds this one's results in the cache
    assert uncached.digests == cached.digests
    assert [uncached.ops[d] for d in uncached.digests] == [cached.ops[d] for d in cached.digests]
    *ops, terminal = uncached.digests
    assert ops and all(uncached.definition.metadata[d].ignore_cache for d in ops)
    assert not any(cached.definition.metadata[d].ignore_cache for d in cached.digests)
    # the terminal op declares the cap BuildKit checks before honouring ignore_cache
    assert uncached.definition.metadata[terminal].caps["meta.ignorecache"]
    assert "meta.ignorecache" in fresh.caps_used
    # names and spans are untouched
    assert all(uncached.name(d) == cached.name(d) for d in ops)
