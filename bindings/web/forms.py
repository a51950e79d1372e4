"""The bindings list's query parameters: filters and sort orders, validated by a Django form."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db.models import F
from django.http import HttpRequest

from bindings.web.presenters import SEVERITY_CHOICES, VERDICT_CHOICES

CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

SORTS = {
    # key: (label, ordering when ascending); "-key" reverses every term.
    "verdict": ("verdict", [("vrank", True), ("srank", True), ("namespace", False), ("name", False)]),
    "severity": ("severity", [("srank", True), ("vrank", True), ("namespace", False), ("name", False)]),
    "name": ("name", [("namespace", False), ("name", False), ("cluster__name", False)]),
    "cluster": ("cluster", [("cluster__name", False), ("namespace", False), ("name", False)]),
    "health": ("health", [("result__unhealthy", True), ("namespace", False), ("name", False)]),
    "changed": ("changed", [("result__changed_at", True), ("namespace", False), ("name", False)]),
}


class BindingFilterForm(forms.Form):
    """The list's query parameters. Invalid values are dropped, never a server error."""

    q = forms.CharField(required=False, max_length=200, strip=True)
    cluster = forms.IntegerField(required=False, min_value=1)
    namespace = forms.CharField(required=False, max_length=253, strip=True)
    protocol = forms.ChoiceField(required=False, choices=[("", "any"), ("TCP", "TCP"), ("UDP", "UDP")])
    verdict = forms.ChoiceField(required=False, choices=[("", "any"), *VERDICT_CHOICES])
    code = forms.CharField(required=False, max_length=64, strip=True)
    severity = forms.ChoiceField(required=False, choices=[("", "any"), *SEVERITY_CHOICES])
    sort = forms.ChoiceField(
        required=False, choices=[(k, k) for k in SORTS] + [(f"-{k}", f"-{k}") for k in SORTS]
    )
    page = forms.IntegerField(required=False, min_value=1)

    def clean_code(self) -> str:
        code = self.cleaned_data.get("code", "")
        if code and not CODE_RE.match(code):
            raise forms.ValidationError("not a finding code")
        return code


def parse_filters(request: HttpRequest) -> tuple[dict[str, Any], list[str]]:
    """The valid filters of the request, and a line per invalid one (shown, not raised)."""
    form = BindingFilterForm(request.GET)
    form.is_valid()
    values = {name: form.cleaned_data.get(name) for name in form.fields if name in form.cleaned_data}
    errors = [f"{name}: {'; '.join(errs)}" for name, errs in form.errors.items()]
    return values, errors


def ordering(sort: str) -> list[Any]:
    """The ORDER BY terms of a sort value (`verdict`, `-name`...), empty values last."""
    key = sort.lstrip("-") if sort else "verdict"
    reverse = sort.startswith("-")
    terms = []
    for name, descending in SORTS.get(key, SORTS["verdict"])[1]:
        descending = descending != reverse
        expr = F(name)
        terms.append(expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True))
    return terms
