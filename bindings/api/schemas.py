"""The API's response bodies. The OpenAPI document is generated from these, and every endpoint
answers through them but the bindings list, which writes its JSON itself (tests/test_api.py's
schemathesis test holds it to `BindingPage`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema


class PollSummary(Schema):
    id: int
    status: Literal["running", "success", "failed", "held"]
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    api_calls: dict[str, int]
    error: str
    note: str = Field("", description="Why a held poll stored nothing (it waits for the next poll to agree).")


class ClusterOut(Schema):
    id: int
    name: str
    enabled: bool
    connection: str
    aws_account: str | None = Field(..., description="Name of the AWS account, if any.")
    poll_interval_seconds: int
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    last_error: str
    stale: bool = Field(..., description="No successful poll within three intervals.")
    data_age_seconds: int | None = Field(..., description="Seconds since the last successful poll.")
    bindings: int


class AccountOut(Schema):
    id: int
    name: str
    account_id: str
    region: str
    enabled: bool
    poll_interval_seconds: int
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    last_error: str
    stale: bool
    data_age_seconds: int | None
    last_poll: PollSummary | None


class ProtocolSummary(Schema):
    protocol: str
    port: int | None
    verdict: str
    targets_total: int
    targets_admitted: int


class FindingSummary(Schema):
    code: str
    severity: str
    protocol: str


class HealthCounts(Schema):
    healthy: int
    unhealthy: int
    other: int


class BindingOut(Schema):
    id: int
    url: str
    cluster: str
    namespace: str
    name: str
    uid: str
    target_group_arn: str
    target_type: str
    target_group_protocol: str
    verdict: str = Field(..., description="The worst verdict over the carried protocols.")
    max_severity: str = Field(..., description="The highest finding severity, '' when none.")
    protocols: list[ProtocolSummary]
    findings: list[FindingSummary]
    health: HealthCounts
    analyzed_at: datetime | None
    changed_at: datetime | None
    data_age_seconds: int | None
    stale: bool


class BindingPage(Schema):
    items: list[BindingOut]
    next_cursor: str | None = Field(..., description="Pass as ?cursor= for the next page; null at the end.")
    next: str | None


class TargetOut(Schema):
    target_id: str = ""
    port: int | None = None
    network_interface_id: str | None = None
    security_group_ids: list[str] = []
    admitted: bool | None = None
    uncovered_sources: list[str] = []
    matched_rules: list[str] = []
    reason: str = ""


class ProtocolDetail(ProtocolSummary):
    client_ip_preserved: bool = False
    expected_sources: list[str] = []
    reasons: list[str] = []
    targets: list[TargetOut] = []


class HealthCheckOut(Schema):
    protocol: str | None = None
    port: str | None = None
    path: str | None = None
    proves: str = ""
    cannot_prove: str = ""
    admitted: bool | None = None
    healthy: int = 0
    unhealthy: int = 0
    other: int = 0


class FindingDetail(Schema):
    code: str
    severity: str
    protocol: str | None = None
    message: str = ""
    evidence: dict[str, Any] = {}


class SourceFreshness(Schema):
    kind: Literal["cluster", "account"]
    name: str
    last_success_at: datetime | None
    last_error: str
    stale: bool


class BindingDetail(BindingOut):
    protocols: list[ProtocolDetail]  # type: ignore[assignment]
    health_check: HealthCheckOut | None
    findings: list[FindingDetail]  # type: ignore[assignment]
    problems: list[Any]
    has_fix: bool
    sources: list[SourceFreshness]


class HistorySampleOut(Schema):
    at: datetime
    verdicts: dict[str, str]
    healthy: int
    unhealthy: int
    other: int


class TransitionOut(Schema):
    at: datetime
    protocol: str
    old: str
    new: str


class HistoryOut(Schema):
    binding: int
    samples: list[HistorySampleOut]
    transitions: list[TransitionOut]


class BindingRef(Schema):
    id: int
    cluster: str
    namespace: str
    name: str


class FindingOut(Schema):
    id: int
    binding: BindingRef
    code: str
    severity: str
    protocol: str
    message: str
    evidence: dict[str, Any]


class FindingPage(Schema):
    items: list[FindingOut]
    next_cursor: str | None
    next: str | None


class PollOut(PollSummary):
    kind: Literal["cluster", "account"]
    source_id: int
    source: str
    rows_written: int


class PollPage(Schema):
    items: list[PollOut]
    next_cursor: str | None
    next: str | None


class PollQueued(Schema):
    kind: Literal["cluster", "account"]
    id: int
    name: str
    status: Literal["queued"]


class WhoAmI(Schema):
    username: str
    scope: Literal["read", "write", "session"] = Field(
        ..., description="The token's scope, or `session` for the dashboard's login session."
    )
