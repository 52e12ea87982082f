"""Rules that concern several calls together, checked once the whole build function has run.

A ``runtime.expose(2222)`` is only wrong in a dev image (sshd owns the port), and
``install.cuda``'s image depends on ``base()``, which may come after it; the compilers apply
the same ``dsl.rules`` functions to the same IR, so what passes here compiles.
"""

from __future__ import annotations

from dsl import rules
from dsl.errors import BuildFileError
from dsl.ir import Environment, builtin_ports


def check_combinations(env: Environment) -> None:
    """Check what no single call can: exposed ports against each other and the built-in
    ones, and the CUDA image ``install.cuda`` derives from the base image.

    Raises:
        BuildFileError: at the call that breaks the rule.
    """
    rt = env.runtime
    builtin = builtin_ports(dev=env.build.base.dev, jupyter=rt.jupyter is not None, rstudio=rt.rstudio)
    seen: list[int] = []
    for port in rt.ports:
        try:
            rules.exposed_port(port.container_port, port.host_port, earlier=seen, reserved=builtin)
        except rules.Invalid as exc:
            raise BuildFileError(f"runtime.expose: {exc.message}", span=port.span, hint=exc.hint) from exc
        seen.append(port.container_port)
    cuda = env.build.cuda
    if cuda is not None:
        try:
            rules.cuda_image(env.build.base.image, cuda.version, cuda.cudnn, dev=env.build.base.dev)
        except rules.Invalid as exc:
            raise BuildFileError(f"install.cuda: {exc.message}", span=cuda.span, hint=exc.hint) from exc
