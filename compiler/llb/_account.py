"""The dev user's account, written the way useradd/usermod would, with the runtime's busybox.

Images without shadow-utils (busybox, distroless, a single static binary, Nix) have no
``useradd``; sshd still needs the user in /etc/passwd (getpwnam, the login shell). So the
entries are written directly, in every image the same way:

- a group with the user's gid is reused (renamed), else a group is added;
- a user with the uid is reused: renamed, given the home (its old home moved there, as
  ``usermod -m``), the gid and the login shell (e.g. ubuntu:24.04's ``ubuntu``); else one is
  added. An existing root keeps its home (envd's root mode uses ``/home/envd`` as HOME only).
- /etc/shadow and /etc/gshadow, where the image has them, get an entry too: ``*`` (no
  password, not locked: sshd refuses logins to locked accounts, even with a key).
- missing files are created with a root entry, so ``ls -l`` and sshd see names.
"""

from __future__ import annotations

import shlex

from compiler.llb._layout import RUNTIME_BIN, RUNTIME_SH
from compiler.llb._ops import Owner

_AWK_PASSWD = r"""
$3 == uid && !done {
  if ($1 != name) old = $1
  if (!keephome) { if ($6 != home) oldhome = $6; $6 = home }
  $1 = name; $4 = gid; $7 = shell; done = 1
}
{ print }
END {
  if (!done) print name, "x", uid, gid, "", home, shell
  if (old != "") print old > "/etc/.dsl-renamed"
  if (oldhome != "") print oldhome > "/etc/.dsl-oldhome"
}
"""
_AWK_GROUP = r"""
$3 == gid && !done { $1 = name; done = 1 }
$1 == name && $3 != gid { clash = 1 }
{ print }
END { if (!done && !clash) print name, "x", gid, "" }
"""


def account_script(o: Owner, name: str, home: str, login: str) -> list[str]:
    """Script lines (for the runtime's sh, as root) that make ``name`` the account of ``o``.

    Args:
        o: the uid and gid.
        name: the user (and group) name.
        home: its home directory (created, owned by the user; root's entry keeps its own).
        login: the login shell asked for; the runtime's sh when the image has no such program.
    """
    q = shlex.quote
    return [
        f"export PATH={RUNTIME_BIN}",  # the same tools in every image: the runtime's busybox
        f"uid={o.uid} gid={o.gid} name={q(name)} home={q(home)} keephome={1 if o.uid == 0 else 0}",
        f"shell={q(login)}",
        f'[ -x "$shell" ] || shell={RUNTIME_SH}',
        "mkdir -p /etc",
        f"[ -e /etc/passwd ] || echo 'root:x:0:0:root:/root:{RUNTIME_SH}' > /etc/passwd",
        "[ -e /etc/group ] || echo 'root:x:0:' > /etc/group",
        "rewrite() {  # rewrite FILE AWK-PROGRAM: in place, keeping the file's mode",
        "  awk -F: -v OFS=: -v uid=\"$uid\" -v gid=\"$gid\" -v name=\"$name\" -v home=\"$home\" \\",
        "    -v shell=\"$shell\" -v keephome=\"$keephome\" \"$2\" \"$1\" > \"$1.dsl-new\"",
        "  cat \"$1.dsl-new\" > \"$1\" && rm -f \"$1.dsl-new\"",
        "}",
        f"rewrite /etc/group {q(_AWK_GROUP)}",
        f"rewrite /etc/passwd {q(_AWK_PASSWD)}",
        "old=$(cat /etc/.dsl-renamed 2>/dev/null || true) oldhome=$(cat /etc/.dsl-oldhome 2>/dev/null || true)",
        "rm -f /etc/.dsl-renamed /etc/.dsl-oldhome",
        "for file in /etc/shadow /etc/gshadow; do",
        "  [ -e \"$file\" ] || continue",
        "  if [ -n \"$old\" ]; then sed -i \"s/^$old:/$name:/\" \"$file\"; fi",
        "  if ! grep -q \"^$name:\" \"$file\"; then",
        "    if [ \"$file\" = /etc/shadow ]; then echo \"$name:*::0:99999:7:::\" >> \"$file\";"
        " else echo \"$name:!::\" >> \"$file\"; fi",
        "  fi",
        "done",
        "if [ -n \"$oldhome\" ] && [ -d \"$oldhome\" ] && [ ! -e \"$home\" ]; then mkdir -p \"${home%/*}\";"
        " mv \"$oldhome\" \"$home\"; fi",
        "mkdir -p \"$home\" && chown \"$uid:$gid\" \"$home\"",
        "if [ -e /etc/shells ] && ! grep -qx \"$shell\" /etc/shells; then echo \"$shell\" >> /etc/shells; fi",
    ]
