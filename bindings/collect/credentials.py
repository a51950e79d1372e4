"""The credentials boundary: every file the worker reads by a path someone typed into the admin
(a cluster's token, kubeconfig and CA files, an alert hook's URL file) must lie under one of the
directories in BH_CREDENTIALS_DIRS (default: the Kubernetes service-account folder and the data
directory).

Without it, whoever may edit a path can make the worker read any file it can read (a database URL
secret, /etc/…) and — pointing the cluster's API URL at their own listener — send it out as a
bearer token. The check runs twice: when the path is saved (clear form errors) and again right
before the file is read, on the path with every symlink resolved, so a symlink planted or swapped
later cannot lead outside. The resolved path is what the reader then opens.

One home for the rule: models (validation), polling (cluster connections) and alerts (URL files)
all call `credential_path`.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

# A URL file holds one URL: a few hundred bytes. Anything larger is not what the field is for.
URL_FILE_MAX_BYTES = 8192
# Kubeconfigs with embedded certificates are a few KiB; generated multi-cluster ones rarely 100 KiB.
KUBECONFIG_MAX_BYTES = 1024 * 1024
# The files a kubeconfig itself names (the Kubernetes client reads them by path, relative to the
# kubeconfig's directory): they are held to the same boundary.
KUBECONFIG_FILE_KEYS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}


class CredentialPathError(ValueError):
    """A configured credential path is unusable: outside the allowed directories, missing, or not a
    regular file. The message names the path and, when given, the object and field."""


def credential_dirs() -> list[Path]:
    """The allowed directories, each with its symlinks resolved (a directory that is itself a
    symlink, like Kubernetes' `..data` indirection, is compared by where it points)."""
    dirs = []
    for entry in settings.BH_CREDENTIALS_DIRS:
        try:
            dirs.append(Path(entry).expanduser().resolve())
        except (OSError, RuntimeError):
            continue  # an unresolvable entry (symlink loop) allows nothing
    return dirs


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def credential_path(value: str, *, what: str = "credential file") -> Path:
    """`value` resolved (symlinks, `..`, `~`) and checked to be a regular file under an allowed
    directory. Raises CredentialPathError naming `what` and the path otherwise."""
    raw = (value or "").strip()
    if not raw:
        raise CredentialPathError(f"{what}: no path given")
    if "\x00" in raw:
        raise CredentialPathError(f"{what}: the path contains a NUL character")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        # A relative path would depend on the worker's working directory: refuse, don't guess.
        raise CredentialPathError(f"{what} {ascii(raw)} is not an absolute path")
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise CredentialPathError(f"{what} {ascii(raw)} does not exist") from None
    except (OSError, RuntimeError) as exc:
        raise CredentialPathError(
            f"{what} {ascii(raw)} cannot be resolved: {exc.__class__.__name__}"
        ) from None
    dirs = credential_dirs()
    if not any(_inside(resolved, d) for d in dirs):
        via = f" (it resolves to {ascii(str(resolved))})" if resolved != candidate else ""
        allowed = ", ".join(str(d) for d in dirs) or "none configured"
        where = f"the credentials directories (BH_CREDENTIALS_DIRS: {allowed})"
        raise CredentialPathError(f"{what} {ascii(raw)}{via} is outside {where}")
    if not resolved.is_file():
        raise CredentialPathError(f"{what} {ascii(raw)} is not a regular file")
    return resolved


def kubeconfig_path(value: str, *, what: str = "kubeconfig file") -> Path:
    """`credential_path` for a kubeconfig, plus the same check for every file it names
    (certificate-authority, client-certificate, client-key, tokenFile of any cluster or user).

    Only these paths are checked: the kubeconfig's content is otherwise the deployer's (an `exec`
    plugin such as `aws eks get-token` runs as configured)."""
    import yaml

    path = credential_path(value, what=what)
    text = read_credential(str(path), what=what, max_bytes=KUBECONFIG_MAX_BYTES)
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise CredentialPathError(
            f"{what} {ascii(value)} is not valid YAML: {exc.__class__.__name__}"
        ) from None
    if not isinstance(doc, dict):
        raise CredentialPathError(f"{what} {ascii(value)} is not a kubeconfig (not a mapping)")
    for section, (inner, keys) in KUBECONFIG_FILE_KEYS.items():
        entries = doc.get(section)
        for entry in entries if isinstance(entries, list) else []:
            body = entry.get(inner) if isinstance(entry, dict) else None
            if not isinstance(body, dict):
                continue
            for key in keys:
                ref = body.get(key)
                if isinstance(ref, str) and ref.strip():
                    name = str(entry.get("name", "?"))[:100]
                    where = Path(ref.strip()).expanduser()
                    credential_path(
                        str(where if where.is_absolute() else path.parent / where),
                        what=f"{what} {ascii(value)}: {section[:-1]} {ascii(name)} {key}",
                    )
    return path


def read_credential(value: str, *, what: str, max_bytes: int) -> str:
    """The text of a credential file, checked with `credential_path`, at most `max_bytes` long.

    Opened with O_NOFOLLOW on the resolved path, so a final component swapped for a symlink
    between the check and the read is refused rather than followed."""
    path = credential_path(value, what=what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise CredentialPathError(f"{what} {ascii(value)} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CredentialPathError(f"{what} {ascii(value)} is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialPathError(f"{what} {ascii(value)} is not UTF-8 text") from None
