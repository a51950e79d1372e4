"""HTML views of the SRE dashboard, one module per page: overview, bindings (list and detail),
fixes (panel, YAML, dry-run, apply), sources (cluster, account, poll).

Function views, one template per page with inline partials (`dashboard/<page>.html#<partial>`
for htmx requests). Views read the database only; the one exception is the permission-guarded
fix dry-run/apply, which goes through `bindings.services.apply`. Shared request helpers (htmx,
ETags, permissions) are in `bindings.web.http`; what templates show is made in
`bindings.web.presenters`.

Query counts are constant per page whatever the number of bindings (tests/test_pages.py asserts
them): lists page in the database and prefetch what a page of rows shows.

Live regions poll every 10 s while the tab is visible. Each page computes an ETag from what it
shows *before* the expensive queries, so an unchanged refresh answers 304 after two or three
cheap queries.
"""

from __future__ import annotations

from bindings.web.forms import SORTS, BindingFilterForm
from bindings.web.presenters import (
    APPLY_WAIT,
    SEVERITY_CHOICES,
    VERDICT_CHOICES,
    BindingRow,
    Hop,
    applied_state,
    next_poll_seconds,
)
from bindings.web.presenters import rule_matches as _rule_matches
from bindings.web.views.bindings import (
    PAGE_SIZE,
    binding_context,
    binding_detail,
    binding_list,
    binding_queryset,
)
from bindings.web.views.fixes import binding_fix, binding_fix_apply, binding_fix_dry_run, binding_fix_yaml
from bindings.web.views.overview import WORST_LIMIT, overview, worst_bindings
from bindings.web.views.sources import account_detail, cluster_detail, cluster_poll, cluster_poll_status

__all__ = [
    "APPLY_WAIT",
    "PAGE_SIZE",
    "SEVERITY_CHOICES",
    "SORTS",
    "VERDICT_CHOICES",
    "WORST_LIMIT",
    "BindingFilterForm",
    "BindingRow",
    "Hop",
    "_rule_matches",
    "account_detail",
    "applied_state",
    "binding_context",
    "binding_detail",
    "binding_fix",
    "binding_fix_apply",
    "binding_fix_dry_run",
    "binding_fix_yaml",
    "binding_list",
    "binding_queryset",
    "cluster_detail",
    "cluster_poll",
    "cluster_poll_status",
    "next_poll_seconds",
    "overview",
    "worst_bindings",
]
