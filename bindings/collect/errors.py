"""Errors the collectors raise, so callers can tell "try again later" from "fix the configuration".

Hierarchy::

    SourceError
    ├── KubeError              401/403, unreadable kubeconfig, missing token file, CRD not served
    ├── AwsError               access denied, validation and other non-retryable AWS errors
    └── TransientSourceError   worth retrying later
        ├── KubeUnavailable    refused, DNS, timeout, 5xx, 429
        ├── AwsThrottled       still throttled after botocore's retries
        └── AwsUnavailable     endpoint unreachable, timeout, 5xx

The transient classes deliberately do not inherit from the permanent ones, so that
``except KubeError`` never swallows an outage that a task should retry.
"""

from __future__ import annotations


class SourceError(Exception):
    """A data source (a Kubernetes cluster or an AWS account) could not be read."""


class TransientSourceError(SourceError):
    """The source may answer if asked again later (network, timeouts, 5xx, throttling)."""


class KubeError(SourceError):
    """The Kubernetes API refused us or the connection settings are unusable."""


class KubeUnavailable(TransientSourceError):
    """The Kubernetes API could not be reached or is overloaded (refused, DNS, timeout, 5xx, 429)."""


class _AwsDetails(Exception):
    """Carries the failed operation and AWS error code, for messages and alert grouping."""

    def __init__(self, message: str, *, operation: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code


class AwsError(_AwsDetails, SourceError):
    """An AWS call failed for a reason retrying won't fix (access denied, validation, ...)."""


class AwsThrottled(_AwsDetails, TransientSourceError):
    """AWS kept throttling us after botocore's own retries were used up."""


class AwsUnavailable(_AwsDetails, TransientSourceError):
    """The AWS endpoint could not be reached, timed out, or answered 5xx."""
