"""The primitive registry: Python handlers the Starlark stdlib forwards to.

Each family module (``_install``, ``_config``, ...) registers its handlers with
:func:`primitive`. The stdlib calls one host function, ``_prim(NAME, call_stack(), **args)``;
:func:`dispatch` finds the user's call site, validates through the handler and records into
the current :class:`~dsl.lang._recorder.Recorder`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dsl.errors import BuildFileError, InternalError
from dsl.lang._credentials import refuse_credentials
from dsl.lang._recorder import Recorder, current
from dsl.lang._spans import call_site
from dsl.lang._unpack import Call

Handler = Callable[..., Any]
REGISTRY: dict[str, Handler] = {}


def primitive(public: str) -> Callable[[Handler], Handler]:
    """Register ``fn(rec, call, **args)`` as the primitive behind builtin ``public``."""

    def register(fn: Handler) -> Handler:
        REGISTRY[public] = fn
        return fn

    return register


class PrimitiveFailed(Exception):
    """Raised into Starlark to abort evaluation; the real error waits on ``Recorder.pending``."""


def dispatch(public: str, stack: str, **args: Any) -> Any:
    """The ``_prim`` host callable: run the handler of ``public`` for the current evaluation.

    Errors never escape as Python tracebacks: a ``BuildFileError`` (or any bug, wrapped in an
    ``InternalError``) is parked on the recorder and a ``PrimitiveFailed`` unwinds the Starlark stack;
    the evaluator re-raises the parked error after translating the ``StarlarkError``.
    """
    rec: Recorder = current()
    call = Call(public, call_site(stack, public, rec.sources))
    try:
        handler = REGISTRY[public]
        refuse_credentials(call, args)  # before the handler, whose errors may quote the value
        return handler(rec, call, **args)
    except BuildFileError as err:
        rec.pending = err
    except Exception as exc:  # a bug in a handler: ours, not the user's (exit 70), at their call
        rec.pending = InternalError.of(exc, span=call.span)
    raise PrimitiveFailed(rec.pending.message)
