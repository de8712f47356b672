// Jobline dashboard: plain JS, no build step. Every value from the API goes into the page as text
// (textContent), never as HTML. The token lives in sessionStorage (this tab only) and is sent as
// "Authorization: Bearer ..."; the operator checks it with TokenReview and each call with a
// SubjectAccessReview.
"use strict";

const REFRESH_MS = 5000;
const PAGE_SIZE = 25;
const MAX_SEARCH = 256; // as the search box's maxlength: a longer query would not fit in a request line
const TOKEN_KEY = "jobline.token";
const state = { auth: "token", namespace: "", phase: "", q: "", page: 1, pages: 1, detail: null,
                cleanup: null, timer: null, busy: false, again: false };
const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                              cache: "no-store", credentials: "omit" });
  } catch (e) {
    throw new ApiError(0, "cannot reach the operator: " + e.message);
  }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const msg = (data && data.error) || res.statusText || "request failed";
    if (res.status === 401 && state.auth === "token") showLogin(msg);
    throw new ApiError(res.status, msg);
  }
  return data;
}

function describe(err) {
  if (err.status === 403) return "Forbidden: " + err.message.replace(/^forbidden: /, "");
  return err.message;
}

function banner(text, kind) {
  const el = $("banner");
  if (!text) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = text;
  el.className = "banner" + (kind === "notice" ? " notice" : "");
  el.hidden = false;
}

function sectionError(id, err) {
  const el = $(id);
  if (!err) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = describe(err);
  el.hidden = false;
}

// --- formatting ------------------------------------------------------------------------------

function ago(ts) {
  if (!ts) return "—";
  const s = Math.round((Date.now() - Date.parse(ts)) / 1000);
  const a = Math.abs(s);
  const txt = a < 90 ? a + "s" : a < 5400 ? Math.round(a / 60) + "m" : a < 172800 ? Math.round(a / 3600) + "h"
    : Math.round(a / 86400) + "d";
  return s >= 0 ? txt + " ago" : "in " + txt;
}
function seconds(n) {
  if (n === null || n === undefined) return "—";
  return n < 90 ? n + "s" : n < 5400 ? Math.round(n / 60) + "m" : Math.round(n / 3600) + "h";
}
function when(ts) {
  return ts ? h("span", { class: "nowrap", title: new Date(ts).toLocaleString() }, ago(ts)) : "—";
}
function badge(text, cls) { return h("span", { class: "badge " + (cls || text) }, text); }
function progress(p) {
  if (p === null || p === undefined) return "—";
  const bar = h("div", { class: "progress", role: "progressbar", "aria-valuenow": p, "aria-valuemin": 0,
                         "aria-valuemax": 100, title: p + "%" }, h("span"));
  bar.firstChild.style.width = Math.max(0, Math.min(100, p)) + "%";
  return h("span", {}, bar, h("span", { class: "sub" }, p + "%"));
}
function cell(label, ...content) { return h("td", { "data-label": label }, h("div", { class: "cv" }, ...content)); }
function json(v) { return JSON.stringify(v, null, 2); }
function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) u.append(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}

// --- actions ---------------------------------------------------------------------------------

async function act(label, method, path, body, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return null;
  try {
    const out = await api(method, path, body);
    banner(label, "notice");
    await refresh();
    return out;
  } catch (err) {
    banner(describe(err));
    return null;
  }
}
const enc = encodeURIComponent;
function jobPath(j) { return "/api/jobs/" + enc(j.namespace) + "/" + enc(j.name); }

function retryJob(j) {
  return act("Requeued " + j.namespace + "/" + j.name, "POST", jobPath(j) + "/retry");
}
function cancelJob(j) {
  return act("Cancelled " + j.namespace + "/" + j.name, "POST", jobPath(j) + "/cancel", undefined,
             "Cancel job " + j.namespace + "/" + j.name + "? A running attempt is stopped; the job and its history stay.");
}
const FINISHED = ["Succeeded", "Failed", "Cancelled", "Superseded"];
function deleteJob(j) {
  return act("Deleted " + j.namespace + "/" + j.name, "DELETE", jobPath(j), undefined,
             "Delete job " + j.namespace + "/" + j.name + "? Its pods go with it.");
}

// --- rendering -------------------------------------------------------------------------------

const CARDS = [["pending", "Pending"], ["waiting", "Waiting"], ["running", "Running"],
               ["succeeded", "Completed"], ["failed", "Failed"], ["suspended", "Suspended"],
               ["cancelled", "Cancelled"]];

function renderStats(data) {
  const box = $("stats");
  box.replaceChildren(...CARDS.map(([key, label]) => {
    const phase = key.charAt(0).toUpperCase() + key.slice(1);
    return h("button", { type: "button", class: "stat " + key + (state.phase === phase ? " active" : ""),
                         "data-phase": phase, "aria-label": label + " jobs: " + data.totals[key],
                         onclick: () => setPhase(state.phase === phase ? "" : phase) },
             h("span", { class: "n", "data-count": key }, data.totals[key]), h("span", { class: "l" }, label));
  }));
  const body = $("queues").tBodies[0];
  const rows = data.queues.map((q) => h("tr", { "data-queue": q.namespace + "/" + q.queue },
    cell("Queue", h("span", { class: "name" }, q.queue),
         q.exists ? (q.concurrency ? h("span", { class: "sub" }, "concurrency " + q.concurrency) : null)
                  : h("span", { class: "sub" }, "no JobQueue (defaults)")),
    cell("Namespace", q.namespace), cell("Pending", q.pending), cell("Waiting", q.waiting),
    cell("Running", q.running), cell("Succeeded", q.succeeded), cell("Failed", q.failed),
    cell("Oldest pending", seconds(q.oldestPendingSeconds)),
    cell("State", q.exists ? (q.paused ? badge("paused", "off") : badge("active", "on")) : "—"),
    h("td", { class: "actions" }, q.exists ? h("button", { type: "button",
      onclick: () => act((q.paused ? "Resumed " : "Paused ") + q.namespace + "/" + q.queue, "POST",
                         "/api/queues/" + enc(q.namespace) + "/" + enc(q.queue) + (q.paused ? "/resume" : "/pause")) },
      q.paused ? "Resume" : "Pause") : null)));
  body.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 10 }, "No queues yet."))]));
}

function renderJobs(data) {
  state.pages = data.pages;
  const body = $("jobs").tBodies[0];
  const rows = data.items.map((j) => {
    const finished = FINISHED.includes(j.phase);
    let sub = j.waitingReason || j.failureReason || "";
    if (j.phase === "Pending" && j.position) sub = "#" + j.position + " in queue";
    if (j.deadLettered) sub = (sub ? sub + " · " : "") + "dead letter";
    return h("tr", { class: "clickable", "data-job": j.namespace + "/" + j.name, tabindex: 0,
                     onclick: (e) => { if (e.target.tagName !== "BUTTON") openDetail(j); },
                     onkeydown: (e) => { if (e.key === "Enter") openDetail(j); } },
      cell("Name", h("span", { class: "name" }, j.name), j.lastError ? h("span", { class: "sub" }, j.lastError.split("\n").filter(Boolean).pop()) : null),
      cell("Namespace", j.namespace), cell("Queue", j.queue), cell("Handler", j.handler),
      cell("Status", badge(j.phase), sub ? h("span", { class: "sub" }, sub) : null),
      cell("Attempts", j.attempts), cell("Progress", progress(j.progress)), cell("Created", when(j.createdAt)),
      h("td", { class: "actions" },
        finished && j.phase !== "Superseded" ? h("button", { type: "button", "data-action": "retry", onclick: () => retryJob(j) }, "Retry") : null,
        finished ? null : h("button", { type: "button", "data-action": "cancel", onclick: () => cancelJob(j) }, "Cancel"),
        h("button", { type: "button", class: "danger", "data-action": "delete", onclick: () => deleteJob(j) }, "Delete")));
  });
  body.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 9 }, "No jobs match."))]));
  $("pageinfo").textContent = "Page " + data.page + " of " + data.pages + " · " + data.total + " job" + (data.total === 1 ? "" : "s");
  $("prev").disabled = data.page <= 1;
  $("next").disabled = data.page >= data.pages;
}

function renderSchedules(data) {
  const body = $("schedules").tBodies[0];
  const rows = data.items.map((s) => {
    const base = "/api/schedules/" + enc(s.namespace) + "/" + enc(s.name);
    return h("tr", { "data-schedule": s.namespace + "/" + s.name },
      cell("Name", h("span", { class: "name" }, s.name), s.message ? h("span", { class: "sub" }, s.message) : null),
      cell("Namespace", s.namespace),
      cell("Schedule", h("code", {}, s.schedule), h("span", { class: "sub" }, s.timeZone)),
      cell("Handler", s.handler || "—", h("span", { class: "sub" }, "queue " + s.queue)),
      cell("Last run", when(s.lastScheduleTime), s.lastJob ? h("span", { class: "sub" }, s.lastJob) : null),
      cell("Next run", s.enabled ? when(s.nextScheduleTime) : "—"),
      cell("Runs", s.runCount, s.consecutiveFailures ? h("span", { class: "sub" }, s.consecutiveFailures + " failed in a row") : null),
      cell("Enabled", s.enabled ? badge("enabled", "on") : badge("disabled", "off")),
      h("td", { class: "actions" },
        h("button", { type: "button", "data-action": "trigger",
                      onclick: () => act("Triggered " + s.namespace + "/" + s.name, "POST", base + "/trigger") }, "Trigger"),
        h("button", { type: "button", "data-action": s.enabled ? "disable" : "enable",
                      onclick: () => act((s.enabled ? "Disabled " : "Enabled ") + s.namespace + "/" + s.name, "POST",
                                         base + (s.enabled ? "/disable" : "/enable")) },
          s.enabled ? "Disable" : "Enable")));
  });
  body.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: 9 }, "No schedules."))]));
}

function renderDetail(j) {
  $("detail-title").textContent = j.namespace + "/" + j.name;
  const facts = [["Status", [badge(j.phase), j.waitingReason || j.failureReason ? " " + (j.waitingReason || j.failureReason) : ""]],
    ["Queue", j.queue], ["Handler", j.handler], ["Priority", j.priority],
    ["Position", j.position ? "#" + j.position + " in queue" : "—"],
    ["Attempts", j.attempts + (j.failedAttempts ? " (" + j.failedAttempts + " failed)" : "")],
    ["Progress", progress(j.progress)], ["Created", when(j.createdAt)], ["Started", when(j.startedAt)],
    ["Finished", when(j.completedAt)], ["Next attempt", when(j.nextAttemptAt)],
    ["Dead letter", j.deadLettered ? "yes" : "no"], ["Schedule", j.schedule || "—"]];
  const finished = FINISHED.includes(j.phase);
  const history = j.attemptHistory.map((a) => h("tr", {},
    cell("Attempt", a.attempt), cell("Pod", a.pod || "—"), cell("Started", when(a.startedAt)),
    cell("Finished", when(a.finishedAt)), cell("Exit code", a.exitCode ?? "—"), cell("Reason", a.reason || "—"),
    cell("Message", a.message ? h("span", { class: "sub" }, a.message) : "—")));
  $("detail-body").replaceChildren(...[
    h("div", { class: "detail-actions" },
      finished && j.phase !== "Superseded" ? h("button", { type: "button", "data-action": "retry", onclick: () => retryJob(j) }, "Retry") : null,
      finished ? null : h("button", { type: "button", "data-action": "cancel",
                                      onclick: async () => { if (await cancelJob(j)) closeDetail(); } }, "Cancel"),
      h("button", { type: "button", class: "danger", "data-action": "delete",
                    onclick: async () => { if (await deleteJob(j)) closeDetail(); } }, "Delete")),
    h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    j.lastError ? [h("h3", {}, "Last error"), h("pre", { class: "last-error" }, j.lastError)] : null,
    h("h3", {}, "Payload"), h("pre", { class: "payload" }, json(j.spec.payload ?? null)),
    j.result !== null && j.result !== undefined ? [h("h3", {}, "Result"), h("pre", { class: "result" }, json(j.result))] : null,
    h("h3", {}, "Attempt history" + (j.olderAttempts ? " (" + j.olderAttempts + " older not kept)" : "")),
    history.length ? h("table", { class: "responsive" },
      h("thead", {}, h("tr", {}, ...["Attempt", "Pod", "Started", "Finished", "Exit code", "Reason", "Message"].map((t) => h("th", {}, t)))),
      h("tbody", {}, history)) : h("p", { class: "muted" }, "No attempt yet."),
  ].flat().filter((c) => c !== null && c !== undefined && c !== false));
}

async function openDetail(j) {
  state.detail = { namespace: j.namespace, name: j.name };
  $("detail-title").textContent = j.namespace + "/" + j.name;
  $("detail-body").replaceChildren(h("p", { class: "muted" }, "Loading…"));
  sectionError("detail-error", null);
  if (!$("detail").open) $("detail").showModal();
  await loadDetail();
}
async function loadDetail() {
  if (!state.detail) return;
  try {
    renderDetail(await api("GET", jobPath(state.detail)));
    sectionError("detail-error", null);
  } catch (err) {
    sectionError("detail-error", err);
    if (err.status === 404) $("detail-body").replaceChildren(h("p", { class: "muted" }, "This job no longer exists."));
  }
}
function closeDetail() { state.detail = null; if ($("detail").open) $("detail").close(); }

// --- loading ---------------------------------------------------------------------------------

async function section(errorId, loader, render) {
  try { render(await loader()); sectionError(errorId, null); return true; }
  catch (err) { if (err.status === 401) throw err; sectionError(errorId, err); return false; }
}

async function refresh() {
  // A change (filter, search, page) made while a refresh is under way is loaded right after it, not
  // dropped until the next auto-refresh (or forever, with auto-refresh off).
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  state.again = false;
  try {
    const ns = state.namespace;
    await Promise.all([
      section("queues-error", () => api("GET", "/api/stats" + qs({ namespace: ns })), renderStats),
      section("jobs-error", () => api("GET", "/api/jobs" + qs({ namespace: ns, phase: state.phase, q: state.q,
                                                             page: state.page, limit: PAGE_SIZE })), renderJobs),
      section("schedules-error", () => api("GET", "/api/schedules" + qs({ namespace: ns })), renderSchedules),
      $("detail").open ? loadDetail() : Promise.resolve(),
    ]);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    if (err.status !== 401) banner(describe(err));
  } finally {
    state.busy = false;
    if (state.again) refresh();
  }
}

async function loadNamespaces() {
  try {
    const data = await api("GET", "/api/namespaces");
    const sel = $("namespace");
    const keep = state.namespace;
    sel.replaceChildren(h("option", { value: "" }, "All namespaces"), ...data.items.map((n) => h("option", { value: n }, n)));
    if (keep && !data.items.includes(keep)) sel.append(h("option", { value: keep }, keep));
    sel.value = keep;
  } catch (err) { /* the sections show what is wrong */ }
}

function saveHash() {
  const p = new URLSearchParams();
  if (state.namespace) p.set("namespace", state.namespace);
  if (state.phase) p.set("phase", state.phase);
  if (state.q) p.set("q", state.q);
  if (state.page > 1) p.set("page", state.page);
  history.replaceState(null, "", p.toString() ? "#" + p.toString() : location.pathname);
}
function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.namespace = p.get("namespace") || "";
  state.phase = p.get("phase") || "";
  state.q = (p.get("q") || "").slice(0, MAX_SEARCH);
  state.page = Math.max(1, parseInt(p.get("page") || "1", 10) || 1);
  $("phase").value = state.phase;
  $("search").value = state.q;
}

function setPhase(phase) { state.phase = phase; state.page = 1; $("phase").value = phase; saveHash(); refresh(); }

function schedule() {
  clearInterval(state.timer);
  state.timer = null;
  if ($("autorefresh").checked) {
    state.timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  }
}

// --- sign-in ---------------------------------------------------------------------------------

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  $("app").hidden = true;
  $("controls").hidden = true;
  $("login").hidden = false;
  banner(message && message !== "authentication required" ? message : null);
}

async function start() {
  let who;
  try {
    who = await api("GET", "/api/whoami");
  } catch (err) {
    if (err.status !== 401) banner(describe(err));
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("controls").hidden = false;
  $("user").textContent = who.username;
  $("signout").hidden = state.auth !== "token";
  if (state.auth === "none") banner("This dashboard runs without authentication (--dashboard-auth=none): for local development only.", "notice");
  await loadNamespaces();
  await refresh();
  schedule();
}

async function main() {
  readHash();
  try { state.auth = (await api("GET", "/api/config")).auth; } catch (err) { banner(describe(err)); }
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    banner(null);
    start();
  });
  $("signout").addEventListener("click", () => { showLogin(); banner(null); });
  $("namespace").addEventListener("change", (e) => { state.namespace = e.target.value; state.page = 1; saveHash(); refresh(); });
  $("phase").addEventListener("change", (e) => setPhase(e.target.value));
  let typing = null;
  $("search").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.q = e.target.value.trim().slice(0, MAX_SEARCH); state.page = 1; saveHash(); refresh(); }, 250);
  });
  $("prev").addEventListener("click", () => { if (state.page > 1) { state.page--; saveHash(); refresh(); } });
  $("next").addEventListener("click", () => { if (state.page < state.pages) { state.page++; saveHash(); refresh(); } });
  $("autorefresh").addEventListener("change", schedule);
  $("detail-close").addEventListener("click", closeDetail);
  $("detail").addEventListener("close", () => { state.detail = null; });
  $("retry-failed").addEventListener("click", async () => {
    const body = state.namespace ? { namespace: state.namespace } : {};
    try {
      const preview = await api("POST", "/api/retry-failed", { ...body, dryRun: true });
      if (!preview.count) { banner("No dead-lettered jobs to retry.", "notice"); return; }
      await act("Requeued " + preview.count + " dead-lettered job(s)", "POST", "/api/retry-failed", body,
                "Requeue " + preview.count + " dead-lettered job(s)?");
    } catch (err) { banner(describe(err)); }
  });
  $("cleanup-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { olderThan: $("older").value.trim() || "7d" };
    if (state.namespace) body.namespace = state.namespace;
    try {
      const preview = await api("POST", "/api/cleanup", { ...body, dryRun: true });
      state.cleanup = body;
      $("cleanup-result").textContent = preview.count
        ? preview.count + " finished job(s) older than " + body.olderThan + ": " + preview.items.slice(0, 10).map((i) => i.namespace + "/" + i.name).join(", ") + (preview.count > 10 ? ", …" : "")
        : "No finished jobs older than " + body.olderThan + ".";
      $("cleanup-run").hidden = !preview.count;
      $("cleanup-run").textContent = "Delete " + preview.count + " job(s)";
    } catch (err) { banner(describe(err)); }
  });
  $("cleanup-run").addEventListener("click", async () => {
    if (!state.cleanup) return;
    const out = await act("Cleaned up old jobs", "POST", "/api/cleanup", state.cleanup,
                          "Delete the finished jobs older than " + state.cleanup.olderThan + "?");
    if (out) { $("cleanup-result").textContent = "Deleted " + out.count + " job(s)."; $("cleanup-run").hidden = true; }
  });
  if (state.auth === "token" && !sessionStorage.getItem(TOKEN_KEY)) { showLogin(); return; }
  await start();
}

document.addEventListener("DOMContentLoaded", main);
