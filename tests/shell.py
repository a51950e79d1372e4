"""Read a generated command the way a shell does: bash itself splits it into words.

`shlex` knows POSIX quoting only; generated commands write values that hold control or format
characters with bash's ANSI-C quoting (`$'…\\u202e…'`, bindings.textsafe.shell_quote), so the
test asks the shell the commands are written for. `kubectl` and `aws` are shell functions here
that print their arguments: nothing runs.
"""

from __future__ import annotations

import shutil
import subprocess

BASH = shutil.which("bash") or "/bin/bash"
_PRINT_ARGS = 'kubectl() { printf "%s\\0" kubectl "$@"; }; aws() { printf "%s\\0" aws "$@"; }\n'


def shell_words(command: str) -> list[str]:
    """The argv that bash builds from `command` (line continuations included), decoded as UTF-8."""
    done = subprocess.run(
        [BASH, "--noprofile", "--norc", "-c", _PRINT_ARGS + command],
        capture_output=True,
        timeout=10,
        check=True,
        env={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"},
    )
    return done.stdout.decode("utf-8").split("\0")[:-1]
