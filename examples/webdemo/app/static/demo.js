// The demo page: TCGSDK (here its stand-in) wired by tcgsdk.js, plus what
// the page shows. The few lines an application needs are the startCAR call.
import { startCAR } from "/heartbeat/web/tcgsdk.js";
import { createFakeTCGSDK } from "/static/fake-tcgsdk.js";

const params = new URLSearchParams(location.search);
let user = params.get("user") || sessionStorage.getItem("webdemo.user");
if (!user) user = "user-" + Math.random().toString(36).slice(2, 6);
sessionStorage.setItem("webdemo.user", user);

const TCGSDK = createFakeTCGSDK({
  reconnectInterval: Number(params.get("sdkRetry") || 6000),
  reconnectAttempts: Number(params.get("sdkAttempts") || 10),
});

const $ = (id) => document.getElementById(id);
const t0 = performance.now();
const log = [];
function note(type, detail) {
  const line = { t: Math.round(performance.now() - t0), type, detail };
  log.push(line);
  const el = $("log");
  el.textContent += `${(line.t / 1000).toFixed(1).padStart(6)}s ${type} ${detail === undefined ? "" : JSON.stringify(detail)}\n`;
  el.scrollTop = el.scrollHeight;
}

$("user").textContent = user;
const game = $("game");
function show(cls, text, small) {
  game.className = cls;
  game.innerHTML = "";
  game.append(text);
  if (small) {
    const s = document.createElement("small");
    s.textContent = small;
    game.append(s);
  }
}

// --- the integration: a few lines ---
const car = startCAR({
  TCGSDK,
  init: { mount: "game" },
  startURL: "/api/start",
  refreshURL: "/api/refresh",
  startBody: { User: user },
  heartbeatURL: "/heartbeat",
});
// ---

let idleThreshold = 0;
let idleRelease = 0;
let idleTimer = null;
let ended = false;

car.on("lease", (l) => {
  idleThreshold = l.IdleThresholdMs;
  idleRelease = l.IdleRelease;
  note("lease", { queuePosition: l.QueuePosition, hasServerSession: !!l.ServerSession });
});
car.on("state", (d) => {
  note("heartbeat", d);
  $("hb-state").textContent = d.state + (d.why ? ` (${d.why})` : d.resumed ? " (resumed)" : "");
  if (d.state === "reconnecting") show("reconnecting", "reconnecting…", "the concurrency is kept for the grace window");
  if (d.state === "closed" || d.state === "expired") end(d.state === "expired" ? "expired: not back within the grace window" : d.why === "replaced" ? "replaced: this user opened another tab" : "closed: " + (d.why || d.reason));
});
car.on("queue", (d) => {
  note("queue", d);
  $("queue").textContent = d.position > 0 ? "#" + d.position : "–";
  if (d.position > 0 && !ended) show("queued", "waiting in the queue: #" + d.position, "every concurrency of the project is busy");
});
car.on("ready", (d) => {
  note("ready", { serverSession: d.serverSession ? d.serverSession.slice(0, 12) + "…" : undefined });
  $("queue").textContent = "admitted";
});
car.on("idle", (d) => {
  note("idle", d);
  clearInterval(idleTimer);
  const left = (idleRelease - d.times) * idleThreshold;
  if (idleRelease > 0 && left > 0) {
    const until = Date.now() + left;
    const tick = () => {
      const ms = Math.max(0, until - Date.now());
      $("idle").innerHTML = `<span class="warn">idle ${d.times}× — released in ${(ms / 1000).toFixed(1)} s unless you move</span>`;
    };
    tick();
    idleTimer = setInterval(tick, 100);
  } else {
    $("idle").innerHTML = `<span class="warn">idle ${d.times}×</span>`;
  }
});
car.on("released", (d) => {
  note("released", d);
  end("released: " + d.reason);
});
car.on("stream", (d) => {
  note("stream", d);
  $("stream").textContent = `${d.state} (${d.callback} ${d.code})`;
  if (d.state === "connected" && !ended) show("connected", "cloud stream connected", TCGSDK.__fake.concurrency);
  if ((d.state === "disconnected" || d.state === "reconnecting") && !ended) show("reconnecting", "stream " + d.state, `TCGSDK code ${d.code}`);
  if (d.state === "lost" && !ended) show("ended", "stream lost", `TCGSDK code ${d.code}`);
});
car.on("refresh", () => note("refresh", { clientSession: "fresh" }));
car.on("ignored", () => note("ignored", "a ready notice for a newer page of this user"));
car.on("error", (d) => {
  note("error", { during: d.during, error: String(d.error) });
  end("error: " + d.error.message);
});

function end(text) {
  ended = true;
  clearInterval(idleTimer);
  $("released").textContent = text;
  $("idle").textContent = "–";
  show("ended", text);
}

// Input clears the idle warning (the glue reports it to the backend).
for (const type of ["keydown", "pointerdown", "pointermove"]) {
  addEventListener(type, () => {
    if (idleTimer !== null && !ended) {
      clearInterval(idleTimer);
      idleTimer = null;
      $("idle").textContent = "active";
    }
  }, { capture: true, passive: true });
}

$("stop").onclick = async () => {
  await fetch("/api/stop", { method: "POST", body: JSON.stringify({ User: user }) });
};
$("new-user").onclick = () => open("/?user=user-" + Math.random().toString(36).slice(2, 6), "_blank");
$("same-user").onclick = () => open("/?user=" + encodeURIComponent(user), "_blank");

function pill(s) {
  return `<span class="pill ${s}">${s}</span>`;
}
function esc(s) {
  return String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}
async function poll() {
  try {
    const st = await (await fetch("/api/state")).json();
    $("car-table").innerHTML = (st.Concurrencies || []).map((c) => `<tr><td>${esc(c.Id)}</td><td>${pill(c.State)}</td><td>${esc(c.User)}</td></tr>`).join("");
    $("mgr-table").innerHTML = (st.Users || []).map((u) => `<tr><td>${esc(u.User)}</td><td>${pill(u.State)}</td><td>${u.QueuePosition || ""}</td><td>${u.IdleTimes || ""}</td><td>${esc(u.Stream)}</td></tr>`).join("") || `<tr><td colspan="5">nobody</td></tr>`;
    $("rel-table").innerHTML = (st.Releases || []).slice().reverse().map((r) => `<tr><td>${esc(r.User)}</td><td>${esc(r.Reason)}</td></tr>`).join("");
  } catch {
    /* the demo server stopped */
  }
}
poll();
setInterval(poll, 500);

// For the browser tests.
window.demo = { car, log, t0, user, TCGSDK, fake: TCGSDK.__fake };
