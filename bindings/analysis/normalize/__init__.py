"""Turn raw Kubernetes objects and AWS describe responses into the typed inventory records.

Pure functions: no Django, no network, no clock. The same code reads what the poller fetched and
what an offline bundle holds, so both paths judge identical data.

Every input is treated as hostile: any field may be missing, null, of the wrong type, duplicated
or absurdly long. Nothing here raises on bad data; the defect is recorded as a `Problem` on the
record it affects (or in the records' `problems` list) and normalisation carries on, because one
broken TargetGroupBinding must not hide the health of the other hundred.

Where things are: `kube` (Kubernetes objects), `aws` (`normalize_aws` and the ELBv2 responses),
`ec2` (the EC2 responses), `parsing` (the type-safe accessors and parsers they share), `records`
(what they produce, and `build_inventory`).
"""

from __future__ import annotations

from .aws import AWS_TARGET_TYPES, AWS_TG_PROTOCOLS, normalize_aws
from .kube import (
    NETWORKING_PROTOCOLS,
    POD_ENI_ANNOTATION,
    SERVICE_NAME_LABEL,
    TARGET_TYPES,
    TGB_GROUP,
    TGB_PROTOCOLS,
    TGB_VERSIONS,
    normalize_kubernetes,
    pod_eni_entries,
)
from .parsing import MAX_ENI_SG_TAGS, MAX_NESTING, bound_depth, parse_cidr, parse_eni_sg_tags
from .records import AwsRecords, KubeRecords, build_inventory

# Was one module: every name imported from it keeps this path.
__all__ = [
    "AWS_TARGET_TYPES",
    "AWS_TG_PROTOCOLS",
    "MAX_ENI_SG_TAGS",
    "MAX_NESTING",
    "NETWORKING_PROTOCOLS",
    "POD_ENI_ANNOTATION",
    "SERVICE_NAME_LABEL",
    "TARGET_TYPES",
    "TGB_GROUP",
    "TGB_PROTOCOLS",
    "TGB_VERSIONS",
    "AwsRecords",
    "KubeRecords",
    "bound_depth",
    "build_inventory",
    "normalize_aws",
    "normalize_kubernetes",
    "parse_cidr",
    "parse_eni_sg_tags",
    "pod_eni_entries",
]
