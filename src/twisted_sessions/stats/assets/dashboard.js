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
        td.textContent = index === 0 ? cell : number(cell);
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

async function refresh() {
  try {
    await Promise.all([overview(), breakdowns(), live()]);
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
  // The live figures, every 2 seconds (counts reach Redis within one).
  setInterval(() => live().catch(showError), 2000);
}

document.addEventListener("DOMContentLoaded", start);
