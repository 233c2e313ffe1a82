/* A service's page (templates/uptime/service.html): its response times of the last 24 h
   (uPlot, like the charts page); failed checks in red. Data: the JSON in #chart-data. */
(function () {
  "use strict";
  let plot = null;

  function colors() {
    const css = getComputedStyle(document.documentElement);
    const get = (name) => css.getPropertyValue(name).trim();
    return { muted: get("--muted"), line: get("--line"), accent: get("--accent") };
  }

  function ms(v) { return v === null || v === undefined ? "–" : Math.round(v) + " ms"; }

  // Times in the viewer's zone (<meta name="vigil-tz">, the user's setting, else the
  // browser's; the same rule as vigil.js), 24-hour, like the incidents table below the chart.
  let zone = "UTC";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* UTC */ }
  try {  // a zone this browser does not know keeps the browser's own
    const meta = document.querySelector('meta[name="vigil-tz"]');
    const chosen = meta ? meta.getAttribute("content") : "";
    if (chosen) {
      new Intl.DateTimeFormat("en", { timeZone: chosen });  // throws on an unknown zone
      zone = chosen;
    }
  } catch (e) { /* the browser's zone */ }
  const fmt = new Intl.DateTimeFormat("en-GB", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZone: zone, timeZoneName: "short" });
  // 2026-11-22 15:45:00 GMT+5:45
  function local(ts) {
    const p = {};
    fmt.formatToParts(new Date(ts * 1000)).forEach((part) => { p[part.type] = part.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second +
      " " + p.timeZoneName;
  }

  function ticks(u, splits) {
    return splits.map((ts, i) => {
      const text = local(ts);
      const hm = text.slice(11, 16);
      return i === 0 || hm === "00:00" ? hm + "\n" + text.slice(0, 10) : hm;
    });
  }

  function width(el) { return Math.max(240, el.clientWidth - 16); }

  function draw() {
    const el = document.getElementById("chart");
    const data = JSON.parse(document.getElementById("chart-data").textContent);
    if (plot) { plot.destroy(); plot = null; }
    el.textContent = "";
    if (!data.t.length) {
      el.classList.add("empty");
      el.textContent = "No checks in the last 24 hours yet.";
      return;
    }
    const c = colors();
    const axis = { stroke: c.muted, grid: { stroke: c.line, width: 1 }, ticks: { stroke: c.line } };
    plot = new uPlot({
      width: width(el),
      height: 260,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone),  // ticks on the zone's hours
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(hi, 1) * 1.1] } },
      cursor: { drag: { x: false, y: false } },
      series: [
        { label: "Time", value: (u, v) => (v === null ? "–" : local(v)) },
        { label: "response", stroke: c.accent, width: 2, value: (u, v) => ms(v), spanGaps: false,
          points: { show: data.t.length < 200 } },
        { label: "failed", stroke: "#c62828", width: 0, value: (u, v) => ms(v),
          points: { show: true, size: 6, fill: "#c62828" } },
      ],
      axes: [Object.assign({ values: ticks }, axis), Object.assign({ size: 70, values: (u, vals) => vals.map((v) => v + " ms") }, axis)],
    }, [data.t, data.ms, data.failed], el);
  }

  function init() {
    draw();
    window.addEventListener("resize", () => {
      const el = document.getElementById("chart");
      if (plot) plot.setSize({ width: width(el), height: 260 });
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
