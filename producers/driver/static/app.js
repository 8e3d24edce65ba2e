// Driver tablet: plain JS, no build step. State lives in localStorage so a reload
// (or a tablet that lost its connection) comes back logged in; the server sends
// the vehicle's latest plan first on every (re)connect.
"use strict";

const TEXT = {
  de: {
    title: "Rufbus – Fahrer", login: "Anmelden", vehicle: "Fahrzeug", driver: "Fahrer/in",
    pin: "PIN", shift_start: "Schicht beginnen", shift_end: "Schicht beenden",
    break_start: "Pause", logout: "Abmelden", plan: "Fahrplan",
    no_stops: "Keine Halte geplant.", online: "verbunden", offline: "getrennt",
    on_shift: "Im Dienst bis", off_shift: "Nicht im Dienst", on_break: "Pause",
    load: "An Bord", seat: "Sitz", seats: "Sitze", wheelchairs: "Rollstuhl", next: "NÄCHSTER HALT",
    arrived: "Angekommen", arrived_at: "Angekommen um", boarded: "Eingestiegen",
    alighted: "Ausgestiegen", no_show: "Nicht erschienen", board: "Einsteigen",
    alight: "Aussteigen", in_min: "in {n} min", now: "jetzt", window: "Zeitfenster",
    navigate: "Navigation", map: "Karte (OSM)", no_show_at: "Nicht erschienen ab {t}",
    break_requested: "Pause angefragt – die Leitstelle plant sie, sobald die Fahrgäste es erlauben.",
    break_planned: "Pause geplant {from}–{to} am Depot.", break_running: "Pause bis {to}.",
    break_refused: "Pause abgelehnt: {reason}",
    standby: "Keine Fahrten: bitte zum Bereitstellungsort {name} fahren und dort warten.",
    set_off: "Bitte hier warten, Abfahrt {t}.",
    login_failed: "Anmeldung fehlgeschlagen", failed: "Fehler",
  },
  en: {
    title: "Ride bus – driver", login: "Log in", vehicle: "Vehicle", driver: "Driver",
    pin: "PIN", shift_start: "Start shift", shift_end: "End shift",
    break_start: "Break", logout: "Log out", plan: "Plan",
    no_stops: "No stops planned.", online: "online", offline: "offline",
    on_shift: "On shift until", off_shift: "Off shift", on_break: "On break",
    load: "On board", seat: "seat", seats: "seats", wheelchairs: "wheelchair", next: "NEXT STOP",
    arrived: "Arrived", arrived_at: "Arrived at", boarded: "Boarded",
    alighted: "Alighted", no_show: "No-show", board: "Boards",
    alight: "Alights", in_min: "in {n} min", now: "now", window: "Window",
    navigate: "Navigate", map: "Map (OSM)", no_show_at: "No-show from {t}",
    break_requested: "Break requested – dispatch plans it as soon as the passengers allow.",
    break_planned: "Break planned {from}–{to} at the depot.", break_running: "On break until {to}.",
    break_refused: "Break refused: {reason}",
    standby: "No rides: please drive to the standby point {name} and wait there.",
    set_off: "Please wait here; set off at {t}.",
    login_failed: "Login failed", failed: "Error",
  },
};

const store = window.localStorage;
let lang = store.getItem("drt.lang") || "de";
let session = JSON.parse(store.getItem("drt.session") || "null");
let source = null;
let current = null;

const $ = (id) => document.getElementById(id);
const t = (key, vars = {}) =>
  (TEXT[lang][key] || key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k]));
const hhmm = (iso) =>
  new Date(iso).toLocaleTimeString(lang === "de" ? "de-DE" : "en-GB",
    { hour: "2-digit", minute: "2-digit", timeZone: "Europe/Berlin" });

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "disabled") node.disabled = Boolean(v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("lang").textContent = lang === "de" ? "EN" : "DE";
  setConnection($("conn").dataset.state === "on");
  if (current) render(current);
}

function setConnection(on) {
  const c = $("conn");
  c.dataset.state = on ? "on" : "off";
  c.textContent = t(on ? "online" : "offline");
}

async function api(path, body) {
  const res = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Content-Type": "application/json",
      ...(session ? { Authorization: `Bearer ${session.token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const detail = Array.isArray(data.detail) ? data.detail.map((d) => d.msg).join("; ") : data.detail;
    throw new Error(detail || `${res.status}`);
  }
  return data;
}

async function act(path, body = {}) {
  $("action-error").textContent = "";
  try {
    const view = await api(`/api/vehicles/${encodeURIComponent(session.vehicle_id)}/${path}`, body);
    // The dispatcher's answer to this action (a new plan on the stream) may have come
    // first: a view of an older plan must not replace it.
    if (!current || view.plan_version >= current.plan_version) render(view);
  } catch (err) {
    $("action-error").textContent = `${t("failed")}: ${err.message}`;
  }
}

function connect() {
  if (source) source.close();
  const url = `/api/vehicles/${encodeURIComponent(session.vehicle_id)}/stream` +
    `?access_token=${encodeURIComponent(session.token)}`;
  source = new EventSource(url);
  source.onopen = () => setConnection(true);
  source.addEventListener("plan", (e) => render(JSON.parse(e.data)));
  source.onerror = () => {
    setConnection(false);
    // EventSource retries by itself unless the server refused; then retry by hand.
    if (source.readyState === EventSource.CLOSED) setTimeout(() => session && connect(), 3000);
  };
}

function showWork() {
  $("login-view").hidden = true;
  $("work-view").hidden = false;
  $("vehicle-label").textContent = session.vehicle_id;
  connect();
}

function etaText(iso) {
  const minutes = Math.round((new Date(iso) - Date.now()) / 60000);
  return `${hhmm(iso)} · ${minutes <= 0 ? t("now") : t("in_min", { n: minutes })}`;
}

function person(p, kind, card) {
  const size = `${p.seats} ${t(p.seats === 1 ? "seat" : "seats")}` + (p.wheelchairs ? ` + ${p.wheelchairs} ${t("wheelchairs")} ♿` : "");
  const row = el("li", { class: `person ${kind === "pickup" ? "on" : "off"}`, "data-request": p.request_id },
    el("span", { class: "who" }, el("b", {}, kind === "pickup" ? `▲ ${t("board")}` : `▼ ${t("alight")}`),
      ` ${p.request_id} · ${size}`));
  const arrived = Boolean(card.arrived_at);
  if (kind === "pickup") {
    row.append(el("button", {
      class: `big ${p.boarded ? "done" : "primary"}`, type: "button",
      "data-testid": `boarded-${p.request_id}`, disabled: !arrived || p.boarded,
      onclick: () => act("boarded", { request_id: p.request_id }),
    }, p.boarded ? `✓ ${t("boarded")}` : t("boarded")));
    const from = p.no_show_from ? new Date(p.no_show_from) : null;
    row.append(el("button", {
      class: "big danger", type: "button", "data-testid": `noshow-${p.request_id}`,
      "data-from": p.no_show_from || "", disabled: p.boarded || !from || Date.now() < from,
      title: from ? t("no_show_at", { t: hhmm(p.no_show_from) }) : "",
      onclick: () => act("no-show", { request_id: p.request_id }),
    }, t("no_show")));
  } else {
    row.append(el("button", {
      class: "big primary", type: "button", "data-testid": `alighted-${p.request_id}`,
      disabled: !arrived || !p.onboard,
      onclick: () => act("alighted", { request_id: p.request_id }),
    }, t("alighted")));
  }
  return row;
}

function render(view) {
  current = view;
  $("shift-label").textContent = view.on_shift
    ? (view.on_break ? t("on_break") : `${t("on_shift")} ${hhmm(view.shift_end)}`)
    : t("off_shift");
  $("load-label").textContent = `${t("load")}: ${view.onboard.seats}/${view.capacity.seats} ${t("seats")}, ` +
    `${view.onboard.wheelchairs}/${view.capacity.wheelchairs} ${t("wheelchairs")}`;
  $("shift-start").disabled = view.on_shift;
  $("shift-end").disabled = !view.on_shift;
  const brk = view.break || { state: null };
  $("break").disabled = !view.on_shift || ["requested", "planned", "running"].includes(brk.state);
  const note = $("break-note");
  note.dataset.state = brk.state || "";
  note.hidden = !brk.state;
  note.textContent = brk.state ? t(`break_${brk.state}`, {
    from: brk.start ? hhmm(brk.start) : "", to: brk.end ? hhmm(brk.end) : "", reason: brk.reason || "",
  }) : "";
  $("empty").hidden = view.stops.length > 0 || Boolean(view.standby);
  const standby = $("standby");
  standby.hidden = !view.standby;
  standby.replaceChildren(...(view.standby ? [
    el("span", {}, t("standby", { name: view.standby.name })), " ",
    el("a", { href: view.standby.navigation.geo }, `➤ ${t("navigate")}`), " ",
    el("a", { href: view.standby.navigation.osm, target: "_blank", rel: "noopener" }, t("map")),
  ] : []));
  const list = $("stops");
  list.replaceChildren(...view.stops.map((card, i) => {
    const window = card.window_start && card.window_end
      ? `${t("window")} ${hhmm(card.window_start)}–${hhmm(card.window_end)}` : "";
    const arrivedText = card.arrived_at ? ` · ${t("arrived_at")} ${hhmm(card.arrived_at)}` : "";
    return el("li", { class: `stop${i === 0 ? " next" : ""}`, "data-testid": `stop-${i}`,
      "data-stop-id": card.stop_id || "" },
      el("div", { class: "head" },
        i === 0 ? el("span", { class: "tag" }, t("next")) : null,
        el("span", { class: "name" }, card.name),
        el("span", { class: "eta" }, etaText(card.eta))),
      el("div", { class: "meta" }, window + arrivedText),
      i === 0 && view.set_off_at
        ? el("div", { class: "meta set-off", "data-testid": "set-off" },
          t("set_off", { t: hhmm(view.set_off_at) }))
        : null,
      el("div", {},
        el("a", { href: card.navigation.geo }, `➤ ${t("navigate")}`),
        el("a", { href: card.navigation.osm, target: "_blank", rel: "noopener" }, t("map"))),
      el("div", { class: "controls" },
        el("button", { class: `big ${card.arrived_at ? "done" : "primary"}`, type: "button",
          "data-testid": `arrived-${i}`, disabled: Boolean(card.arrived_at),
          onclick: () => act("arrived", { request_ids: card.request_ids }) },
          card.arrived_at ? `✓ ${t("arrived")}` : t("arrived"))),
      el("ul", { class: "people" },
        ...card.pickups.map((p) => person(p, "pickup", card)),
        ...card.dropoffs.map((p) => person(p, "dropoff", card))));
  }));
}

// The no-show button unlocks when its waiting time is over, without a server push.
setInterval(() => {
  for (const b of document.querySelectorAll("button[data-from]")) {
    const from = b.dataset.from ? new Date(b.dataset.from) : null;
    if (from && Date.now() >= from && !b.classList.contains("done")) b.disabled = false;
  }
  // The planned break begins and ends by the clock, too.
  const brk = current && current.break;
  if (brk && brk.state === "planned" && Date.now() >= new Date(brk.start)) {
    render({ ...current, on_break: true, break: { ...brk, state: "running" } });
  } else if (brk && brk.state === "running" && Date.now() >= new Date(brk.end)) {
    render({ ...current, on_break: false, break: { ...brk, state: null } });
  }
}, 1000);

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage();
  $("lang").addEventListener("click", () => {
    lang = lang === "de" ? "en" : "de";
    store.setItem("drt.lang", lang);
    applyLanguage();
  });
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    try {
      const data = await api("/api/login", {
        vehicle_id: $("vehicle").value.trim(), driver_id: $("driver").value.trim(), pin: $("pin").value,
      });
      session = { token: data.token, vehicle_id: data.vehicle_id, driver_id: data.driver_id };
      store.setItem("drt.session", JSON.stringify(session));
      showWork();
    } catch (err) {
      $("login-error").textContent = `${t("login_failed")}: ${err.message}`;
    }
  });
  $("shift-start").addEventListener("click", () => act("shift/start", {}));
  $("shift-end").addEventListener("click", () => act("shift/end"));
  $("break").addEventListener("click", () => act("break", {}));
  $("logout").addEventListener("click", () => {
    if (source) source.close();
    session = null;
    current = null;
    store.removeItem("drt.session");
    $("work-view").hidden = true;
    $("login-view").hidden = false;
  });
  if (session) showWork();
});
