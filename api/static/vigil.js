// Vigil pages: the only script besides htmx (the CSP allows no inline scripts).
"use strict";

// Every HTMX request carries the session's CSRF token (from <meta name="csrf-token">).
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
  }
});

// Plain forms with data-confirm ask before submitting.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm) {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }
});

// Buttons with data-copy copy the text of the element whose id they name.
document.addEventListener("click", function (event) {
  var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  var source = document.getElementById(button.dataset.copy);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  }
});

// One clock: every <time datetime="..."> is shown in the viewer's zone (the browser's, or the
// zone named by <meta name="vigil-tz">), 24-hour unless the locale says otherwise, with the
// UTC time and the exact local timestamp with its offset on hover. Elements with data-rel
// keep their relative text ("3 min ago") and get the absolute times on hover only; those with
// data-exact show the exact local time with its offset (data-exact="ms": milliseconds). Journal
// times (data-local) are rendered by journal.js in the same zone.
window.vigilClock = (function () {
  var zone = "UTC";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* UTC */ }
  try {  // a zone this browser does not know keeps the browser's own
    var meta = document.querySelector('meta[name="vigil-tz"]');
    var chosen = meta ? meta.getAttribute("content") : "";
    if (chosen) {
      new Intl.DateTimeFormat("en", { timeZone: chosen });  // throws on an unknown zone
      zone = chosen;
    }
  } catch (e) { /* the browser's zone */ }
  var locale = navigator.language || "en-GB";
  var hour12 = false;
  try {
    hour12 = new Intl.DateTimeFormat(locale, { hour: "numeric" }).resolvedOptions().hour12 === true;
  } catch (e) { /* 24-hour */ }
  function parts(format, when) {
    var p = {};
    format.formatToParts(when).forEach(function (part) { p[part.type] = part.value; });
    return p;
  }
  var exact = new Intl.DateTimeFormat("en-GB", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZone: zone, timeZoneName: "longOffset"
  });
  var exactMs = new Intl.DateTimeFormat("en-GB", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", fractionalSecondDigits: 3, hourCycle: "h23", timeZone: zone,
    timeZoneName: "longOffset"
  });
  var utc = new Intl.DateTimeFormat("en-GB", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZone: "UTC"
  });
  var short = new Intl.DateTimeFormat(locale, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    hour12: hour12, timeZone: zone
  });
  // "+05:45" from "GMT+05:45" ("GMT" alone is UTC)
  function offset(p) {
    var name = (p.timeZoneName || "GMT").replace("GMT", "");
    return name || "+00:00";
  }
  // 2026-11-22 15:45:00 +05:45 (sortable, with the offset); with ms: 15:45:00.123 +05:45
  function exactText(when, ms) {
    var p = parts(ms ? exactMs : exact, when);
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second +
      (ms ? "." + p.fractionalSecond : "") + " " + offset(p);
  }
  function utcText(when) {
    var p = parts(utc, when);
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second +
      " UTC";
  }
  function title(when) { return utcText(when) + "\n" + exactText(when) + " (" + zone + ")"; }
  function render(root) {
    root.querySelectorAll("time[datetime]:not([data-local]):not([data-clock])").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      el.setAttribute("data-clock", "1");
      el.title = title(when);
      if (el.hasAttribute("data-exact")) {
        el.textContent = exactText(when, el.getAttribute("data-exact") === "ms");
      } else if (!el.hasAttribute("data-rel")) {
        el.textContent = short.format(when);
      }
    });
    root.querySelectorAll("[data-tz-name]").forEach(function (el) { el.textContent = zone; });
    // forms with a local time field send the zone it is read in
    root.querySelectorAll("input[data-tz-field]").forEach(function (el) {
      if (!el.value) el.value = zone;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { render(document); });
  document.addEventListener("htmx:afterSettle", function () { render(document); });
  return { zone: zone, exactText: exactText, utcText: utcText, title: title, render: render };
})();

// Buttons with data-toggle show or hide (class "open") the element whose id they name;
// used for filter forms that are collapsed on a phone.
document.addEventListener("click", function (event) {
  var button = event.target instanceof Element ? event.target.closest("[data-toggle]") : null;
  if (!button) return;
  var target = document.getElementById(button.dataset.toggle);
  if (!target) return;
  var open = target.classList.toggle("open");
  button.setAttribute("aria-expanded", open ? "true" : "false");
});
