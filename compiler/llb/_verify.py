"""Checking a download against its publisher's checksum file, inside the build step.

The archive and the publisher's checksum file are both LLB http sources mounted into the
step; the script below compares the archive's sha256 with the published one before anything
is unpacked, and fails the step with a message naming the file and both hashes. BuildKit's own
``http.checksum`` needs the hash at compile time, which we have only for what we pin
(Miniconda); a user-chosen Go or Node.js version has its hash only on the publisher's server.
Where even the file names are known only at build time (a VS Code extension without a
version), the step downloads both files itself and runs the same check (``check_lines``).

Checksum files come in two shapes:

* one hash for one file (``SINGLE``): Go's ``.sha256`` (bare hex, no newline), GitHub release
  ``.sha256`` files (``hex  name`` or ``hex *name``), rustup's ``rustup-init.sha256``, Open VSX's
  ``.sha256`` (bare hex). The file must hold exactly one non-empty line; its first word is the
  hash (the name, when present, is not compared: publishers write paths of their build tree).
* a listing of many files (``LISTING``): Node.js's ``SHASUMS256.txt``, Julia's
  ``julia-<v>.sha256``, openai/codex's ``codex-package_SHA256SUMS``. The line whose name field (without a leading ``*``) equals the file name
  exactly is used; none or several is an error. No substring matching: ``node-v1-linux-x64.tar.xz``
  must not pick the line of ``node-v1-linux-x64.tar.xz.asc``.
"""

from __future__ import annotations

import shlex
from typing import Literal

SINGLE: Literal["single"] = "single"
LISTING: Literal["listing"] = "listing"
Shape = Literal["single", "listing"]


def verify_lines(*, archive: str, sums: str, name: str, sums_url: str, what: str,
                 shape: Shape) -> list[str]:
    """Bash lines (for a ``set -euo pipefail`` script) that check ``archive`` against ``sums``.

    Args:
        archive: path of the downloaded file in the step.
        sums: path of the publisher's checksum file in the step.
        name: the file name to look up in a listing (and to name in messages).
        sums_url: where the checksum file came from (named in messages).
        what: the builtin, e.g. ``install.go`` (named in messages).
        shape: ``SINGLE`` or ``LISTING`` (see the module docstring).

    Returns:
        Script lines; they leave the archive untouched and exit 1 on any mismatch.
    """
    q = shlex.quote
    return [f"A={q(archive)}; S={q(sums)}; N={q(name)}; U={q(sums_url)}; W={q(what)}", *check_lines(shape)]


def check_lines(shape: Shape) -> list[str]:
    """The check of ``verify_lines`` on the shell variables it sets: ``A`` (archive path),
    ``S`` (checksum file path), ``N`` (file name), ``U`` (checksum URL), ``W`` (builtin).

    For a caller that learns the names at build time (an extension whose version Open VSX
    tells the step) and sets the variables itself.
    """
    lines = [
        ('command -v sha256sum >/dev/null 2>&1 || { echo "dsl: $W: sha256sum (coreutils or busybox) '
         'is needed in the image to verify $N" >&2; exit 1; }'),
        'want=""; n=0',
        # `|| [ -n "$h" ]` keeps a last line without a newline (Go's and Open VSX's files)
        'while read -r h f || [ -n "$h" ]; do',
    ]
    if shape == SINGLE:
        lines += ['  h=${h%$\'\\r\'}',
                  '  if [ -n "$h" ]; then want=$h; n=$((n + 1)); fi']
        count_error = ('echo "dsl: $W: $U should hold one checksum, it has $n lines" >&2; exit 1')
    else:
        lines += ['  f=${f%$\'\\r\'}; f=${f#\\*}',
                  '  if [ "$f" = "$N" ]; then want=$h; n=$((n + 1)); fi']
        count_error = ('echo "dsl: $W: $U lists $N $n times (expected once)" >&2; exit 1')
    lines += [
        'done < "$S"',
        f'if [ "$n" -ne 1 ]; then {count_error}; fi',
        'want=${want,,}',
        ('if ! [[ $want =~ ^[0-9a-f]{64}$ ]]; then echo "dsl: $W: $U gives no sha256 for $N '
         '(got \'${want:0:80}\')" >&2; exit 1; fi'),
        'got=$(sha256sum "$A"); got=${got%% *}',
        ('if [ "$got" != "$want" ]; then echo "dsl: $W: checksum mismatch for $N: $U gives sha256 '
         '$want, the downloaded file has sha256 $got" >&2; exit 1; fi'),
    ]
    return lines
