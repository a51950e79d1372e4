// Binding Health: the only hand-written script. No inline handlers anywhere (CSP friendly):
// behaviour is attached by event delegation, so it keeps working after htmx swaps.
(function () {
  "use strict";

  function ageText(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 90) return seconds + " s ago";
    if (seconds < 90 * 60) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 36 * 3600) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  // "updated N s ago" keeps counting between refreshes (a 304 keeps the old HTML).
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-ago]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(at)) el.textContent = ageText((now - at) / 1000);
    });
  }
  setInterval(tick, 1000);

  // Polling (hx-trigger="every 10s"). The house filter [document.visibilityState === 'visible']
  // needs eval, which the Content-Security-Policy forbids, so the same rule lives here: no
  // refresh while the tab is hidden, nor while focus is inside the region (a keyboard user
  // would lose their place when it is replaced).
  function isPolling(elt) {
    return /\bevery\b|bh:polled/.test(elt.getAttribute("hx-trigger") || "") && !elt.matches("form");
  }
  // Two exceptions to the focus rule: focus inside a kept (hx-preserve) part, which a swap does not
  // replace, and the refresh an Apply asks for (bh:applied), which the user has just caused.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (!isPolling(elt)) return;
    var active = document.activeElement;
    var kept = active && active.closest && active.closest("[hx-preserve]");
    var cause = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent;
    var asked = cause && cause.type === "bh:applied";
    if (document.visibilityState !== "visible" || (elt.contains(active) && !kept && !asked)) {
      event.preventDefault();
    }
  });
  // A 304 reaches htmx as the cached 200: skip swapping identical HTML (no flicker, no announcements).
  var lastHtml = {};
  document.addEventListener("htmx:beforeSwap", function (event) {
    var elt = event.detail.elt;
    if (!elt.id || !isPolling(elt) || !event.detail.xhr) return;
    var html = event.detail.xhr.responseText;
    if (lastHtml[elt.id] === html) event.detail.shouldSwap = false;
    lastHtml[elt.id] = html;
  });
  // Coming back to the tab: refresh at once rather than at the next tick.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && window.htmx) window.htmx.trigger(document.body, "bh:polled");
  });

  function fallbackCopy(text) {
    // Clipboard API needs a secure context (https or localhost); fall back to a selection.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = source.textContent;
    var status = button.parentElement.querySelector(".copy-status");
    var copy = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); })
      : fallbackCopy(text);
    copy.then(function () {
      button.setAttribute("data-copied", "true");
      if (status) status.textContent = "Copied " + text.split("\n").length + " lines.";
    }, function () {
      if (status) status.textContent = "Copy failed: select the text and copy it by hand.";
    });
  });
})();
