/* Charts page: pick a series, a granularity and a time range; draw averages with a
   min-max band (uPlot). State lives in the query string, so a chart can be bookmarked:
   /charts?name=cpu&labels={"host":"web-1"}&g=hour&range=7d   (or &from=...&to=... ISO). */
(function () {
  "use strict";
  const RANGES = { "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000,
                   "90d": 7776000, "365d": 31536000 };
  const $ = (id) => document.getElementById(id);
  let plot = null;
  let lastData = null;
  let state = { name: "", labels: "", g: "auto", range: "24h", from: "", to: "" };

  function readUrl() {
    const p = new URLSearchParams(location.search);
    state.name = p.get("name") || "";
    state.labels = p.get("labels") || "";
    state.g = p.get("g") || "auto";
    state.from = p.get("from") || "";
    state.to = p.get("to") || "";
    state.range = state.from && state.to ? "" : (p.get("range") || "24h");
  }

  function writeUrl() {
    const p = new URLSearchParams();
    if (state.name) p.set("name", state.name);
    if (state.labels) p.set("labels", state.labels);
    if (state.g !== "auto") p.set("g", state.g);
    if (state.range) p.set("range", state.range);
    else { p.set("from", state.from); p.set("to", state.to); }
    history.replaceState(null, "", "/charts?" + p.toString());
  }

  function labelText(labels) {
    const keys = Object.keys(labels || {}).sort();
    return keys.length ? " {" + keys.map((k) => k + "=" + labels[k]).join(", ") + "}" : "";
  }

  function optionValue(name, labels) {
    return JSON.stringify({ name: name, labels: labels === null ? null : labels });
  }

  function addOption(select, name, labels, text) {
    const opt = document.createElement("option");
    opt.value = optionValue(name, labels);
    opt.textContent = text;
    select.appendChild(opt);
    return opt;
  }

  async function search(q) {
    const r = await fetch("/charts/series?q=" + encodeURIComponent(q), { credentials: "same-origin" });
    if (!r.ok) { status("Search failed: HTTP " + r.status); return; }
    const rows = await r.json();
    const select = $("series");
    const keep = select.value;
    select.textContent = "";
    addOption(select, "", null, rows.length ? "(pick a series)" : "(no series match)").value = "";
    const perName = {};
    rows.forEach((s) => { perName[s.name] = (perName[s.name] || 0) + 1; });
    let prev = null;
    rows.forEach((s) => {
      if (s.name !== prev && perName[s.name] > 1) {
        addOption(select, s.name, null, s.name + " (all " + perName[s.name] + " label sets)");
      }
      prev = s.name;
      addOption(select, s.name, s.labels, s.name + labelText(s.labels));
    });
    if (keep) select.value = keep;
    ensureSelected();
  }

  function ensureSelected() {
    if (!state.name) return;
    const select = $("series");
    const labels = state.labels ? JSON.parse(state.labels) : null;
    const value = optionValue(state.name, labels);
    if (![...select.options].some((o) => o.value === value)) {
      addOption(select, state.name, labels,
                state.name + (labels ? labelText(labels) : " (all label sets)"));
    }
    select.value = value;
  }

  function status(text) { $("chart-status").textContent = text; }

  function isoMinute(seconds) { return new Date(seconds * 1000).toISOString().slice(0, 16); }

  function window_() {
    if (state.range) {
      const to = Date.now() / 1000;
      return [to - RANGES[state.range], to];
    }
    return [Date.parse(state.from) / 1000, Date.parse(state.to) / 1000];
  }

  function granularity(span) {
    if (state.g !== "auto") return state.g;
    if (span <= 2 * 86400) return "minute";
    if (span <= 120 * 86400) return "hour";
    return "day";
  }

  function exact(v) {
    if (v === null || v === undefined) return "–";
    return String(Number(v.toPrecision(12)));
  }

  function colors() {
    const css = getComputedStyle(document.documentElement);
    const get = (name) => css.getPropertyValue(name).trim();
    return { fg: get("--fg"), muted: get("--muted"), line: get("--line"), accent: get("--accent") };
  }

  function draw(data) {
    const el = $("chart");
    const c = colors();
    if (plot) { plot.destroy(); plot = null; }
    el.textContent = "";
    if (!data || !data.t.length) { status("No points in this range."); return; }
    const axis = { stroke: c.muted, grid: { stroke: c.line, width: 1 }, ticks: { stroke: c.line } };
    const opts = {
      width: Math.max(300, el.clientWidth - 16),
      height: 400,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true } },
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: "UTC", value: (u, v) => (v === null ? "–" : new Date(v * 1000).toISOString().replace(".000Z", "Z")) },
        { label: "avg", stroke: c.accent, width: 2, value: (u, v) => exact(v), points: { show: data.t.length < 200 } },
        { label: "min", stroke: c.muted, width: 1, dash: [4, 4], value: (u, v) => exact(v) },
        { label: "max", stroke: c.muted, width: 1, dash: [4, 4], value: (u, v) => exact(v) },
        { label: "points", show: false, scale: "n", value: (u, v) => (v === null ? "–" : String(v)) },
      ],
      bands: [{ series: [3, 2], fill: c.accent + "33" }],
      axes: [axis, Object.assign({ size: 70 }, axis)],
      hooks: { setSelect: [(u) => {
        if (u.select.width < 5) return;
        const lo = u.posToVal(u.select.left, "x");
        const hi = u.posToVal(u.select.left + u.select.width, "x");
        state.range = ""; state.from = new Date(lo * 1000).toISOString();
        state.to = new Date(hi * 1000).toISOString();
        load();
      }] },
    };
    plot = new uPlot(opts, [data.t, data.avg, data.min, data.max, data.n], el);
    const total = data.n.reduce((a, b) => a + b, 0);
    status(data.name + labelText(data.labels) + ": " + data.t.length + " " + data.granularity
           + " buckets, " + total + " points. Drag across the chart to zoom.");
  }

  async function load() {
    writeUrl();
    syncControls();
    if (!state.name) { status("Pick a series."); return; }
    const [from, to] = window_();
    if (!(from < to)) { status("From must be before To."); return; }
    const g = granularity(to - from);
    const p = new URLSearchParams({ name: state.name, granularity: g,
      from: new Date(from * 1000).toISOString(), to: new Date(to * 1000).toISOString() });
    if (state.labels) p.set("labels", state.labels);
    status("Loading…");
    const r = await fetch("/charts/data?" + p.toString(), { credentials: "same-origin" });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) { draw(null); status(body.message || ("HTTP " + r.status)); return; }
    lastData = body;
    draw(body);
  }

  function syncControls() {
    $("granularity").value = state.g;
    const [from, to] = window_();
    $("from").value = isoMinute(from);
    $("to").value = isoMinute(to);
    document.querySelectorAll(".preset").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
    });
  }

  function init() {
    readUrl();
    let timer = null;
    $("series-q").addEventListener("input", (e) => {
      clearTimeout(timer);
      timer = setTimeout(() => search(e.target.value), 250);
    });
    $("series").addEventListener("change", (e) => {
      if (!e.target.value) return;
      const v = JSON.parse(e.target.value);
      state.name = v.name;
      state.labels = v.labels === null ? "" : JSON.stringify(v.labels);
      load();
    });
    $("granularity").addEventListener("change", (e) => { state.g = e.target.value; load(); });
    document.querySelectorAll(".preset").forEach((b) => b.addEventListener("click", () => {
      state.range = b.dataset.range; load();
    }));
    $("chart-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.range = "";
      state.from = $("from").value + ":00Z";
      state.to = $("to").value + ":00Z";
      load();
    });
    window.addEventListener("resize", () => {
      if (plot) plot.setSize({ width: Math.max(300, $("chart").clientWidth - 16), height: 400 });
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => draw(lastData));
    search("").then(load);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
