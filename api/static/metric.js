/* A metric's page: times in the viewer's time zone (24-hour; the exact UTC time stays in
   the title), and the chart of its reports (uPlot): values, or for ping metrics the minutes
   between pings, the minutes each ping allowed and the current deadline on the time axis.
   The data comes with the page (data-chart); no inline script: the CSP forbids it. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  // The viewer's zone: the one the page names (<meta name="vigil-tz">, the user's setting),
  // else the browser's; the same rule as vigil.js.
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
  const parts = (opts) => new Intl.DateTimeFormat("en-GB", Object.assign({ hourCycle: "h23", timeZone: zone }, opts));
  const full = parts({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
                       minute: "2-digit", second: "2-digit", timeZoneName: "short" });
  const dayFmt = parts({ month: "short", day: "numeric" });
  const hourFmt = parts({ hour: "2-digit", minute: "2-digit" });

  // 2026-11-30 10:00:00 GMT+1: sortable, the zone always shown
  function show(when) {
    const p = {};
    full.formatToParts(when).forEach((part) => { p[part.type] = part.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second +
      " " + p.timeZoneName;
  }

  function localize() {
    document.querySelectorAll("time[datetime]:not([data-local])").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      el.textContent = show(when);
      el.setAttribute("data-local", zone);
    });
  }

  function colors() {
    const css = getComputedStyle(document.documentElement);
    const get = (name) => css.getPropertyValue(name).trim();
    return { fg: get("--fg"), muted: get("--muted"), line: get("--line"), accent: get("--accent"),
             alert: get("--alert") };
  }

  function exact(v) {
    return v === null || v === undefined ? "–" : String(Number(v.toPrecision(12)));
  }

  function tick(span) {
    return (u, splits) => splits.map((s) => {
      const d = new Date(s * 1000);
      if (span > 3 * 86400) return dayFmt.format(d);
      return hourFmt.format(d);
    });
  }

  let plot = null;

  function draw() {
    const el = $("metric-chart");
    if (!el || typeof uPlot === "undefined") return;
    const data = JSON.parse(el.dataset.chart);
    if (plot) { plot.destroy(); plot = null; }
    el.textContent = "";
    if (!data.t.length) { el.classList.add("empty"); return; }
    const c = colors();
    const ping = data.kind === "deadline";
    const span = Math.max(data.to, data.deadline || 0) - data.from;
    const axis = { stroke: c.muted, grid: { stroke: c.line, width: 1 }, ticks: { stroke: c.line } };
    const series = [{ label: "Time", value: (u, v) => (v === null ? "–" : show(new Date(v * 1000))) }];
    let columns;
    if (ping) {
      series.push({ label: "gap (min)", stroke: c.accent, width: 0, value: (u, v) => exact(v),
                    points: { show: true, size: 6, fill: c.accent } });
      series.push({ label: "allowed (min)", stroke: c.muted, width: 1, dash: [4, 4],
                    value: (u, v) => exact(v), paths: uPlot.paths.stepped({ align: -1 }) });
      series.push({ label: "missed", stroke: c.alert, width: 0, value: (u, v) => exact(v),
                    points: { show: true, size: 9, fill: c.alert } });
      const missed = data.gap.map((g, i) => (g !== null && data.allowed[i] !== null && g > data.allowed[i] ? g : null));
      columns = [data.t, data.gap, data.allowed, missed];
    } else {
      series.push({ label: "value", stroke: c.accent, width: 2, value: (u, v) => exact(v),
                    points: { show: data.t.length < 200 } });
      columns = [data.t, data.v];
    }
    const height = el.clientWidth < 500 ? 220 : 300;
    const opts = {
      width: Math.max(200, el.clientWidth - 2),
      height: height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone),  // ticks on the zone's hours
      scales: {
        x: { time: true, range: () => [data.from, Math.max(data.to, data.deadline || 0)] },
        y: { range: (u, lo, hi) => [ping || lo >= 0 ? 0 : lo, hi > 0 ? hi * 1.1 : 1] },
      },
      cursor: { drag: { x: false, y: false } },
      series: series,
      axes: [Object.assign({ values: tick(span), space: 60 }, axis), Object.assign({ size: 50 }, axis)],
      hooks: { draw: [(u) => {
        if (!data.deadline) return;
        const x = Math.round(u.valToPos(data.deadline, "x", true));
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = c.alert;
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.fillStyle = c.alert;
        ctx.font = (11 * devicePixelRatio) + "px sans-serif";
        ctx.textAlign = x > u.bbox.left + u.bbox.width / 2 ? "right" : "left";
        const pad = (ctx.textAlign === "right" ? -4 : 4) * devicePixelRatio;
        ctx.fillText("deadline " + hourFmt.format(new Date(data.deadline * 1000)), x + pad,
                     u.bbox.top + 12 * devicePixelRatio);
        ctx.restore();
      }] },
    };
    plot = new uPlot(opts, columns, el);
    el.dataset.drawn = String(data.t.length);
  }

  function start() {
    localize();
    draw();
    let width = window.innerWidth;
    window.addEventListener("resize", () => {
      if (window.innerWidth !== width) { width = window.innerWidth; draw(); }
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
