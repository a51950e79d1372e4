"""What the API accepts: query parameters and request bodies, validated by ninja before a view
runs (a 400 problem otherwise). Names hold no control characters: no cluster, account or namespace
name does, and PostgreSQL refuses NUL in a query (that would be a 500, not a 400)."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Field, Schema

from bindings.api.pagination import PageParams
from bindings.vocabulary import Protocol, Severity, Verdict

NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"


class PollRequest(Schema):
    """Exactly one of `cluster` or `account`, by name."""

    model_config = {"extra": "forbid", "json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    # Not nullable, so the document's "one property" rule is exactly what the view accepts.
    cluster: str = Field(  # type: ignore[assignment]
        None, min_length=1, max_length=100, pattern=NAME_PATTERN, description="Name of a cluster to poll."
    )
    account: str = Field(  # type: ignore[assignment]
        None,
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="Name of an AWS account to poll.",
    )


_Name = Field(None, max_length=253, pattern=NAME_PATTERN)


class BindingFilters(PageParams):
    cluster: str | None = _Name
    namespace: str | None = _Name
    protocol: Protocol | None = None
    verdict: Verdict | None = Field(
        None,
        description="Has a protocol verdict of this value (for `protocol`, if given). `unknown` without "
        "`protocol` also matches bindings not analysed yet, whose `verdict` is `unknown` too.",
    )
    code: str | None = Field(
        None, max_length=64, pattern=r"^[A-Za-z0-9_]*$", description="Has a finding with this code."
    )
    severity: Severity | None = Field(
        None, description="Has a finding with this severity; with `code`, one finding with both."
    )
    stale: bool | None = Field(None, description="Only bindings whose data is (not) stale.")

    def queryset_filters(self) -> dict[str, Any]:
        """These filters as `bindings.store.querysets.filter_bindings` takes them: the one
        translation, for the SQL list and the Python list alike."""
        return {
            "cluster_name": self.cluster,
            "namespace": self.namespace,
            "protocol": self.protocol,
            "verdict": self.verdict,
            "code": self.code,
            "severity": self.severity,
            "stale": self.stale,
        }


class FindingFilters(PageParams):
    cluster: str | None = _Name
    namespace: str | None = _Name
    protocol: Protocol | None = None
    code: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_]*$")
    severity: Severity | None = None


class PollFilters(PageParams):
    cluster: str | None = _Name
    account: str | None = _Name
    status: Literal["running", "success", "failed", "held"] | None = None


class FixParams(Schema):
    format: Literal["json", "yaml"] | None = Field(None, description="Overrides the Accept header.")


class HistoryParams(Schema):
    limit: int = Field(200, ge=1, le=2000, description="The newest samples and transitions, oldest first.")
