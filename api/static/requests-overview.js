/* The Requests overview (templates/requests/overview.html): the traffic and error-rate charts
   (uPlot, with the charts page's time and number formats: window.vigilCharts from charts.js),
   and the From/To inputs shown in the viewer's zone. The data is the page's own JSON
   (<script type="application/json" id="overview-chart">): buckets of the chosen range. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const plots = [];

  function fillInputs(vc) {
    // A preset shows its window in From/To, in the viewer's zone (the zone the form sends).
    const form = $("overview-filters");
    if (!form || !form.dataset.start) return;
    const start = form.querySelector("input[name=start]");
    const end = form.querySelector("input[name=end]");
    if (!start.value) start.value = vc.inputValue(Date.parse(form.dataset.start) / 1000);
    if (!end.value) end.value = vc.inputValue(Date.parse(form.dataset.end) / 1000);
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function hover(vc, data, i) {
    const el = $("overview-hover");
    if (i === null || i === undefined) { el.textContent = ""; return; }
    const t = data.t[i];
    const n = data.n[i];
    el.textContent = vc.localText(t) + " = " + vc.utcText(t) + " UTC · " + n + " request" +
      (n === 1 ? "" : "s") + " (" + vc.rounded(data.rpm[i], "") + " per minute) · 5xx " +
      data.s5xx[i] + (n ? " (" + vc.rounded(data.e5[i], "%") + ")" : "") + " · 4xx " +
      data.s4xx[i] + (n ? " (" + vc.rounded(data.e4[i], "%") + ")" : "");
  }

  // Drag across a chart: the same page for the selected range (From/To in the viewer's zone).
  function zoom(vc, u) {
    if (u.select.width < 5) return;
    const lo = u.posToVal(u.select.left, "x");
    const hi = u.posToVal(u.select.left + u.select.width, "x");
    const form = $("overview-filters");
    form.querySelector("input[name=start]").value = vc.inputValue(Math.floor(lo / 60) * 60);
    form.querySelector("input[name=end]").value = vc.inputValue(Math.ceil(hi / 60) * 60);
    form.submit();
  }

  function size(el) {
    const width = Math.max(200, el.clientWidth - 2);
    return { width: width, height: width < 600 ? 180 : 220 };
  }

  function chart(vc, el, data, series, columns, unit) {
    const c = vc.colors();
    const axis = { stroke: c.muted, grid: { stroke: c.line, width: 1 }, ticks: { stroke: c.line } };
    const s = size(el);
    const opts = {
      width: s.width,
      height: s.height,
      padding: [10, 28, 0, 0],
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), vc.zone),
      scales: { x: { time: true, range: () => [data.from, data.to] }, y: { range: (u, lo, hi) => [0, Math.max(hi || 0, 1) * 1.1] } },
      cursor: { drag: { x: !vc.touch, y: false }, points: { size: vc.touch ? 10 : 7 } },
      legend: { show: true },
      series: [{ label: "Time", value: (u, v) => (v === null ? "–" : vc.localText(v)) }].concat(series),
      axes: [Object.assign({ values: vc.axisValues, space: 70 }, axis),
             Object.assign({ size: 64, values: (u, splits) => splits.map((v) => vc.rounded(v, unit)) }, axis)],
      hooks: {
        setCursor: [(u) => hover(vc, data, u.cursor.idx)],
        setSelect: [(u) => zoom(vc, u)],
      },
    };
    const plot = new uPlot(opts, columns, el);
    plots.push([plot, el]);
    return plot;
  }

  function draw(vc, data) {
    plots.splice(0).forEach(([p]) => p.destroy());
    const c = vc.colors();
    const alert = cssVar("--alert") || "#c62828";
    const warn = cssVar("--warn") || "#9a6700";
    const few = data.t.length < 100;
    chart(vc, $("traffic-chart"), data,
      [{ label: "requests/min", stroke: c.accent, fill: c.accent + "22", width: 2,
         value: (u, v) => vc.rounded(v, ""), points: { show: few } }],
      [data.t, data.rpm], "");
    chart(vc, $("errors-chart"), data,
      [{ label: "5xx", stroke: alert, width: 2, value: (u, v) => vc.rounded(v, "%"), points: { show: few } },
       { label: "4xx", stroke: warn, width: 1.5, dash: [5, 4], value: (u, v) => vc.rounded(v, "%"),
         points: { show: few } }],
      [data.t, data.e5, data.e4], "%");
    $("traffic-chart").dataset.points = String(data.t.length);
  }

  function init() {
    const vc = window.vigilCharts;
    if (!vc) return;
    fillInputs(vc);
    const source = $("overview-chart");
    if (!source || typeof uPlot === "undefined") return;
    const data = JSON.parse(source.textContent);
    draw(vc, data);
    let width = window.innerWidth;
    window.addEventListener("resize", () => {
      if (window.innerWidth === width) return;
      width = window.innerWidth;
      plots.forEach(([p, el]) => p.setSize(size(el)));
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => draw(vc, data));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
