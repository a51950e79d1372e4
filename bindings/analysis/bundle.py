"""Bundles: the offline form of one cluster's Kubernetes objects and AWS responses (docs/DESIGN.md).

A bundle is a directory, or a `.tar.gz`/`.tgz`/`.zip` of one, holding `kubernetes.yaml`,
`aws.json` and an optional `bundle.json`. Archives are read in memory, member by member, and
never extracted to disk, so a hostile archive cannot write outside anything; members whose
names try to (absolute paths, `..`, links, devices) reject the whole bundle.

Unreadable input raises `BundleError` naming the file and, where it can, the line or field.
Content that parses but is malformed is not an error here: the normaliser records it as problems.
"""

from __future__ import annotations

import bz2
import gc
import gzip
import io
import json
import lzma
import posixpath
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import IO, Any, BinaryIO

import yaml
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from bindings.analysis.model import Inventory
from bindings.analysis.normalize import (
    build_inventory,
    normalize_aws,
    normalize_kubernetes,
    parse_cidr,
    parse_eni_sg_tags,
)
from bindings.analysis.normalize.parsing import _parse_time

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
# bundle.json: the controller's --service-target-eni-security-group-tags (docs/DESIGN.md "Bundles").
ENI_SG_TAGS_FIELD = "serviceTargetEniSecurityGroupTags"
_KUBE_ALIASES = (KUBE_FILE, "kubernetes.yml")
_WANTED = frozenset({*_KUBE_ALIASES, AWS_FILE, META_FILE})
# Reader bounds (issue 15 item 3): hostile bundles must be refused in seconds and a few hundred MB.
# A cluster of 10,000 bindings is tens of MB of `kubectl -o json`; `analyze --max-file-mb` raises
# the per-file cap for a larger one. Every cap is checked while reading (never after reading a
# whole decompressed member), and the decompressed stream of a tar is capped as a whole, so an
# archive bomb in a member that is never used costs no more than one that is.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 128 * 1024 * 1024
MAX_ARCHIVE_STREAM_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 10_000
# Nesting depth (mappings and lists, the bundle's own `kind: List` wrapper included) past which a
# file is refused before the parser recurses into it. Real objects nest ~20 deep and an exported
# bundle at most MAX_NESTING + 2 (the poller cuts deeper values); 256 keeps the json module, the
# analysis and the fix generator (which recurse once per level) far from Python's recursion limit
# and libyaml's C stack (25,000 levels crashed it with SIGSEGV).
MAX_DEPTH = 256
# Items YAML aliases may add to a document beyond its own size (see _BoundedComposer).
_ALIAS_ALLOWANCE = 10_000
_CHUNK = 1024 * 1024
# The AWS calls a bundle's aws.json answers, keyed by operation: the collector (`bindings.collect.aws`)
# makes exactly these, and the deployed IAM policies allow them (plus DescribeManagedPrefixLists).
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
    "DescribeVpcEndpointServiceConfigurations",
    "GetManagedPrefixListEntries",
)


class BundleError(Exception):
    """The bundle cannot be read. The message names the file and, where relevant, line or field."""


@dataclass(slots=True)
class Bundle:
    """A bundle's parsed content. `name` is the directory (or archive) name, the cluster fallback."""

    kube_objects: list[dict[str, Any]] = field(default_factory=list)
    aws: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    source: str = ""


class _BoundedComposer:
    """PyYAML's Composer, iterative, with the reader's bounds.

    Replaces both PyYAML's composer and libyaml's: the latter recurses in C once per level with no
    bound (25,000 nested `[` crashed `analyze` with SIGSEGV), and both turn aliases into shared
    nodes that every later walk multiplies (a 1.3 KB file of nested aliases is 10^8 items). Here
    each node's expanded size and height are counted as the events arrive, an alias counting as
    the node it repeats: nesting past `max_depth` (aliases included) is refused before anything
    recurses, for block and flow styles alike, and so are aliases that refer to their own
    ancestors or add more nodes than the document itself has (`_ALIAS_ALLOWANCE` at least). The
    hand-written sample bundles share a `labels` mapping that way; kubectl never writes aliases.
    Construction stays SafeConstructor's (non-recursive for non-deep construction).
    """

    max_depth: int = MAX_DEPTH

    def check_node(self) -> bool:
        if self.check_event(StreamStartEvent):  # type: ignore[attr-defined]
            self.get_event()  # type: ignore[attr-defined]
        return not self.check_event(StreamEndEvent)  # type: ignore[attr-defined]

    def get_node(self) -> Node | None:
        if self.check_event(StreamEndEvent):  # type: ignore[attr-defined]
            return None
        self.get_event()  # type: ignore[attr-defined]  # DocumentStartEvent
        node = self._compose()
        self.get_event()  # type: ignore[attr-defined]  # DocumentEndEvent
        return node

    def _refuse(self, problem: str, mark: Any) -> ComposerError:
        return ComposerError(None, None, problem, mark)

    def _compose(self) -> Node:
        open_nodes: list[Node] = []
        keys: list[Node | None] = []  # per open node: a mapping's key still waiting for its value
        sizes: list[int] = []  # per open node: expanded nodes below it so far
        heights: list[int] = []  # per open node: the tallest child so far
        anchors: dict[str, Node] = {}
        anchored: set[int] = set()  # ids of anchored containers
        done: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (expanded size, height)
        composed = 0
        resolve = self.resolve  # type: ignore[attr-defined]
        get_event = self.get_event  # type: ignore[attr-defined]
        while True:
            event = get_event()
            node: Node
            if isinstance(event, ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(
                    tag,
                    event.value,
                    event.start_mark,  # type: ignore[arg-type]  # libyaml's Mark, not in the stubs' node types
                    event.end_mark,  # type: ignore[arg-type]
                    style=event.style,
                )
                size, height = 1, 0
                composed += 1
                if event.anchor is not None:
                    anchors[event.anchor] = node
                    done[id(node)] = (1, 0)
            elif isinstance(event, SequenceStartEvent | MappingStartEvent):
                if len(open_nodes) >= self.max_depth:
                    raise self._refuse(
                        f"nested deeper than {self.max_depth} levels; refused", event.start_mark
                    )
                kind = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolve(kind, None, event.implicit)
                node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)  # type: ignore[arg-type]
                composed += 1
                if event.anchor is not None:
                    anchors[event.anchor] = node
                    anchored.add(id(node))
                if open_nodes:
                    self._attach(open_nodes[-1], keys, node)
                open_nodes.append(node)
                keys.append(None)
                sizes.append(1)
                heights.append(0)
                continue
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                node = open_nodes.pop()
                keys.pop()
                size, height = sizes.pop(), heights.pop() + 1
                node.end_mark = event.end_mark
                if id(node) in anchored:
                    done[id(node)] = (size, height)
                if not open_nodes:
                    # Aliases share nodes, so nothing was expanded yet: checking once the
                    # document is complete is enough.
                    if size - composed > max(composed, _ALIAS_ALLOWANCE):
                        raise self._refuse(
                            f"aliases expand this document to {size} items from {composed}; refused "
                            "(they may add at most as many items as the document has)",
                            event.end_mark,
                        )
                    return node
                sizes[-1] += size
                heights[-1] = max(heights[-1], height)
                continue
            elif isinstance(event, AliasEvent):
                node = anchors.get(event.anchor)  # type: ignore[assignment, arg-type]
                if node is None:
                    raise self._refuse(f"found undefined alias *{event.anchor}", event.start_mark)
                if id(node) not in done:
                    raise self._refuse(
                        f"alias *{event.anchor} refers to a node that contains it", event.start_mark
                    )
                size, height = done[id(node)]
                if len(open_nodes) + height > self.max_depth:
                    raise self._refuse(
                        f"alias *{event.anchor} nests deeper than {self.max_depth} levels; refused",
                        event.start_mark,
                    )
            else:
                raise self._refuse(f"unexpected {type(event).__name__}", event.start_mark)
            if not open_nodes:
                return node
            self._attach(open_nodes[-1], keys, node)
            sizes[-1] += size
            heights[-1] = max(heights[-1], height)

    @staticmethod
    def _attach(parent: Node, keys: list[Node | None], node: Node) -> None:
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif keys[-1] is None:
            keys[-1] = node
        else:
            parent.value.append((keys[-1], node))
            keys[-1] = None


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser  # what yaml.cyaml re-exports (the stubs name it here)

    class _Loader(_BoundedComposer, CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser, the bounded composer, SafeConstructor."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _Loader(_BoundedComposer, Reader, Scanner, Parser, SafeConstructor, Resolver):  # type: ignore[no-redef]
        """PyYAML's pure-Python scanner and parser, the bounded composer, SafeConstructor."""

        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


# Safe YAML without timestamp resolution: kubectl quotes timestamps, but hand-written bundles may
# not, and `raw` objects must stay JSON-serialisable for fix manifests.
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


def _bundle_folder(paths: Any, archive: str) -> str:
    """The bundle directory inside an archive: the shallowest one holding kubernetes.yaml."""
    candidates: list[str] = sorted(
        (p for p in paths if posixpath.basename(p) in _KUBE_ALIASES),
        key=lambda p: (p.count("/"), p),
    )
    if not candidates:
        raise BundleError(f"{archive}: no {KUBE_FILE} in the archive")
    return posixpath.dirname(candidates[0])


def _pick(files: dict[str, bytes], archive: str) -> tuple[dict[str, bytes], str | None]:
    """The files of the bundle directory (`_bundle_folder`) and its name."""
    folder = _bundle_folder(files, archive)
    chosen = {posixpath.basename(p): data for p, data in files.items() if posixpath.dirname(p) == folder}
    return chosen, (posixpath.basename(folder) or None)


def _too_large(label: object, limit: int) -> BundleError:
    return BundleError(f"{label}: larger than {limit} bytes (analyze --max-file-mb raises the cap)")


def _read_capped(handle: IO[bytes], limit: int, label: str) -> bytes:
    """All of `handle`, read in chunks and refused as soon as it passes `limit` bytes: a member
    whose header understates its size (or a file that grows) never costs more than the cap."""
    buffer = bytearray()
    while chunk := handle.read(_CHUNK):
        buffer += chunk
        if len(buffer) > limit:
            raise _too_large(label, limit)
    return bytes(buffer)


class _CappedStream(io.RawIOBase):
    """A decompressed archive stream that fails once more than `limit` bytes were read from it."""

    def __init__(self, inner: BinaryIO, limit: int, label: str) -> None:
        self.inner, self.limit, self.label, self.count = inner, limit, label, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size if size is not None and size >= 0 else self.limit + 1)
        self.count += len(data)
        if self.count > self.limit:
            raise BundleError(
                f"{self.label}: the archive expands to more than {self.limit} bytes; refusing it"
            )
        return data


def _decompressed(raw: BinaryIO) -> BinaryIO:
    """The tar stream inside a gzip, bzip2 or xz file (by magic number), or the file itself."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    return raw


def _read_tar(path: Path, max_file_bytes: int) -> tuple[dict[str, bytes], str | None]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with path.open("rb") as raw:
            # Stream mode ("r|"): members are read in order from the capped decompressed stream;
            # nothing seeks, and skipped members count against the stream cap as read ones do.
            stream = _CappedStream(_decompressed(raw), MAX_ARCHIVE_STREAM_BYTES, str(path))
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for count, member in enumerate(archive):
                    if count >= MAX_MEMBERS:
                        raise BundleError(f"{path}: more than {MAX_MEMBERS} members; refusing the archive")
                    name = _safe_member(member.name, str(path))
                    wanted = posixpath.basename(name) in _WANTED
                    if member.issym() or member.islnk():
                        if wanted:
                            raise BundleError(
                                f"{path}: member {member.name!r} is a link; refusing the archive"
                            )
                        continue
                    if not member.isfile():
                        if wanted and not member.isdir():
                            raise BundleError(
                                f"{path}: member {member.name!r} is a device or pipe, not a file; "
                                "refusing the archive"
                            )
                        continue  # directories and unrelated entries are never read
                    if not wanted:
                        continue
                    label = f"{path}!{member.name}"
                    if member.size > max_file_bytes:
                        raise _too_large(label, max_file_bytes)
                    total += member.size
                    if total > MAX_TOTAL_BYTES:
                        raise BundleError(f"{path}: archive content exceeds {MAX_TOTAL_BYTES} bytes")
                    handle = archive.extractfile(member)
                    if handle is not None:
                        files[name] = _read_capped(handle, max_file_bytes, label)
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as exc:
        raise BundleError(f"{path}: not a readable tar archive ({exc})") from exc
    return _pick(files, str(path))


_S_IFMT, _S_IFREG = 0o170000, 0o100000


def _read_zip(path: Path, max_file_bytes: int) -> tuple[dict[str, bytes], str | None]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise BundleError(f"{path}: more than {MAX_MEMBERS} members; refusing the archive")
            wanted = {}
            for info in infos:
                name = _safe_member(info.filename, str(path))
                if not info.is_dir() and posixpath.basename(name) in _WANTED:
                    wanted[name] = info
            # The directory listing comes first in a zip: only the chosen folder's files are read,
            # so a thousand copies of kubernetes.yaml elsewhere cost nothing.
            folder = _bundle_folder(wanted, str(path))
            for name, info in wanted.items():
                if posixpath.dirname(name) != folder:
                    continue
                # Unix zips record the file type in the high bits: a symlink's content is its
                # target path, and reading it as the bundle's file would be a confusing parse error.
                mode = info.external_attr >> 16
                if info.create_system == 3 and mode & _S_IFMT and mode & _S_IFMT != _S_IFREG:
                    raise BundleError(
                        f"{path}: member {info.filename!r} is a link or special file; refusing the archive"
                    )
                label = f"{path}!{info.filename}"
                # file_size is what the header claims; the streamed read is capped too.
                if info.file_size > max_file_bytes:
                    raise _too_large(label, max_file_bytes)
                total += info.file_size
                if total > MAX_TOTAL_BYTES:
                    raise BundleError(f"{path}: archive content exceeds {MAX_TOTAL_BYTES} bytes")
                with archive.open(info) as handle:
                    files[name] = _read_capped(handle, max_file_bytes, label)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, RuntimeError, zlib.error) as exc:
        raise BundleError(f"{path}: not a readable zip archive ({exc})") from exc
    return _pick(files, str(path))


def _read_directory(path: Path, max_file_bytes: int) -> dict[str, bytes]:
    files = {}
    for name in _WANTED:
        candidate = path / name
        if not candidate.is_file():
            continue
        try:
            if candidate.stat().st_size > max_file_bytes:
                raise _too_large(candidate, max_file_bytes)
            with candidate.open("rb") as handle:  # capped as read: the size may change (or be 0 in /proc)
                files[name] = _read_capped(handle, max_file_bytes, str(candidate))
        except OSError as exc:
            raise BundleError(f"{candidate}: cannot be read ({exc.strerror or exc})") from exc
    return files


def _text(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{label}: not UTF-8 text (byte {exc.start})") from exc


_STRING = re.compile(rb'"[^"]*"')
_JSON_START = re.compile(r"\s*[\[{]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def json_depth(data: bytes) -> int:
    """The nesting depth of JSON text, found without parsing it (exact for valid JSON).

    Escapes go first (`\\\\` then `\\"`, left to right as JSON pairs them), then strings, then
    everything but brackets; the depth is the highest running count. In C but for the last step,
    which sees only the brackets: ~0.2 s for 17 MB of `kubectl -o json`.
    """
    bare = _STRING.sub(b"", data.replace(b"\\\\", b"").replace(b'\\"', b""))
    return max(accumulate(map(_STEP.__getitem__, bare.translate(None, _NOT_BRACKETS))), default=0)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_documents(data: bytes, text: str, label: str, max_depth: int) -> list[Any]:
    """The documents of kubernetes.yaml: JSON text (what `kubectl -o json` prints, and valid YAML)
    through the json module, ~100 times faster than YAML; anything else as YAML."""
    if _JSON_START.match(text) and json_depth(data) <= max_depth:
        try:
            # NaN/Infinity are not JSON; YAML reads them as strings, so YAML decides.
            return [json.loads(text, parse_constant=_refuse_constant)]
        except (ValueError, RecursionError):
            pass  # flow-style YAML that is not strict JSON, or broken: YAML says which line
    loader = _Loader(text)
    loader.max_depth = max_depth
    # The node graph and the objects built from it hold no cycles (aliases to an ancestor are
    # refused), yet every few hundred allocations the collector walks all of them: with it paused,
    # 4,000 bindings of YAML load 3x faster (24.8 s -> 7.6 s on a loaded 2-CPU machine).
    collecting = gc.isenabled()
    gc.disable()
    try:
        documents = []
        while loader.check_node():
            documents.append(loader.construct_document(loader.get_node()))
        return documents
    finally:
        if collecting:
            gc.enable()
        loader.dispose()


def _parse_yaml(data: bytes, label: str, *, max_depth: int | None = None) -> list[dict[str, Any]]:
    text = _text(data, label)
    try:
        documents = _load_documents(data, text, label, MAX_DEPTH if max_depth is None else max_depth)
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


def _parse_json(data: bytes, label: str, *, max_depth: int | None = None) -> Any:
    text = _text(data, label)
    limit = MAX_DEPTH if max_depth is None else max_depth
    if json_depth(data) > limit:
        raise BundleError(f"{label}: nested deeper than {limit} levels; refused before parsing")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{label} line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}") from exc
    except (RecursionError, ValueError) as exc:
        raise BundleError(f"{label}: invalid JSON: {exc.__class__.__name__}") from exc


def _check_aws(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleError(
            f"{label}: top level is {type(value).__name__}, expected an object keyed by operation name"
        )
    for operation in AWS_OPERATIONS:
        if operation in value and value[operation] is not None and not isinstance(value[operation], dict):
            kind = type(value[operation]).__name__
            raise BundleError(f"{label}: field {operation} is {kind}, expected an object")
    return value


def _check_meta(value: Any, label: str) -> dict[str, Any]:
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
    # The bundle format stores ISO strings; anything else (a YAML-native date) is refused.
    return _parse_time(value) if isinstance(value, str) else None


def load_bundle(path: str | Path, *, max_file_bytes: int | None = None) -> Bundle:
    """Read a bundle directory or archive. Raises `BundleError` naming the file and line/field.

    `max_file_bytes` (default MAX_FILE_BYTES) caps each file, decompressed.
    """
    path = Path(path)
    cap = MAX_FILE_BYTES if max_file_bytes is None else max_file_bytes
    lower = path.name.lower()
    if not path.exists():
        raise BundleError(f"{path}: no such file or directory")
    if path.is_dir():
        files, name, prefix = _read_directory(path, cap), path.resolve().name, str(path)
    elif lower.endswith((".tar.gz", ".tgz", ".tar")):
        files, inner = _read_tar(path, cap)
        name, prefix = inner or _archive_stem(path), f"{path}!"
    elif lower.endswith(".zip"):
        files, inner = _read_zip(path, cap)
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
        if len(data) > cap:
            raise _too_large(label(file), cap)
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
    # boto3 responses carry datetimes; the bundle format stores ISO strings (docs/DESIGN.md).
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _render(
    kube_objects: list[dict[str, Any]], aws: dict[str, Any], meta: dict[str, Any]
) -> dict[str, bytes]:
    kube = {
        "apiVersion": "v1",
        "kind": "List",
        "items": list(kube_objects),
        "metadata": {"resourceVersion": ""},
    }
    # Round-trip through JSON first so datetimes and other SDK leftovers become plain strings.
    kube = json.loads(json.dumps(kube, default=_json_default))
    return {
        # JSON text, as `kubectl -o json` prints it: valid YAML, and read by the json module, ~50x
        # faster (load_bundle). ASCII-only, so any string (a lone surrogate, a bidi override) is
        # written as an escape rather than raw.
        KUBE_FILE: json.dumps(kube, indent=1).encode(),
        AWS_FILE: json.dumps(aws, indent=1, default=_json_default, ensure_ascii=False).encode(),
        META_FILE: json.dumps(meta, indent=1, default=_json_default, ensure_ascii=False).encode(),
    }


def write_bundle(
    path: str | Path, *, kube_objects: list[dict[str, Any]], aws: dict[str, Any], meta: dict[str, Any]
) -> Path:
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
