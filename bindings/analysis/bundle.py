"""Bundles: the offline form of one cluster's Kubernetes objects and AWS responses (DESIGN.md).

A bundle is a directory, or a `.tar.gz`/`.tgz`/`.zip` of one, holding `kubernetes.yaml`,
`aws.json` and an optional `bundle.json`. Archives are read in memory, member by member, and
never extracted to disk, so a hostile archive cannot write outside anything; members whose
names try to (absolute paths, `..`, links, devices) reject the whole bundle.

Unreadable input raises `BundleError` naming the file and, where it can, the line or field.
Content that parses but is malformed is not an error here: the normaliser records it as problems.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bindings.analysis.model import Inventory
from bindings.analysis.normalize import (
    build_inventory,
    normalize_aws,
    normalize_kubernetes,
    parse_cidr,
    parse_eni_sg_tags,
)

__all__ = [
    "AWS_FILE",
    "KUBE_FILE",
    "META_FILE",
    "Bundle",
    "BundleError",
    "bundle_inventory",
    "load_bundle",
    "write_bundle",
]

KUBE_FILE = "kubernetes.yaml"
AWS_FILE = "aws.json"
META_FILE = "bundle.json"
# bundle.json: the controller's --service-target-eni-security-group-tags (DESIGN.md "Bundles").
ENI_SG_TAGS_FIELD = "serviceTargetEniSecurityGroupTags"
_KUBE_ALIASES = (KUBE_FILE, "kubernetes.yml")
_WANTED = frozenset({*_KUBE_ALIASES, AWS_FILE, META_FILE})
# Size caps: a large cluster's bundle is tens of MB; these stop archive bombs, not real data.
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 10_000
AWS_OPERATIONS = (
    "DescribeLoadBalancers",
    "DescribeListeners",
    "DescribeTargetGroups",
    "DescribeTargetHealth",
    "DescribeTargetGroupAttributes",
    "DescribeLoadBalancerAttributes",
    "DescribeNetworkInterfaces",
    "DescribeInstances",
    "DescribeSecurityGroups",
    "DescribeSubnets",
    "DescribeVpcs",
    "DescribeNetworkAcls",
)


class BundleError(Exception):
    """The bundle cannot be read. The message names the file and, where relevant, line or field."""


@dataclass(slots=True)
class Bundle:
    """A bundle's parsed content. `name` is the directory (or archive) name, the cluster fallback."""

    kube_objects: list[dict] = field(default_factory=list)
    aws: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    name: str = ""
    source: str = ""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML without timestamp resolution: kubectl quotes timestamps, but hand-written
    bundles may not, and `raw` objects must stay JSON-serialisable for fix manifests."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _archive_stem(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".zip"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _safe_member(name: str, archive: str) -> str:
    """The member's normalised relative path; raises on anything that would escape the bundle."""
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise BundleError(f"{archive}: member {name!r} has an absolute path; refusing the archive")
    normal = posixpath.normpath(cleaned)
    if normal == ".." or normal.startswith("../") or "/../" in f"/{cleaned}/":
        raise BundleError(
            f"{archive}: member {name!r} escapes the bundle (path traversal); refusing the archive"
        )
    return normal


def _pick(files: dict[str, bytes], archive: str) -> tuple[dict[str, bytes], str | None]:
    """Choose the bundle directory inside an archive: the shallowest one holding kubernetes.yaml."""
    candidates = sorted(
        (p for p in files if posixpath.basename(p) in _KUBE_ALIASES),
        key=lambda p: (p.count("/"), p),
    )
    if not candidates:
        raise BundleError(f"{archive}: no {KUBE_FILE} in the archive")
    folder = posixpath.dirname(candidates[0])
    chosen = {posixpath.basename(p): data for p, data in files.items() if posixpath.dirname(p) == folder}
    return chosen, (posixpath.basename(folder) or None)


def _read_tar(path: Path) -> tuple[dict[str, bytes], str | None]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for count, member in enumerate(archive):
                if count >= MAX_MEMBERS:
                    raise BundleError(f"{path}: more than {MAX_MEMBERS} members; refusing the archive")
                name = _safe_member(member.name, str(path))
                if member.issym() or member.islnk():
                    if posixpath.basename(name) in _WANTED:
                        raise BundleError(f"{path}: member {member.name!r} is a link; refusing the archive")
                    continue
                if not member.isfile() or posixpath.basename(name) not in _WANTED:
                    continue  # directories, devices and unrelated files are never read
                if member.size > MAX_FILE_BYTES:
                    raise BundleError(f"{path}: member {member.name!r} is larger than {MAX_FILE_BYTES} bytes")
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise BundleError(f"{path}: archive content exceeds {MAX_TOTAL_BYTES} bytes")
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                files[name] = handle.read(MAX_FILE_BYTES + 1)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BundleError(f"{path}: not a readable tar archive ({exc})") from exc
    return _pick(files, str(path))


def _read_zip(path: Path) -> tuple[dict[str, bytes], str | None]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise BundleError(f"{path}: more than {MAX_MEMBERS} members; refusing the archive")
            for info in infos:
                name = _safe_member(info.filename, str(path))
                if info.is_dir() or posixpath.basename(name) not in _WANTED:
                    continue
                # file_size is what the header claims; the read is capped too, against lying headers.
                if info.file_size > MAX_FILE_BYTES:
                    raise BundleError(
                        f"{path}: member {info.filename!r} is larger than {MAX_FILE_BYTES} bytes"
                    )
                with archive.open(info) as handle:
                    data = handle.read(MAX_FILE_BYTES + 1)
                if len(data) > MAX_FILE_BYTES:
                    raise BundleError(
                        f"{path}: member {info.filename!r} is larger than {MAX_FILE_BYTES} bytes"
                    )
                total += len(data)
                if total > MAX_TOTAL_BYTES:
                    raise BundleError(f"{path}: archive content exceeds {MAX_TOTAL_BYTES} bytes")
                files[name] = data
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, RuntimeError) as exc:
        raise BundleError(f"{path}: not a readable zip archive ({exc})") from exc
    return _pick(files, str(path))


def _read_directory(path: Path) -> dict[str, bytes]:
    files = {}
    for name in _WANTED:
        candidate = path / name
        if not candidate.is_file():
            continue
        try:
            size = candidate.stat().st_size
            if size > MAX_FILE_BYTES:
                raise BundleError(f"{candidate}: larger than {MAX_FILE_BYTES} bytes")
            files[name] = candidate.read_bytes()
        except OSError as exc:
            raise BundleError(f"{candidate}: cannot be read ({exc.strerror or exc})") from exc
    return files


def _text(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{label}: not UTF-8 text (byte {exc.start})") from exc


def _parse_yaml(data: bytes, label: str) -> list[dict]:
    text = _text(data, label)
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise BundleError(f"{label}{where}: invalid YAML: {exc.problem or exc}") from exc
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        raise BundleError(f"{label}: invalid YAML: {exc.__class__.__name__}") from exc
    objects = []
    for index, document in enumerate(documents):
        if document is None:
            continue  # `---` separators and empty documents are harmless
        if not isinstance(document, dict):
            raise BundleError(
                f"{label}: document {index + 1} is {type(document).__name__}, expected a Kubernetes object "
                "(a mapping with kind) or a kind: List"
            )
        objects.append(document)
    return objects


def _parse_json(data: bytes, label: str) -> Any:
    text = _text(data, label)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{label} line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from exc
    except (RecursionError, ValueError) as exc:
        raise BundleError(f"{label}: invalid JSON: {exc.__class__.__name__}") from exc


def _check_aws(value: Any, label: str) -> dict:
    if not isinstance(value, dict):
        raise BundleError(
            f"{label}: top level is {type(value).__name__}, expected an object keyed by operation name"
        )
    for operation in AWS_OPERATIONS:
        if operation in value and value[operation] is not None and not isinstance(value[operation], dict):
            kind = type(value[operation]).__name__
            raise BundleError(f"{label}: field {operation} is {kind}, expected an object")
    return value


def _check_meta(value: Any, label: str) -> dict:
    if not isinstance(value, dict):
        raise BundleError(f"{label}: top level is {type(value).__name__}, expected an object")
    cluster = value.get("cluster")
    if cluster is not None and (not isinstance(cluster, str) or not cluster.strip()):
        raise BundleError(f"{label}: field cluster must be a non-empty string")
    cidrs = value.get("clientCidrs")
    if cidrs is not None:
        if not isinstance(cidrs, list):
            raise BundleError(f"{label}: field clientCidrs must be a list of CIDR strings")
        for i, cidr in enumerate(cidrs):
            if parse_cidr(cidr) is None:
                raise BundleError(f"{label}: field clientCidrs[{i}] is not a valid CIDR: {str(cidr)[:80]!r}")
    try:
        parse_eni_sg_tags(value.get(ENI_SG_TAGS_FIELD), ENI_SG_TAGS_FIELD)
    except ValueError as exc:
        raise BundleError(f"{label}: field {exc}") from None
    collected = value.get("collectedAt")
    if collected is not None and _parse_timestamp(collected) is None:
        raise BundleError(f"{label}: field collectedAt is not an ISO 8601 timestamp: {str(collected)[:80]!r}")
    return value


def _parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def load_bundle(path: str | Path) -> Bundle:
    """Read a bundle directory or archive. Raises `BundleError` naming the file and line/field."""
    path = Path(path)
    lower = path.name.lower()
    if not path.exists():
        raise BundleError(f"{path}: no such file or directory")
    if path.is_dir():
        files, name, prefix = _read_directory(path), path.resolve().name, str(path)
    elif lower.endswith((".tar.gz", ".tgz", ".tar")):
        files, inner = _read_tar(path)
        name, prefix = inner or _archive_stem(path), f"{path}!"
    elif lower.endswith(".zip"):
        files, inner = _read_zip(path)
        name, prefix = inner or _archive_stem(path), f"{path}!"
    else:
        raise BundleError(f"{path}: not a bundle (expected a directory, .tar.gz, .tgz or .zip)")

    def label(file: str) -> str:
        return f"{prefix}/{file}" if not prefix.endswith("!") else f"{prefix}{file}"

    kube_name = next((n for n in _KUBE_ALIASES if n in files), None)
    if kube_name is None:
        raise BundleError(f"{label(KUBE_FILE)}: missing (every bundle needs the Kubernetes objects)")
    if AWS_FILE not in files:
        raise BundleError(f"{label(AWS_FILE)}: missing (every bundle needs the AWS responses)")
    for file, data in files.items():
        if len(data) > MAX_FILE_BYTES:
            raise BundleError(f"{label(file)}: larger than {MAX_FILE_BYTES} bytes")
    kube_objects = _parse_yaml(files[kube_name], label(kube_name))
    aws = _check_aws(_parse_json(files[AWS_FILE], label(AWS_FILE)), label(AWS_FILE))
    meta = (
        _check_meta(_parse_json(files[META_FILE], label(META_FILE)), label(META_FILE))
        if META_FILE in files
        else {}
    )
    return Bundle(kube_objects=kube_objects, aws=aws, meta=meta, name=name, source=str(path))


def bundle_inventory(bundle: Bundle, *, client_cidrs: list[str] | tuple[str, ...] | None = None) -> Inventory:
    """The Inventory a bundle describes.

    Client ranges: the `client_cidrs` argument (e.g. `--client-cidr`) wins over bundle.json's
    `clientCidrs`; the engine applies the per-TGB annotation and the scheme default itself.
    `now` is `collectedAt`, so staleness is judged as of collection time, not of reading.
    """
    cluster = bundle.meta.get("cluster") if isinstance(bundle.meta.get("cluster"), str) else None
    aws = normalize_aws(bundle.aws)
    # bundle.json is optional, and the cluster name decides which security group the controller
    # writes to (its `kubernetes.io/cluster/<name>` tag): without one, the name the collected
    # security groups' tags agree on beats the folder's name.
    cluster = cluster or _tagged_cluster(aws.security_groups.values()) or bundle.name or "bundle"
    cidrs = client_cidrs if client_cidrs else bundle.meta.get("clientCidrs")
    kube = normalize_kubernetes(bundle.kube_objects, cluster=cluster)
    return build_inventory(
        cluster=cluster,
        kube=kube,
        aws=aws,
        client_cidrs=list(cidrs) if cidrs else None,
        now=_parse_timestamp(bundle.meta.get("collectedAt")),
        eni_sg_tags=parse_eni_sg_tags(bundle.meta.get(ENI_SG_TAGS_FIELD), ENI_SG_TAGS_FIELD),
    )


def _tagged_cluster(groups: Any) -> str | None:
    """The one cluster name the `kubernetes.io/cluster/<name>` tags of these groups carry, if one."""
    names = {
        key[len(CLUSTER_TAG_PREFIX) :]
        for g in groups
        for key in (g.tags or {})
        if isinstance(key, str) and key.startswith(CLUSTER_TAG_PREFIX) and len(key) > len(CLUSTER_TAG_PREFIX)
    }
    return names.pop() if len(names) == 1 else None


CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"


def _json_default(value: Any) -> Any:
    # boto3 responses carry datetimes; the bundle format stores ISO strings (DESIGN.md).
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _render(kube_objects: list[dict], aws: dict, meta: dict) -> dict[str, bytes]:
    kube = {
        "apiVersion": "v1",
        "kind": "List",
        "items": list(kube_objects),
        "metadata": {"resourceVersion": ""},
    }
    # Round-trip through JSON first so datetimes and other SDK leftovers become plain strings.
    kube = json.loads(json.dumps(kube, default=_json_default))
    return {
        KUBE_FILE: yaml.safe_dump(kube, sort_keys=False, allow_unicode=True).encode(),
        AWS_FILE: json.dumps(aws, indent=1, default=_json_default, ensure_ascii=False).encode(),
        META_FILE: json.dumps(meta, indent=1, default=_json_default, ensure_ascii=False).encode(),
    }


def write_bundle(path: str | Path, *, kube_objects: list[dict], aws: dict, meta: dict) -> Path:
    """Write a bundle as a directory, or as an archive when `path` ends in .tar.gz/.tgz/.zip.

    Archives hold one top-level folder named after the archive, as `tar czf x.tar.gz x/` would.
    Returns the path written.
    """
    path = Path(path)
    files = _render(kube_objects, aws, meta)
    lower = path.name.lower()
    if lower.endswith((".tar.gz", ".tgz")):
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = _archive_stem(path)
        with tarfile.open(path, mode="w:gz") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(f"{stem}/{name}")
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
    elif lower.endswith(".zip"):
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = _archive_stem(path)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(f"{stem}/{name}", data)
    else:
        path.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (path / name).write_bytes(data)
    return path
