// The dashboard: a client of the documented JSON API of the stats tree, nothing else (no
// private endpoint, no other origin), so that what it shows and what curl shows agree.
// Plain modern JavaScript, no build step; uPlot (vendored, 1.6.32) draws the chart.
"use strict";

// Where the stats tree is: this page is its "dashboard/" child.
const BASE = location.pathname.replace(/\/dashboard\/?$/, "");
// Okabe-Ito colours (told apart by colour-blind readers), and a dash for the second series.
const REQUESTS_COLOUR = "#0072b2";
const VISITS_COLOUR = "#e69f00";
let chart = null;

async function api(path) {
  const response = await fetch(BASE + path, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`${path}: ${body.error || response.status}`);
  }
  return body;
}

function day(date) {
  return date.toISOString().slice(0, 10);
}

function number(value, digits = 0) {
  if (value === null || value === undefined) {
    return "–";
  }
  return value.toLocaleString("en", { maximumFractionDigits: digits });
}

function seconds(value) {
  if (value === null || value === undefined) {
    return "–";
  }
  return value < 90 ? `${number(value, 1)} s` : `${number(value / 60, 1)} min`;
}

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(
    ...rows.map((cells) => {
      const row = document.createElement("tr");
      cells.forEach((cell, index) => {
        const td = document.createElement(index === 0 ? "th" : "td");
        if (index === 0) {
          td.scope = "row";
        } else {
          td.className = "n";
        }
        td.textContent = index === 0 ? cell : number(cell, 3);
        row.append(td);
      });
      return row;
    }),
  );
}

function showError(error) {
  const box = document.getElementById("error");
  box.textContent = String(error.message || error);
  box.hidden = false;
}

async function overview() {
  const form = document.getElementById("range");
  const scale = form.scale.value;
  const query = `scale=${scale}&since=${form.since.value}&until=${form.until.value}`;
  const [requests, visits] = await Promise.all([
    api(`/metricas/requests/timeserie?${query}`),
    api(`/metricas/sessions/timeserie?${query}`).catch(() => null),
  ]);
  const times = requests.points.map((p) => Date.parse(p.start) / 1000);
  const requestCounts = requests.points.map((p) => p.count);
  const visitCounts = visits ? visits.points.map((p) => p.count) : times.map(() => null);
  fillTable(
    "series",
    requests.points.map((p, i) => [p.start.slice(0, scale === "hour" ? 13 : 10), p.count, visitCounts[i]]),
  );
  document.getElementById("error").hidden = true;
  const data = [times, requestCounts, visitCounts];
  const width = Math.max(document.getElementById("chart").clientWidth, 280);
  if (chart) {
    chart.destroy();
  }
  chart = new uPlot(
    {
      width,
      height: width < 500 ? 220 : 300,
      series: [
        {},
        { label: "requests", stroke: REQUESTS_COLOUR, width: 2 },
        { label: "visits", stroke: VISITS_COLOUR, width: 2, dash: [8, 4] },
      ],
      axes: [{}, { label: "count" }],
    },
    data,
    document.getElementById("chart"),
  );
  window.dashboard.series = { times, requests: requestCounts, visits: visitCounts };
}

async function breakdowns() {
  const [resources, statuses, sessions, perVisit] = await Promise.all([
    api("/metricas/requests/iterate?by=resource"),
    api("/metricas/requests/iterate?by=status"),
    api("/sessions"),
    api("/metricas/session_requests").catch(() => null),
  ]);
  const top = resources.items.filter((item) => item.count).sort((a, b) => b.count - a.count);
  fillTable("resources", top.slice(0, 10).map((item) => [item.key, item.count]));
  fillTable(
    "statuses",
    statuses.items.filter((item) => item.count).map((item) => [item.key, item.count]),
  );
  const today = sessions.finished.today || { count: null, average_length: null };
  document.getElementById("visits-today").textContent = number(today.count);
  document.getElementById("visit-length").textContent = seconds(today.average_length);
  document.getElementById("visit-requests").textContent = number(
    perVisit ? perVisit.average : null,
    1,
  );
}

async function live() {
  const [index, today] = await Promise.all([
    api(""),
    api(`/metricas/requests?timespan=${day(new Date())}`),
  ]);
  document.getElementById("visits-open").textContent = number(index.gauges.clustered_sessions);
  document.getElementById("requests-today").textContent = number(today.count);
  window.dashboard.requestsToday = today.count;
}

// -- the metrica explorer ------------------------------------------------------------------

let metricas = [];
let explorerChart = null;

function option(value, text = value) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = text;
  return element;
}

function explorerAxes() {
  const form = document.getElementById("explorer");
  const metrica = metricas.find((m) => m.name === form.metrica.value);
  form.by.replaceChildren(...metrica.axes.map((axis) => option(axis.name)));
  // A filter per axis with fixed choices; stored axes are filtered through "by".
  const filters = document.getElementById("explorer-filters");
  filters.replaceChildren(
    ...metrica.axes
      .filter((axis) => axis.choices && axis.choices.length)
      .map((axis) => {
        const label = document.createElement("label");
        label.textContent = axis.name;
        const select = document.createElement("select");
        select.name = `filter-${axis.name}`;
        select.append(option("", "any"), ...axis.choices.map((choice) => option(choice)));
        label.append(select);
        return label;
      }),
  );
}

async function explore() {
  const form = document.getElementById("explorer");
  const name = form.metrica.value;
  const params = new URLSearchParams({ by: form.by.value });
  if (form.timespan.value && form.timespan.value !== "all") {
    params.set("timespan", form.timespan.value);
  }
  for (const select of document.querySelectorAll("#explorer-filters select")) {
    const axis = select.name.slice("filter-".length);
    if (select.value && axis !== form.by.value) {
      params.set(axis, select.value);
    }
  }
  const answer = await api(`/metricas/${encodeURIComponent(name)}/iterate?${params}`);
  const measure = form.measure.value;
  const items = answer.items.filter((item) => item.count);
  fillTable(
    "explorer-table",
    items.map((item) => [String(item.key), item.count, item.total, item.average]),
  );
  const values = items.map((item) => item[measure] ?? 0);
  const width = Math.max(document.getElementById("explorer-chart").clientWidth, 280);
  if (explorerChart) {
    explorerChart.destroy();
  }
  // Bars at x = 0, 1, 2...: the axis shows each value's name.
  explorerChart = new uPlot(
    {
      width,
      height: 240,
      scales: { x: { time: false, range: [-0.5, Math.max(items.length - 0.5, 0.5)] } },
      series: [
        {},
        {
          label: measure,
          stroke: REQUESTS_COLOUR,
          fill: "rgba(0, 114, 178, 0.35)",
          paths: uPlot.paths.bars({ size: [0.6, 80] }),
          points: { show: false },
        },
      ],
      axes: [
        {
          splits: () => items.map((_, index) => index),
          values: (_, splits) => splits.map((index) => String(items[index]?.key ?? "")),
        },
        { label: measure },
      ],
    },
    [items.map((_, index) => index), values],
    document.getElementById("explorer-chart"),
  );
  window.dashboard.explorer = { metrica: name, query: params.toString(), measure, values };
}

async function explorerSetup() {
  const index = await api("");
  metricas = index.metricas.filter((m) => m.axes.length);
  const form = document.getElementById("explorer");
  form.metrica.replaceChildren(...metricas.map((m) => option(m.name)));
  form.metrica.addEventListener("change", () => {
    explorerAxes();
    explore().catch(showError);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    explore().catch(showError);
  });
  explorerAxes();
  await explore();
}

// -- activity and cohorts -------------------------------------------------------------------

let activityChart = null;

async function activity() {
  const form = document.getElementById("activity-form");
  const scale = form.scale.value;
  const until = new Date();
  const span = { day: 30, week: 7 * 12, month: 31 * 12 }[scale];
  const since = new Date(until.getTime() - span * 86400 * 1000);
  const query = new URLSearchParams({ scale, since: day(since), until: day(until) });
  const [users, cohort] = await Promise.all([
    api(`/activity/${encodeURIComponent(form.event.value)}?${query}`),
    api(
      `/cohort?${new URLSearchParams({
        primary: form.primary.value,
        secondary: form.secondary.value,
        time_group: form.time_group.value,
        rows: "8",
        cols: "8",
        percent: "true",
      })}`,
    ),
  ]);
  fillTable("activity-table", users.points.map((p) => [p.period, p.users]));
  const width = Math.max(document.getElementById("activity-chart").clientWidth, 280);
  if (activityChart) {
    activityChart.destroy();
  }
  activityChart = new uPlot(
    {
      width,
      height: 220,
      series: [{}, { label: "users", stroke: REQUESTS_COLOUR, width: 2 }],
      axes: [{}, { label: "distinct users" }],
    },
    [users.points.map((p) => Date.parse(p.start) / 1000), users.points.map((p) => p.users)],
    document.getElementById("activity-chart"),
  );
  heat(cohort);
  window.dashboard.activity = {
    query: `${form.event.value}?${query}`,
    users: users.points.map((p) => p.users),
    cohort: cohort.rows,
    totals: cohort.totals,
  };
}

function heat(cohort) {
  const head = document.querySelector("#cohort thead");
  const row = document.createElement("tr");
  row.append(
    ...["cohort", "users", ...cohort.rows[0].map((_, index) => `+${index}`)].map((text) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      return th;
    }),
  );
  head.replaceChildren(row);
  document.querySelector("#cohort tbody").replaceChildren(
    ...cohort.rows.map((cells, index) => {
      const tr = document.createElement("tr");
      const period = document.createElement("th");
      period.scope = "row";
      period.textContent = cohort.periods[index];
      const total = document.createElement("td");
      total.textContent = number(cohort.totals[index]);
      tr.append(period, total);
      for (const cell of cells) {
        const td = document.createElement("td");
        td.textContent = cell === null ? "" : `${number(cell, 1)}%`;
        if (cell !== null) {
          td.className = `h${Math.min(Math.floor(cell / 100 * 7), 6)}`;
        }
        tr.append(td);
      }
      return tr;
    }),
  );
}

async function activitySetup() {
  let events;
  try {
    events = (await api("/activity")).events;
  } catch (error) {
    document.getElementById("activity-off").hidden = false;
    document.getElementById("activity-form").hidden = true;
    return;
  }
  const form = document.getElementById("activity-form");
  if (!events.length) {
    events = ["active"];
  }
  const choose = (select, preferred) => {
    select.replaceChildren(...events.map((event) => option(event)));
    select.value = events.includes(preferred) ? preferred : events[0];
  };
  choose(form.event, "active");
  choose(form.primary, "session:started");
  choose(form.secondary, "active");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    activity().catch(showError);
  });
  await activity();
}

// -- the live feed --------------------------------------------------------------------------

function follow() {
  const state = document.getElementById("live-state");
  const pause = document.getElementById("pause");
  const body = document.querySelector("#feed tbody");
  let paused = false;
  let held = 0;
  window.dashboard.feed = 0;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    state.textContent = paused ? "paused" : "";
    held = 0;
  });
  const source = new EventSource(`${BASE}/stream/requests,visits`);
  source.onopen = () => {
    state.textContent = paused ? "paused" : "connected";
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      document.getElementById("live-off").hidden = false;
    }
  };
  source.onmessage = (message) => {
    window.dashboard.feed += 1;
    if (paused) {
      held += 1;
      state.textContent = `paused (${held} new)`;
      return;
    }
    const data = JSON.parse(message.data);
    const row = document.createElement("tr");
    const stream = data.meta.stream;
    const text =
      stream === "requests"
        ? `${data.method} ${data.resource} ${data.status} (${data.user})`
        : `${data.user}: ${data.requests} request(s), ${number(data.duration, 1)} s` +
          (data.feed ? ` (${data.feed})` : "");
    for (const value of [data.meta.dt.slice(11, 19), stream, text]) {
      const td = document.createElement("td");
      td.textContent = value;
      row.append(td);
    }
    body.prepend(row);
    while (body.rows.length > 50) {
      body.deleteRow(-1);
    }
  };
}

async function refresh() {
  try {
    await Promise.all([overview(), breakdowns(), live(), explorerSetup(), activitySetup()]);
    window.dashboard.ready = true;
  } catch (error) {
    showError(error);
  }
}

function start() {
  window.dashboard = { ready: false };
  const form = document.getElementById("range");
  const now = new Date();
  form.until.value = day(now);
  form.since.value = day(new Date(now.getTime() - 13 * 86400 * 1000));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    overview().catch(showError);
  });
  refresh();
  follow();
  // The live figures, every 2 seconds (counts reach Redis within one).
  setInterval(() => live().catch(showError), 2000);
}

document.addEventListener("DOMContentLoaded", start);
