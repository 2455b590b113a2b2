// The dashboard: a small single-page app over the dashboard's own endpoints (/session,
// /api/v3/..., /logs/<app>/stream, /admin/..., /admin/logs/...). Routes live in the URL's
// fragment.
import { h, s, fill, when, bytes } from "./dom.js";

const main = document.getElementById("main");
let me = null;
let cleanup = [];

function onLeave(fn) { cleanup.push(fn); }

function signIn() { window.location.assign("/login"); }

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = me.csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) { signIn(); throw new Error("signed out"); }
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = { text }; }
  return { status: res.status, ok: res.ok, data };
}

const api = (path) => call("GET", `/api/v3/${path}`);
const act = (method, path, body) => call(method, `/api/v3/${path}`, body);

function errorText(r) {
  const e = r.data && r.data.errors && r.data.errors[0];
  return e ? `${e.title || "Error"}: ${e.detail || ""}` : `request failed (${r.status})`;
}

async function all(path) {
  const out = [];
  let next = path;
  for (let i = 0; next && i < 20; i += 1) {
    const r = await api(next);
    if (!r.ok) throw new Error(errorText(r));
    out.push(...(r.data.resources || []));
    const href = r.data.pagination && r.data.pagination.next && r.data.pagination.next.href;
    next = href ? href.slice(href.indexOf("/v3/") + 4) : null;
  }
  return out;
}

function section(title, id, ...content) {
  return h("section", { "aria-labelledby": `${id}-h`, id }, h("h2", { id: `${id}-h` }, title), content);
}

function table(caption, headers, rows, attrs) {
  return h("table", attrs || {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows));
}

function notice(text, kind) {
  return h("p", { class: kind || "notice", role: kind === "error" ? "alert" : "status" }, text);
}

function stateBadge(state) {
  const st = String(state || "UNKNOWN");
  return h("span", { class: `badge st-${st.toLowerCase()}` }, st);
}

// ---- orgs and spaces ---------------------------------------------------------------------

async function orgsPage() {
  fill(main, h("h1", {}, "Organizations"), notice("Loading…"));
  const [orgs, spaces] = await Promise.all([all("organizations?per_page=200"), all("spaces?per_page=200")]);
  const list = h("ul", { class: "cards", id: "orgs" }, orgs.map((o) => {
    const mine = spaces.filter((sp) => sp.relationships.organization.data.guid === o.guid);
    return h("li", { class: "card" },
      h("h2", {}, o.name),
      mine.length
        ? h("ul", { class: "spaces" }, mine.map((sp) => h("li", {}, h("a", { href: `#/spaces/${sp.guid}` }, sp.name))))
        : h("p", { class: "muted" }, "No spaces you can see."));
  }));
  fill(main, h("h1", {}, "Organizations"), orgs.length ? list : notice("You are not a member of any organization."));
}

async function spacePage(guid) {
  const sp = await api(`spaces/${guid}`);
  if (!sp.ok) return notFound("Space not found");
  fill(main, h("h1", {}, `Space ${sp.data.name}`), notice("Loading…"));
  const apps = await all(`apps?space_guids=${guid}&per_page=200&order_by=name`);
  const procs = apps.length ? await all(`processes?app_guids=${apps.map((a) => a.guid).join(",")}&types=web&per_page=200`) : [];
  const rows = await Promise.all(apps.map(async (a) => {
    const p = procs.find((x) => x.relationships.app.data.guid === a.guid);
    let running = 0;
    if (p) {
      const st = await api(`processes/${p.guid}/stats`);
      if (st.ok) running = (st.data.resources || []).filter((i) => i.state === "RUNNING").length;
    }
    return h("tr", { dataset: { app: a.guid } },
      h("th", { scope: "row" }, h("a", { href: `#/apps/${a.guid}`, class: "app-link" }, a.name)),
      h("td", {}, stateBadge(a.state)),
      h("td", {}, p ? `${running}/${p.instances}` : "–"),
      h("td", {}, when(a.updated_at)));
  }));
  fill(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Organizations")),
    h("h1", {}, `Space ${sp.data.name}`),
    apps.length ? table("Apps", ["Name", "State", "Running", "Updated"], rows, { id: "apps" }) : notice("No apps in this space."));
}

function notFound(text) {
  fill(main, h("h1", { id: "not-found" }, text || "Not found"),
    h("p", {}, "It does not exist, or you may not see it."), h("p", {}, h("a", { href: "#/" }, "Back to organizations")));
}

// ---- live logs ----------------------------------------------------------------------------

// One log line (as /logs/<app>/stream and /admin/logs/stream send it), as text.
function logLine(l) {
  const t = new Date(l.time_ms).toLocaleTimeString();
  const src = l.instance ? `${l.source_type}/${l.instance}` : l.source_type;
  return h("li", { class: l.stream === "ERR" ? "err" : "" },
    h("span", { class: "ts" }, t), " ", h("span", { class: "src" }, `[${src}]`), " ",
    h("span", { class: "msg" }, l.message));
}

// A live view of a stream of log lines into `list` (the last 500), its state in `stateEl`:
// open(url) (re)starts it on a server-sent events URL, close() stops it; leaving the page
// closes it too.
function liveLogs(list, stateEl) {
  let source = null;
  const view = {
    open(url) {
      view.close();
      fill(list);
      stateEl.textContent = "connecting…";
      source = new EventSource(url);
      source.onopen = () => { stateEl.textContent = "live"; };
      source.onerror = () => { stateEl.textContent = "reconnecting…"; };
      source.onmessage = (ev) => {
        let l;
        try { l = JSON.parse(ev.data); } catch { return; }
        list.append(logLine(l));
        while (list.childElementCount > 500) list.firstElementChild.remove();
        list.scrollTop = list.scrollHeight;
      };
    },
    close() {
      if (source) source.close();
      source = null;
    },
  };
  onLeave(view.close);
  return view;
}

// ---- one app ------------------------------------------------------------------------------

const SOURCES = ["APP", "RTR", "STG", "API", "CELL", "LGR"];

function sparkline(label, samples, max, fmt) {
  const w = 160, ht = 36;
  const values = samples.length === 1 ? [samples[0], samples[0]] : samples;
  const top = Math.max(max || 0, ...values, 1e-9);
  const pts = values.map((v, i) => `${(i / Math.max(values.length - 1, 1)) * w},${ht - (v / top) * (ht - 2) - 1}`).join(" ");
  const last = values.length ? values[values.length - 1] : 0;
  return h("figure", { class: "spark" },
    s("svg", { viewBox: `0 0 ${w} ${ht}`, width: w, height: ht, role: "img", "aria-label": `${label}: ${fmt(last)}` },
      s("polyline", { points: pts || `0,${ht} ${w},${ht}`, fill: "none", stroke: "currentColor", "stroke-width": 1.5 })),
    h("figcaption", {}, `${label} ${fmt(last)}`));
}

async function appPage(guid) {
  const r = await api(`apps/${guid}`);
  if (r.status === 404) return notFound("App not found");
  if (!r.ok) return fill(main, notice(errorText(r), "error"));
  const app = r.data;
  const spaceGuid = app.relationships.space.data.guid;
  const procs = await all(`apps/${guid}/processes`);
  const web = procs.find((p) => p.type === "web") || procs[0];
  const status = h("p", { id: "action-status", role: "status", class: "status" });
  const stateEl = h("span", { id: "app-state" }, stateBadge(app.state));

  async function run(label, method, path, body, after) {
    status.textContent = `${label}…`;
    const res = await act(method, path, body);
    status.textContent = res.ok ? `${label}: done` : errorText(res);
    if (res.ok && after) await after(res);
    const again = await api(`apps/${guid}`);
    if (again.ok) fill(stateEl, stateBadge(again.data.state));
  }

  const scaleInput = h("input", { id: "scale-instances", type: "number", min: 0, max: 100, value: web ? web.instances : 1, required: true });
  const dialog = h("dialog", { id: "confirm-delete", "aria-labelledby": "confirm-delete-h" },
    h("h2", { id: "confirm-delete-h" }, `Delete ${app.name}?`),
    h("p", {}, "The app, its instances and its bindings go away. This cannot be undone."),
    h("form", { method: "dialog" },
      h("button", { value: "cancel", id: "delete-cancel" }, "Cancel"),
      h("button", { value: "delete", class: "danger", id: "delete-confirm" }, "Delete")));
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "delete") return;
    // The api deletes in a job: back to the space once the app is gone, so its list is current.
    run("Delete", "DELETE", `apps/${guid}`, undefined, async () => {
      status.textContent = "Delete: waiting for the app to go…";
      for (let i = 0; i < 120; i++) {
        const still = await api(`apps/${guid}`);
        if (!still.ok) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      window.location.hash = `#/spaces/${spaceGuid}`;
    });
  });

  const actions = h("div", { class: "actions", role: "group", "aria-label": "App actions" },
    h("button", { id: "btn-start", onclick: () => run("Start", "POST", `apps/${guid}/actions/start`) }, "Start"),
    h("button", { id: "btn-stop", onclick: () => run("Stop", "POST", `apps/${guid}/actions/stop`) }, "Stop"),
    h("button", { id: "btn-restart", onclick: () => run("Restart", "POST", `apps/${guid}/actions/restart`) }, "Restart"),
    web && h("form", {
      class: "inline", id: "scale-form",
      onsubmit: (e) => {
        e.preventDefault();
        run("Scale", "POST", `processes/${web.guid}/actions/scale`, { instances: Number(scaleInput.value) });
      },
    }, h("label", { for: "scale-instances" }, "Instances"), scaleInput, h("button", { type: "submit", id: "btn-scale" }, "Scale")),
    h("button", { id: "btn-delete", class: "danger", onclick: () => dialog.showModal() }, "Delete"));

  // Instances, updated live.
  const instBody = h("tbody", { id: "instance-rows" });
  const charts = h("div", { class: "charts", id: "charts" });
  const history = new Map();
  async function refreshStats() {
    if (!web) return;
    const st = await api(`processes/${web.guid}/stats`);
    if (!st.ok) return;
    const list = st.data.resources || [];
    fill(instBody, list.map((i) => {
      const u = i.usage || {};
      const hist = history.get(i.index) || { cpu: [], mem: [] };
      hist.cpu.push((u.cpu || 0) * 100);
      hist.mem.push(u.mem || 0);
      if (hist.cpu.length > 60) { hist.cpu.shift(); hist.mem.shift(); }
      history.set(i.index, hist);
      return h("tr", { class: "instance", dataset: { state: i.state, index: i.index } },
        h("th", { scope: "row" }, `#${i.index}`),
        h("td", {}, stateBadge(i.state)),
        h("td", {}, u.cpu === undefined ? "–" : `${((u.cpu || 0) * 100).toFixed(1)}%`),
        h("td", {}, `${bytes(u.mem)} / ${bytes(i.mem_quota)}`),
        h("td", {}, `${bytes(u.disk)} / ${bytes(i.disk_quota)}`),
        h("td", {}, i.uptime ? `${i.uptime} s` : "–"));
    }));
    fill(charts, list.map((i) => {
      const hist = history.get(i.index);
      return h("div", { class: "chart" }, h("h3", {}, `Instance #${i.index}`),
        sparkline("CPU", hist.cpu, 100, (v) => `${v.toFixed(1)}%`),
        sparkline("Memory", hist.mem, i.mem_quota, bytes));
    }));
  }
  const timer = setInterval(() => { refreshStats().catch(() => {}); }, 2000);
  onLeave(() => clearInterval(timer));

  // Logs, live.
  const logList = h("ol", { id: "log-lines", class: "logs", "aria-live": "off" });
  const logState = h("span", { id: "log-state", class: "muted" }, "connecting…");
  const boxes = SOURCES.map((src) => h("input", { type: "checkbox", id: `src-${src}`, value: src, checked: true }));
  const logs = liveLogs(logList, logState);
  function connect() {
    const picked = boxes.filter((b) => b.checked).map((b) => b.value);
    logs.open(`/logs/${guid}/stream?sources=${encodeURIComponent(picked.join(","))}`);
  }
  boxes.forEach((b) => b.addEventListener("change", connect));

  const main2 = [
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Organizations"), " › ", h("a", { href: `#/spaces/${spaceGuid}` }, "Space")),
    h("h1", { id: "app-name" }, app.name),
    h("p", {}, "State: ", stateEl),
    actions, status, dialog,
    section("Instances", "instances",
      h("table", {}, h("caption", {}, web ? `${web.type} process` : "No process"),
        h("thead", {}, h("tr", {}, ["Index", "State", "CPU", "Memory", "Disk", "Uptime"].map((x) => h("th", { scope: "col" }, x)))),
        instBody),
      charts),
    section("Routes", "routes", h("ul", { id: "route-list" })),
    section("Environment", "env", h("div", { id: "env-body" })),
    section("Builds", "builds", h("div", { id: "build-body" })),
    section("Deployments", "deployments", h("div", { id: "deployment-body" })),
    section("Events", "events", h("div", { id: "event-body" })),
    section("Logs", "logs",
      h("fieldset", { class: "sources" }, h("legend", {}, "Sources"),
        boxes.map((b) => h("label", { for: b.id }, b, b.value))),
      h("p", {}, "Stream: ", logState),
      logList),
  ];
  fill(main, main2);
  connect();
  await refreshStats();

  // The rest, each on its own.
  all(`apps/${guid}/routes`).then((routes) => fill(document.getElementById("route-list"),
    routes.length ? routes.map((rt) => h("li", {}, rt.url || rt.host)) : h("li", { class: "muted" }, "No routes."))).catch(() => {});
  api(`apps/${guid}/env`).then((e) => {
    if (!e.ok) return fill(document.getElementById("env-body"), notice(errorText(e)));
    const vars = Object.entries(e.data.environment_variables || {});
    const rows = vars.map(([k, v]) => {
      const val = h("span", { class: "secret" }, "••••••••");
      const btn = h("button", { type: "button", "aria-pressed": "false", "aria-label": `Show ${k}` }, "Show");
      btn.addEventListener("click", () => {
        const shown = btn.getAttribute("aria-pressed") === "true";
        val.textContent = shown ? "••••••••" : String(v);
        btn.textContent = shown ? "Show" : "Hide";
        btn.setAttribute("aria-pressed", shown ? "false" : "true");
      });
      return h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, val, " ", btn));
    });
    fill(document.getElementById("env-body"), vars.length ? table("User-provided variables", ["Name", "Value"], rows) : notice("No variables set."));
  }).catch(() => {});
  all(`builds?app_guids=${guid}&order_by=-created_at&per_page=10`).then((bs) => fill(document.getElementById("build-body"),
    bs.length ? table("Builds", ["Build", "State", "Created", "Error"], bs.slice(0, 10).map((b) =>
      h("tr", {}, h("td", {}, b.guid.slice(0, 8)), h("td", {}, stateBadge(b.state)), h("td", {}, when(b.created_at)), h("td", {}, b.error || ""))))
      : notice("No builds."))).catch(() => {});
  all(`deployments?app_guids=${guid}&order_by=-created_at&per_page=10`).then((ds) => fill(document.getElementById("deployment-body"),
    ds.length ? table("Deployments", ["Deployment", "State", "Status", "Created"], ds.slice(0, 10).map((d) =>
      h("tr", {}, h("td", {}, d.guid.slice(0, 8)), h("td", {}, stateBadge(d.state)),
        h("td", {}, d.status ? `${d.status.value || ""} ${d.status.reason || ""}` : ""), h("td", {}, when(d.created_at)))))
      : notice("No deployments."))).catch(() => {});
  api(`audit_events?target_guids=${guid}&order_by=-created_at&per_page=50`).then((ev) => {
    const list = (ev.ok && ev.data.resources) || [];
    fill(document.getElementById("event-body"), list.length ? table("Events", ["Time", "Event", "Actor"], list.map((x) =>
      h("tr", {}, h("td", {}, when(x.created_at)), h("td", {}, x.type), h("td", {}, (x.actor && x.actor.name) || ""))))
      : notice("No events."));
  }).catch(() => {});
}

// ---- operators ----------------------------------------------------------------------------

async function adminPage() {
  if (!me.admin) return notFound("Not found");
  fill(main, h("h1", {}, "Platform"), notice("Loading…"));
  const [cells, routes, health, sources] = await Promise.all([
    call("GET", "/admin/cells"), call("GET", "/admin/routes"), call("GET", "/admin/health"),
    call("GET", "/admin/logs/sources")]);
  const healthRows = ((health.data && health.data.components) || []).map((c) =>
    h("tr", { dataset: { ready: c.ready } }, h("th", { scope: "row" }, c.name), h("td", {}, stateBadge(c.ready ? "READY" : "NOT READY")),
      h("td", {}, c.url), h("td", {}, c.detail)));
  const cellRows = ((cells.data && cells.data.cells) || []).map((c) => {
    const cap = c.capacity || {};
    return h("tr", {}, h("th", { scope: "row" }, c.cell_id), h("td", {}, c.zone || ""),
      h("td", {}, `${cap.memory_mb ?? "?"} MB, ${cap.disk_mb ?? "?"} MB disk, ${cap.containers ?? "?"} containers`),
      h("td", {}, String((c.instances || []).length)),
      h("td", {}, h("ul", { class: "plain" }, (c.instances || []).map((i) => h("li", {}, `${i.process_guid.slice(0, 8)}/${i.index} ${i.state}`)))),
      h("td", {}, c.evacuating ? "evacuating" : "active"));
  });
  const table0 = (routes.data && routes.data.routes) || {};
  const routeRows = Object.entries(table0).map(([host, eps]) => h("tr", {}, h("th", { scope: "row" }, host),
    h("td", {}, h("ul", { class: "plain" }, (Array.isArray(eps) ? eps : [eps]).map((e) => h("li", {}, typeof e === "string" ? e : `${e.address} (${e.protocol || "http1"}, instance ${e.private_instance_index ?? "?"})`))))));
  // The components' own logs, live, one source at a time.
  const platformList = h("ol", { id: "platform-logs", class: "logs", "aria-live": "off" });
  const platformState = h("span", { id: "platform-log-state", class: "muted" }, "no component chosen");
  const platformLogs = liveLogs(platformList, platformState);
  const names = (sources.data && sources.data.sources) || [];
  const picker = h("select", { id: "platform-source" },
    h("option", { value: "" }, "Choose a component…"), names.map((n) => h("option", { value: n }, n)));
  picker.addEventListener("change", () => {
    if (picker.value) {
      platformLogs.open(`/admin/logs/stream?source=${encodeURIComponent(picker.value)}`);
    } else {
      platformLogs.close();
      fill(platformList);
      platformState.textContent = "no component chosen";
    }
  });
  fill(main, h("h1", {}, "Platform"),
    section("Component health", "health", health.ok ? table("Components", ["Component", "Ready", "URL", "Detail"], healthRows) : notice(`unavailable (${health.status})`, "error")),
    section("Cells", "cells", cells.ok ? table("Cells", ["Cell", "Zone", "Capacity", "Instances", "Placed", "State"], cellRows) : notice(`unavailable (${cells.status})`, "error")),
    section("Route table", "route-table", routes.ok ? table("Routes", ["Route", "Endpoints"], routeRows) : notice(`unavailable (${routes.status})`, "error")),
    section("Platform logs", "platform",
      sources.ok
        ? [h("p", { class: "inline" }, h("label", { for: "platform-source" }, "Component"), picker),
          h("p", {}, "Stream: ", platformState), platformList]
        : notice(`unavailable (${sources.status})`, "error")));
}

// ---- navigation ---------------------------------------------------------------------------

async function route() {
  cleanup.forEach((f) => f());
  cleanup = [];
  const path = window.location.hash.replace(/^#/, "") || "/";
  const m = path.match(/^\/(apps|spaces)\/([A-Za-z0-9-]+)$/);
  try {
    if (path === "/") await orgsPage();
    else if (m && m[1] === "apps") await appPage(m[2]);
    else if (m && m[1] === "spaces") await spacePage(m[2]);
    else if (path === "/admin") await adminPage();
    else notFound();
  } catch (e) {
    fill(main, notice(String(e.message || e), "error"));
  }
  main.focus({ preventScroll: true });
}

async function start() {
  const res = await fetch("/session", { credentials: "same-origin" });
  if (!res.ok) return signIn();
  me = await res.json();
  document.getElementById("who").textContent = me.user_name;
  document.getElementById("nav-admin").hidden = !me.admin;
  document.getElementById("signout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "x-csrf-token": me.csrf }, credentials: "same-origin" });
    signIn();
  });
  window.addEventListener("hashchange", route);
  await route();
}

start();
