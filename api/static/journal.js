// The journal page: times in the viewer's time zone, the zone for the start/end filters,
// and a highlight for lines added by live tail. No inline script: the CSP forbids it.
"use strict";

(function () {
  // the zone of the shared clock (vigil.js, which runs after this file but before
  // DOMContentLoaded), else the browser's
  var zone = "UTC";
  var format = null;
  function setup() {
    if (window.vigilClock) {
      zone = window.vigilClock.zone;
    } else {
      try {
        zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
      } catch (e) { /* keep UTC */ }
    }
    format = new Intl.DateTimeFormat("en-GB", {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
      fractionalSecondDigits: 3, hourCycle: "h23", timeZone: zone, timeZoneName: "short"
    });
  }

  // 2026-11-22 10:00:00.123 CET: sortable, and the zone is always shown
  function show(when) {
    var p = {};
    format.formatToParts(when).forEach(function (part) { p[part.type] = part.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" +
      p.second + "." + p.fractionalSecond + " " + p.timeZoneName;
  }

  function localize(root) {
    if (!format) return;
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        el.textContent = show(when);
        el.setAttribute("data-local", "1");
        if (window.vigilClock) { el.title = window.vigilClock.title(when); }
      }
    });
  }

  function start() {
    setup();
    document.querySelectorAll("[data-tz-name]").forEach(function (el) { el.textContent = zone; });
    document.querySelectorAll("input[data-tz-field]").forEach(function (el) {
      if (!el.value) { el.value = zone; }
    });
    document.querySelectorAll("li.entry").forEach(function (li) {
      li.setAttribute("data-seen", "1");
    });
    localize(document);
  }

  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail.target || document;
    target.querySelectorAll("li.entry:not([data-seen])").forEach(function (li) {
      li.setAttribute("data-seen", "1");
      li.classList.add("new");
    });
    localize(target);
  });
  document.addEventListener("htmx:afterSettle", function () { localize(document); });
})();
