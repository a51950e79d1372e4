"""Every HTML page shows control and format characters as visible escapes (`\\u202e`, `\\x1b`).

Names, labels, descriptions and messages from Kubernetes and AWS reach the dashboard's pages and
the admin through many templates and admin columns; autoescaping makes them harmless as markup,
but a bidirectional override still makes `evil\\u202egpj.exe` read as "evilexe.jpg" and a
zero-width space hides in a name. Rather than a filter on each of the hundreds of places that print
such a value (one missed is one spoof), this pass rewrites the finished HTML with
`bindings.textsafe.visible_markup`: those characters never occur in our own markup, so every one
found came from data.

Left alone: the `value` attribute and `<textarea>` contents of form controls, which the browser
sends back on submit (an admin saving a form must not turn a name into its escaped spelling), and
the tabs and line breaks that lay out the page. Fix blocks (YAML, shell commands) are escaped in
their own syntax when generated (`bindings.fixes.render`), so a copied command stays exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from bindings.textsafe import UNSAFE, visible_markup

# Form-control values the browser submits: kept byte for byte (attribute values are always
# double-quoted by Django's widgets, and a data `"` inside one is `&quot;`).
_FORM_VALUES = re.compile(r'(<textarea\b[^>]*>.*?</textarea>|\svalue="[^"]*")', re.S | re.I)


def visible_html(html: str) -> str:
    """`html` with control/format characters outside form-control values shown as escapes."""
    if not UNSAFE.search(html):
        return html
    parts = _FORM_VALUES.split(html)
    # split() with one group: even indexes are the text between form values, odd ones the values.
    return "".join(part if index % 2 else visible_markup(part) for index, part in enumerate(parts))


class VisibleTextMiddleware:
    """Applies `visible_html` to every complete (non-streaming) text/html response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(response, "streaming", False) or not response.get("Content-Type", "").startswith(
            "text/html"
        ):
            return response
        charset = response.charset or "utf-8"
        html = response.content.decode(charset, errors="replace")
        shown = visible_html(html)
        if shown is not html:
            response.content = shown.encode(charset)
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response
