/* Charts page: pick a series (one label set, or every label set of a name overlaid, at most
   MAX_SERIES), a granularity and a time range; draw averages (uPlot), with a min-max band
   when one label set is shown. Times (inputs, axis, legend) are in the viewer's time zone,
   24-hour unless the locale says otherwise; hovering or tapping shows the UTC time and the
   exact values under the chart. State lives in the query string, so a chart can be
   bookmarked: /charts?name=cpu&labels={"host":"web-1"}&g=hour&range=7d (or &from=&to= ISO). */
(function () {
  "use strict";
  const RANGES = { "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000,
                   "90d": 7776000, "365d": 31536000 };
  const MAX_SERIES = 8;
  const $ = (id) => document.getElementById(id);
  const touch = window.matchMedia("(pointer: coarse)").matches;
  // The viewer's zone: the one the page names (<meta name="vigil-tz">, a per-user choice),
  // else the browser's; the same rule as the other pages' times (vigil.js).
  let zone = "UTC";
  try {
    const meta = document.querySelector('meta[name="vigil-tz"]');
    const chosen = meta ? meta.getAttribute("content") : "";
    if (chosen) {
      new Intl.DateTimeFormat("en", { timeZone: chosen });  // throws on an unknown zone
      zone = chosen;
    } else {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    }
  } catch (e) { /* UTC */ }
  const locale = navigator.language || "en-GB";
  // 24-hour unless the locale's own clock is 12-hour (en-US, en-IN...).
  const hour12 = ["h11", "h12"].includes(
    new Intl.DateTimeFormat(locale, { hour: "numeric" }).resolvedOptions().hourCycle);
  const cycle = hour12 ? "h12" : "h23";
  const fmt = (opts) => new Intl.DateTimeFormat(locale, Object.assign({ timeZone: zone, hourCycle: cycle }, opts));
  const timeFmt = fmt({ hour: "2-digit", minute: "2-digit" });
  const dayFmt = fmt({ month: "short", day: "numeric" });
  const dayTimeFmt = fmt({ month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const fullParts = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", timeZoneName: "short" });
  let plot = null;
  let lastData = null;
  let known = {};   // name -> [{labels, last}] from the latest search
  let state = { name: "", labels: "", g: "auto", range: "24h", from: "", to: "" };

  // --- time in the viewer's zone ---

  function zoned(seconds) {
    const p = {};
    fullParts.formatToParts(new Date(seconds * 1000)).forEach((x) => { p[x.type] = x.value; });
    return p;
  }

  // 2026-11-30 15:45 GMT+5:45 (the zone always shown; 12-hour only where the locale wants it)
  function localText(seconds) {
    const p = zoned(seconds);
    return p.year + "-" + p.month + "-" + p.day + " " + timeFmt.format(new Date(seconds * 1000)) +
      " " + p.timeZoneName;
  }

  function utcText(seconds) {
    return new Date(seconds * 1000).toISOString().replace(".000Z", "Z").replace("T", " ");
  }

  // Seconds -> the value of a datetime-local input, in the viewer's zone.
  function inputValue(seconds) {
    const p = zoned(seconds);
    return p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute;
  }

  // A datetime-local value read in the viewer's zone -> seconds (offset found by iterating,
  // right across daylight-saving changes).
  function fromInput(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    if (!m) return NaN;
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]) / 1000;
    let guess = wall;
    for (let i = 0; i < 3; i++) {
      const p = zoned(guess);
      const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute) / 1000;
      guess += wall - shown;
    }
    return guess;
  }

  function axisValues(u, splits) {
    const span = u.scales.x.max - u.scales.x.min;
    return splits.map((s) => {
      const d = new Date(s * 1000);
      if (span <= 36 * 3600) return timeFmt.format(d);
      if (span <= 8 * 86400) {
        const p = zoned(s);
        return p.hour === "00" && p.minute === "00" ? dayFmt.format(d) : dayTimeFmt.format(d);
      }
      return dayFmt.format(d);
    });
  }

  // --- numbers: rounded, with units where the name says which ---

  function unitOf(name) {
    const n = name.toLowerCase();
    if (/(percent|pct|utili[sz]ation)/.test(n)) return "%";
    if (/(^|[_.])bytes?($|[_.])|_bytes_total$/.test(n)) return "B";
    if (/(^|[_.])(seconds?|secs?)($|[_.])/.test(n)) return "s";
    if (/(^|[_.])(ms|milliseconds?)($|[_.])/.test(n)) return "ms";
    return "";
  }

  const numberFmt = (digits) => new Intl.NumberFormat(locale, { maximumFractionDigits: digits });

  function rounded(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    if (unit === "B") {
      const steps = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
      let i = 0;
      let x = Math.abs(v);
      while (x >= 1024 && i < steps.length - 1) { x /= 1024; i++; }
      return (v < 0 ? "-" : "") + numberFmt(x >= 100 || i === 0 ? 0 : 1).format(x) + " " + steps[i];
    }
    const a = Math.abs(v);
    const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a === 0 ? 0 : Math.min(6, 2 - Math.floor(Math.log10(a)));
    return numberFmt(digits).format(v) + (unit ? (unit === "%" ? " %" : " " + unit) : "");
  }

  function exact(v) {
    return v === null || v === undefined ? "–" : String(Number(v.toPrecision(12)));
  }

  // --- URL state ---

  function readUrl() {
    const p = new URLSearchParams(location.search);
    state.name = p.get("name") || "";
    state.labels = p.get("labels") || "";
    state.g = p.get("g") || "auto";
    state.from = p.get("from") || "";
    state.to = p.get("to") || "";
    state.range = state.from && state.to ? "" : (p.get("range") || "24h");
    if (state.range && !RANGES[state.range]) state.range = "24h";
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
    return keys.map((k) => k + "=" + labels[k]).join(", ");
  }

  function seriesText(name, labels) {
    const t = labelText(labels);
    return t ? name + " {" + t + "}" : name;
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

  async function getJson(url) {
    const r = await fetch(url, { credentials: "same-origin" });
    const body = await r.json().catch(() => ({}));
    return { ok: r.ok, status: r.status, body: body };
  }

  async function search(q) {
    const r = await getJson("/charts/series?q=" + encodeURIComponent(q));
    if (!r.ok) { status("Search failed: HTTP " + r.status); return null; }
    const rows = r.body;
    const select = $("series");
    const keep = select.value;
    select.textContent = "";
    addOption(select, "", null, rows.length ? "(pick a series)" : "(no series match)").value = "";
    known = {};
    rows.forEach((s) => { (known[s.name] = known[s.name] || []).push(s); });
    let prev = null;
    rows.forEach((s) => {
      const n = known[s.name].length;
      if (s.name !== prev && n > 1) {
        addOption(select, s.name, null, s.name + " (" + (n > MAX_SERIES ? "first " + MAX_SERIES + " of " + n
                  : n === 2 ? "both" : "all " + n) + " label sets)");
      }
      prev = s.name;
      addOption(select, s.name, s.labels, seriesText(s.name, s.labels));
    });
    if (keep) select.value = keep;
    ensureSelected();
    return rows;
  }

  function ensureSelected() {
    if (!state.name) return;
    const select = $("series");
    const labels = state.labels ? JSON.parse(state.labels) : null;
    const value = optionValue(state.name, labels);
    if (![...select.options].some((o) => o.value === value)) {
      addOption(select, state.name, labels, labels ? seriesText(state.name, labels) : state.name + " (all label sets)");
    }
    select.value = value;
  }

  function status(text) { $("chart-status").textContent = text; }

  function note(text) {
    const el = $("chart-note");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function window_() {
    if (state.range) {
      const to = Math.floor(Date.now() / 1000);
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

  function colors() {
    const css = getComputedStyle(document.documentElement);
    const get = (name) => css.getPropertyValue(name).trim();
    const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    // Eight hues that stay apart for common colour blindness (Okabe-Ito based).
    const palette = dark
      ? ["#7aa7ff", "#f0a35e", "#56d364", "#ff7bb0", "#e3d25a", "#5ed3e0", "#c79bff", "#d0d4d8"]
      : ["#1d5fd1", "#c8620a", "#1a7f37", "#c2185b", "#8a7400", "#00838f", "#6a3fb5", "#4a5560"];
    return { fg: get("--fg"), muted: get("--muted"), line: get("--line"), accent: get("--accent"), palette: palette };
  }

  function chartSize() {
    const el = $("chart");
    const width = Math.max(200, el.clientWidth - 2);
    return { width: width, height: width < 600 ? 260 : 400 };
  }

  // Every label set's buckets on one time axis (missing buckets: gaps).
  function merge(parts) {
    const times = [...new Set([].concat(...parts.map((p) => p.t)))].sort((a, b) => a - b);
    const at = new Map(times.map((t, i) => [t, i]));
    const cols = parts.map((p) => {
      const col = new Array(times.length).fill(null);
      p.t.forEach((t, i) => { col[at.get(t)] = p.avg[i]; });
      return col;
    });
    return { t: times, cols: cols, n: parts.map((p) => p.n.reduce((a, b) => a + b, 0)) };
  }

  function showEmpty(text, action) {
    $("chart").hidden = true;
    $("chart-hover").textContent = "";
    $("chart-empty").hidden = false;
    $("chart-empty-text").textContent = text;
    const btn = $("chart-empty-action");
    btn.hidden = !action;
    if (action) { btn.textContent = action.text; btn.onclick = action.run; }
  }

  function hover(u, data) {
    const i = u.cursor.idx;
    const el = $("chart-hover");
    if (i === null || i === undefined) { el.textContent = ""; return; }
    const t = u.data[0][i];
    const values = data.shown.map((s, k) => {
      const v = u.data[k + 1][i];
      return (data.shown.length > 1 ? s.text : data.single[k]) + " " + exact(v);
    });
    el.textContent = localText(t) + " = " + utcText(t) + " UTC · " + values.join(" · ");
    el.title = "exact values of the bucket starting at " + utcText(t) + " UTC";
  }

  function draw(data) {
    const el = $("chart");
    if (plot) { plot.destroy(); plot = null; }
    el.textContent = "";
    el.removeAttribute("data-series");
    if (!data) return;
    const c = colors();
    const unit = unitOf(data.name);
    const axis = { stroke: c.muted, grid: { stroke: c.line, width: 1 }, ticks: { stroke: c.line } };
    $("chart-empty").hidden = true;
    el.hidden = false;  // before measuring: a hidden box has no width
    const size = chartSize();
    const series = [{ label: "Time", value: (u, v) => (v === null ? "–" : localText(v)) }];
    let columns;
    if (data.shown.length === 1) {
      const p = data.parts[0];
      series.push({ label: "avg", stroke: c.accent, width: 2, value: (u, v) => rounded(v, unit),
                    points: { show: p.t.length < 200 } });
      series.push({ label: "min", stroke: c.muted, width: 1, dash: [4, 4], value: (u, v) => rounded(v, unit) });
      series.push({ label: "max", stroke: c.muted, width: 1, dash: [4, 4], value: (u, v) => rounded(v, unit) });
      columns = [p.t, p.avg, p.min, p.max];
      data.single = ["avg", "min", "max"];
    } else {
      const m = merge(data.parts);
      data.shown.forEach((s, k) => {
        series.push({ label: s.text, stroke: c.palette[k % c.palette.length], width: 2,
                      value: (u, v) => rounded(v, unit), points: { show: m.t.length < 100 } });
      });
      columns = [m.t].concat(m.cols);
    }
    const opts = {
      width: size.width,
      height: size.height,
      padding: [12, 36, 0, 0],  // room for the last time label
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone),  // ticks on the zone's hours
      scales: { x: { time: true, range: () => [data.from, data.to] } },
      cursor: { drag: { x: !touch, y: false }, points: { size: touch ? 10 : 7 } },
      legend: { live: true },
      series: series,
      bands: data.shown.length === 1 ? [{ series: [3, 2], fill: c.accent + "33" }] : [],
      axes: [Object.assign({ values: axisValues, space: 70 }, axis),
             Object.assign({ size: 76, values: (u, splits) => splits.map((v) => rounded(v, unit)) }, axis)],
      hooks: {
        setCursor: [(u) => hover(u, data)],
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const lo = u.posToVal(u.select.left, "x");
          const hi = u.posToVal(u.select.left + u.select.width, "x");
          state.range = ""; state.from = new Date(lo * 1000).toISOString();
          state.to = new Date(hi * 1000).toISOString();
          load();
        }],
      },
    };
    plot = new uPlot(opts, columns, el);
    el.dataset.series = String(data.shown.length);
    const buckets = columns[0].length;
    const total = data.parts.reduce((a, p) => a + p.n.reduce((x, y) => x + y, 0), 0);
    const what = data.shown.length === 1 ? seriesText(data.name, data.shown[0].labels)
      : data.name + ", " + data.shown.length + " label sets";
    const hint = touch
      ? "Tap the chart to read values; change the range with the presets or From/To."
      : "Drag across the chart to zoom in; the presets zoom out.";
    const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");
    status(what + ": " + plural(buckets, data.granularity + " bucket") + ", " + plural(total, "point") + ". " + hint);
  }

  // The label sets to draw: the one picked, or up to MAX_SERIES of the name.
  async function labelSets() {
    if (state.labels) return { sets: [JSON.parse(state.labels)], total: 1 };
    const r = await getJson("/charts/series?q=" + encodeURIComponent(state.name));
    const rows = r.ok ? r.body.filter((s) => s.name === state.name) : [];
    known[state.name] = rows;
    if (!rows.length) return { sets: [null], total: 1 };
    const hidden = rows[MAX_SERIES] ? labelText(rows[MAX_SERIES].labels).split(", ")[0] : "";
    return { sets: rows.slice(0, MAX_SERIES).map((s) => s.labels), total: rows.length, example: hidden };
  }

  async function load() {
    writeUrl();
    syncControls();
    note("");
    if (!state.name) { draw(null); return; }
    const [from, to] = window_();
    if (!(from < to)) { draw(null); showEmpty("From must be before To."); status("From must be before To."); return; }
    const g = granularity(to - from);
    status("Loading…");
    const picked = await labelSets();
    const replies = await Promise.all(picked.sets.map((labels) => {
      const p = new URLSearchParams({ name: state.name, granularity: g,
        from: new Date(from * 1000).toISOString(), to: new Date(to * 1000).toISOString() });
      if (labels !== null) p.set("labels", JSON.stringify(labels));
      return getJson("/charts/data?" + p.toString());
    }));
    const failed = replies.find((r) => !r.ok);
    if (failed) {
      draw(null);
      const why = failed.body.message || ("HTTP " + failed.status);
      showEmpty(why);
      status(why);
      return;
    }
    const data = { name: state.name, granularity: g, from: from, to: to, parts: replies.map((r) => r.body),
                   shown: picked.sets.map((l) => ({ labels: l, text: labelText(l) || state.name })) };
    if (picked.total > picked.sets.length) {
      note("Showing the first " + picked.sets.length + " of " + (picked.total >= 100 ? "100 or more" : picked.total) +
           " label sets of " + state.name + ". Pick one label set in Series, or narrow the search " +
           "(e.g. " + state.name + " " + picked.example + "), to see the others.");
    }
    lastData = data;
    if (!data.parts.some((p) => p.t.length)) { drawNothing(data, from, to); return; }
    draw(data);
  }

  function drawNothing(data, from, to) {
    draw(null);
    const rows = (known[state.name] || []).filter((s) => s.last);
    const last = rows.length ? Math.max(...rows.map((s) => Date.parse(s.last) / 1000)) : null;
    const what = seriesText(state.name, state.labels ? JSON.parse(state.labels) : null);
    status(what + ": no points in this range.");
    let action = null;
    if (last !== null && (last < from || last > to)) {
      action = { text: "Show the day before its newest point", run: () => {
        state.range = "";
        state.from = new Date((last - 86400) * 1000).toISOString();
        state.to = new Date((last + 60) * 1000).toISOString();
        load();
      } };
    }
    showEmpty("No points for " + what + " between " + localText(from) + " and " + localText(to) +
              (last !== null ? ". Its newest point is from " + localText(last) + "." : "."), action);
  }

  function syncControls() {
    $("granularity").value = state.g;
    const [from, to] = window_();
    if (isFinite(from)) $("from").value = inputValue(from);
    if (isFinite(to)) $("to").value = inputValue(to);
    document.querySelectorAll(".preset").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
    });
  }

  function init() {
    readUrl();
    const offset = zoned(Date.now() / 1000).timeZoneName;
    document.querySelectorAll(".zone-name").forEach((el) => { el.textContent = offset; el.title = zone; });
    document.querySelectorAll("#chart-first .origin").forEach((el) => { el.textContent = location.origin; });
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
      const from = fromInput($("from").value);
      const to = fromInput($("to").value);
      if (!isFinite(from) || !isFinite(to)) { status("From and To need a date and a time."); return; }
      state.range = "";
      state.from = new Date(from * 1000).toISOString();
      state.to = new Date(to * 1000).toISOString();
      load();
    });
    let width = window.innerWidth;
    window.addEventListener("resize", () => {
      if (window.innerWidth === width) return;
      width = window.innerWidth;
      if (plot) plot.setSize(chartSize());
    });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      if (lastData && plot) draw(lastData);
    });
    if (state.name && !state.labels) $("series-q").value = state.name;
    search(state.name && !state.labels ? state.name : "").then((rows) => {
      if (!state.name) {
        if (rows && rows.length === 0) {
          showEmpty("");
          $("chart-empty-text").hidden = true;
          $("chart-first").hidden = false;
          status("No metrics yet.");
        } else {
          showEmpty("Pick a series above: search by name or label, then choose one label set or all of them.");
          status("Pick a series.");
        }
        syncControls();
        return;
      }
      load();
    });
  }

  // Shared with the other pages that draw time charts (requests-overview.js): the viewer's
  // zone, time and number formats and the chart colours. The charts page itself starts below.
  window.vigilCharts = { zone: zone, localText: localText, utcText: utcText,
                         inputValue: inputValue, fromInput: fromInput, axisValues: axisValues,
                         rounded: rounded, exact: exact, colors: colors, touch: touch };
  if (!$("chart-form")) return;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
