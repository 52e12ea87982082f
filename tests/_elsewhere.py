"""Run a snippet in fresh interpreters with other hash seeds and timezones.

Two calls in one process share one ``PYTHONHASHSEED``, so comparing them cannot catch output
that depends on set or dict-of-hash order; only another process can. Each child also reports
``hash("envdsl")`` so the caller can check that the seeds really differed (an interpreter run
with ``-E`` or ``-I`` would ignore them and make the comparison vacuous).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# (PYTHONHASHSEED, TZ): fixed seeds, one random; zones with odd offsets on both sides of UTC.
SEEDS_AND_ZONES = (("0", "UTC"), ("1", "Pacific/Kiritimati"), ("4242", "America/St_Johns"),
                   ("random", "Asia/Kathmandu"))


def outputs_elsewhere(code: str) -> list[bytes]:
    """Standard output of ``code`` run once per entry of ``SEEDS_AND_ZONES``.

    Args:
        code: Python source that writes its result to ``sys.stdout.buffer``.

    Returns:
        One output per seed and zone, in order.
    """
    probe = 'import sys; sys.stdout.buffer.write(b"%d\\n" % hash("envdsl")); sys.stdout.flush()\n' + code
    hashes, outputs = set(), []
    for seed, zone in SEEDS_AND_ZONES:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, PYTHONHASHSEED=seed, TZ=zone, PYTHONPATH=path)
        proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        first, _, rest = proc.stdout.partition(b"\n")
        hashes.add(first)
        outputs.append(rest)
    assert len(hashes) == len(SEEDS_AND_ZONES), "the children did not get different hash seeds"
    return outputs
