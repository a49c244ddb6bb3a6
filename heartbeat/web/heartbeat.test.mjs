// Unit tests of heartbeat.js and tcgsdk.js: node --test heartbeat/web/
// A fake clock and a fake WebSocket stand in for the browser.
import { test } from "node:test";
import assert from "node:assert/strict";

import { backoffDelay, activityIntervalFor, Coalescer, HeartbeatClient, isFinal } from "./heartbeat.js";
import { streamReportFor, CARSession } from "./tcgsdk.js";

// Clock: timers fire in due order when advanced.
class Clock {
  constructor() {
    this.t = 1_000_000;
    this.timers = new Map();
    this.seq = 0;
  }
  now = () => this.t;
  setTimeout = (fn, ms) => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn, id });
    return id;
  };
  clearTimeout = (id) => this.timers.delete(id);
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const tm of this.timers.values()) if (tm.at <= end && (!next || tm.at < next.at || (tm.at === next.at && tm.id < next.id))) next = tm;
      if (!next) break;
      this.timers.delete(next.id);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

// Fake WebSocket: the test plays the server.
function fakeWebSocket() {
  const sockets = [];
  class FakeWS {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.protocol = "";
      sockets.push(this);
    }
    send(t) {
      if (this.readyState !== 1) throw new Error("not open");
      this.sent.push(JSON.parse(t));
    }
    close(code, reason) {
      this.readyState = 3;
      this.closedBy = { code, reason };
    }
    // server side
    open(protocol = "tcc.heartbeat.v2") {
      this.protocol = protocol;
      this.readyState = 1;
      this.onopen?.();
    }
    msg(f) {
      this.onmessage?.({ data: JSON.stringify(f) });
    }
    welcome(extra = {}) {
      this.msg({ type: "welcome", v: 2, session: "s1", token: "resume-" + sockets.indexOf(this), resumed: false, pingInterval: 1000, pingTimeout: 2000, grace: 5000, idleThreshold: 3000, ...extra });
    }
    drop(code = 1006, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  return { FakeWS, sockets };
}

class MemStorage {
  m = new Map();
  getItem(k) {
    return this.m.has(k) ? this.m.get(k) : null;
  }
  setItem(k, v) {
    this.m.set(k, String(v));
  }
  removeItem(k) {
    this.m.delete(k);
  }
}

function newClient(opts = {}) {
  const clock = new Clock();
  const { FakeWS, sockets } = fakeWebSocket();
  const storage = opts.storage ?? new MemStorage();
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
  const c = new HeartbeatClient({
    url: "ws://app.test/heartbeat",
    session: "s1",
    token: "join-token",
    WebSocket: FakeWS,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    storage,
    window: win,
    document: doc,
    ...opts,
  });
  const states = [];
  c.on("state", (d) => states.push(d.state));
  return { c, clock, sockets, storage, win, doc, states };
}

test("backoffDelay is full jitter under an exponential ceiling", () => {
  for (let n = 0; n < 12; n++) {
    const ceiling = Math.min(10000, 500 * 2 ** n);
    assert.equal(backoffDelay(n, { random: () => 0 }), 0);
    assert.equal(backoffDelay(n, { random: () => 0.999999 }), ceiling - 1);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(n);
      assert.ok(d >= 0 && d < ceiling, `attempt ${n}: ${d} outside [0, ${ceiling})`);
    }
  }
  assert.equal(backoffDelay(1000, { random: () => 0.5, cap: 8000 }), 4000);
});

test("activity interval stays below the idle threshold", () => {
  assert.equal(activityIntervalFor(5000, 300000), 5000);
  assert.equal(activityIntervalFor(5000, 3000), 1500);
  assert.equal(activityIntervalFor(5000, 100), 100);
  assert.equal(activityIntervalFor(5000, undefined), 5000);
});

test("Coalescer sends at most one frame per interval, leading and trailing", () => {
  const clock = new Clock();
  const sent = [];
  const co = new Coalescer(() => (sent.push(clock.t), true), 1000, clock);
  const t0 = clock.t;
  assert.equal(co.touch(), true); // leading edge
  for (let i = 0; i < 20; i++) {
    clock.advance(40);
    co.touch();
  }
  assert.deepEqual(sent, [t0]);
  clock.advance(1000);
  assert.deepEqual(sent, [t0, t0 + 1000]); // one trailing frame for 20 touches
  clock.advance(5000);
  assert.equal(sent.length, 2, "no frame without touches");
  co.touch();
  assert.equal(sent.length, 3);
  for (let i = 1; i < sent.length; i++) assert.ok(sent[i] - sent[i - 1] >= 1000);
});

test("Coalescer keeps activity while it cannot send", () => {
  const clock = new Clock();
  let up = false;
  let n = 0;
  const co = new Coalescer(() => up && ++n > 0, 1000, clock);
  co.touch();
  assert.equal(co.pending, true);
  up = true;
  assert.equal(co.flush(), true);
  assert.equal(n, 1);
});

test("hello, welcome, resume token stored; the stored token is used after a reload", () => {
  const { c, sockets, storage } = newClient();
  c.start();
  const ws = sockets[0];
  assert.deepEqual(ws.protocols, ["tcc.heartbeat.v2", "tcc.heartbeat.v1"]);
  ws.open();
  assert.deepEqual(ws.sent[0], { type: "hello", v: 2, session: "s1", token: "join-token" });
  ws.welcome({ token: "R1" });
  assert.equal(c.state, "connected");
  assert.equal(JSON.parse(storage.getItem("tcc.heartbeat:s1")).token, "R1");

  // A reload: a new client with a fresh join token from Start prefers the stored resume token.
  const r = newClient({ storage, token: "join-2" });
  let source;
  r.c.on("state", (d) => d.state === "connecting" && (source = d.tokenSource));
  r.c.start();
  r.sockets[0].open();
  assert.equal(source, "stored");
  assert.equal(r.sockets[0].sent[0].token, "R1");
  // Refused (superseded): falls back to the join token at once.
  r.sockets[0].drop(4002, "token already used or superseded");
  assert.equal(r.sockets.length, 2);
  r.sockets[1].open();
  assert.equal(r.sockets[1].sent[0].token, "join-2");
  r.sockets[1].welcome({ resumed: true });
  assert.equal(r.c.state, "connected");
});

test("v1 server: hello says v 1 and no stream frames are sent", () => {
  const { c, sockets } = newClient();
  c.start();
  sockets[0].open("tcc.heartbeat.v1");
  assert.equal(sockets[0].sent[0].v, 1);
  sockets[0].welcome({ v: 1 });
  assert.equal(c.reportStream("lost", -3), false);
  assert.equal(sockets[0].sent.length, 1);
});

test("reconnects with backoff bounded by the grace window, then expires", () => {
  const { c, clock, sockets, states } = newClient({ random: () => 0.999 });
  c.start();
  sockets[0].open();
  sockets[0].welcome({ grace: 5000 });
  const lost = clock.t;
  sockets[0].drop(1006);
  assert.equal(c.state, "reconnecting");
  const attempts = [];
  for (let i = 0; i < 2000 && !c.final; i++) {
    const before = sockets.length;
    clock.advance(10);
    if (sockets.length > before) {
      attempts.push(clock.t - lost);
      sockets.at(-1).drop(1006); // the network is still down
    }
  }
  assert.equal(c.state, "expired");
  assert.equal(c.why, "grace window passed");
  assert.ok(attempts.length >= 3, `attempts ${attempts}`);
  assert.ok(attempts.every((a) => a <= 5000), `attempt after the window: ${attempts}`);
  for (let i = 1; i < attempts.length; i++) {
    const gap = attempts[i] - attempts[i - 1];
    assert.ok(gap <= Math.min(10000, 500 * 2 ** i) + 10, `gap ${gap} of attempt ${i}`);
  }
  assert.deepEqual(states, ["connecting", "connected", "reconnecting", "expired"]);
});

test("a resume within the window reconnects and resets the backoff", () => {
  const { c, clock, sockets } = newClient({ random: () => 0.5 });
  c.start();
  sockets[0].open();
  sockets[0].welcome();
  sockets[0].drop(4006, "ping timeout");
  clock.advance(300);
  assert.equal(sockets.length, 2);
  sockets[1].open();
  assert.equal(sockets[1].sent[0].token, "resume-0");
  sockets[1].welcome({ resumed: true });
  assert.equal(c.state, "connected");
  assert.equal(c._attempt, 0);
});

test("online and visibility retry at once", () => {
  const { c, clock, sockets, win, doc } = newClient({ random: () => 0.999, backoff: { base: 4000 } });
  c.start();
  sockets[0].open();
  sockets[0].welcome({ grace: 60000 });
  sockets[0].drop(1006);
  clock.advance(100); // the first retry is due ~4 s later
  assert.equal(sockets.length, 1);
  win.dispatchEvent(new Event("online"));
  assert.equal(sockets.length, 2, "online retried at once");
  sockets[1].drop(1006);
  clock.advance(100);
  assert.equal(sockets.length, 2);
  doc.dispatchEvent(new Event("visibilitychange"));
  assert.equal(sockets.length, 3, "visible retried at once");
  assert.equal(c.state, "reconnecting");
});

test("online after offline replaces a possibly stalled connection", () => {
  const { c, sockets, win } = newClient();
  c.start();
  sockets[0].open();
  sockets[0].welcome();
  win.dispatchEvent(new Event("offline"));
  win.dispatchEvent(new Event("online"));
  assert.equal(sockets[0].readyState, 3);
  assert.equal(sockets.length, 2);
  assert.equal(c.state, "reconnecting");
});

test("final close codes stop and say why", () => {
  for (const [code, state, why] of [
    [4000, "closed", "protocol error"],
    [4001, "closed", "unsupported version"],
    [4002, "closed", "unauthorized"],
    [4003, "expired", "expired"],
    [4004, "closed", "replaced"],
    [4005, "released", "released"],
  ]) {
    const { c, clock, sockets, storage } = newClient();
    c.start();
    sockets[0].open();
    sockets[0].welcome();
    sockets[0].drop(code, "reason " + code);
    clock.advance(60000);
    assert.equal(c.state, state, `code ${code}`);
    assert.equal(c.why, why);
    assert.equal(sockets.length, 1, `code ${code} reconnected`);
    assert.equal(storage.getItem("tcc.heartbeat:s1"), null, "token forgotten");
    assert.ok(isFinal(code));
  }
  assert.equal(isFinal(4006), false);
  assert.equal(isFinal(1001), false);
});

test("notices become events; released carries its reason", () => {
  const { c, sockets } = newClient();
  const got = [];
  for (const t of ["queue", "ready", "idle", "custom", "released"]) c.on(t, (d) => got.push([t, d]));
  c.start();
  sockets[0].open();
  sockets[0].welcome();
  sockets[0].msg({ type: "queue", position: 3 });
  sockets[0].msg({ type: "ready", data: { ServerSession: "SS" } });
  sockets[0].msg({ type: "idle", times: 1 });
  sockets[0].msg({ type: "custom", name: "n", data: [1] });
  sockets[0].msg({ type: "released", reason: "idle" });
  sockets[0].drop(4005, "idle");
  assert.deepEqual(got, [
    ["queue", { position: 3 }],
    ["ready", { data: { ServerSession: "SS" }, serverSession: "SS" }],
    ["idle", { times: 1, threshold: 3000 }],
    ["custom", { name: "n", data: [1] }],
    ["released", { reason: "idle" }],
  ]);
  assert.equal(c.state, "released");
  assert.equal(c.closeReason, "idle");
});

test("touch is coalesced to one frame per interval, below the idle threshold", () => {
  const { c, clock, sockets } = newClient({ activityInterval: 5000 });
  c.start();
  sockets[0].open();
  sockets[0].welcome({ idleThreshold: 3000 }); // interval becomes 1500
  const frames = () => sockets[0].sent.filter((f) => f.type === "activity").length;
  for (let i = 0; i < 30; i++) {
    c.touch();
    clock.advance(100);
  }
  // 3 s of constant input at one frame per 1.5 s: leading + 2 trailing.
  assert.equal(frames(), 3);
  clock.advance(10000);
  assert.equal(frames(), 3);
});

test("stream reports: latest one sent on connect, repeats suppressed", () => {
  const { c, sockets } = newClient();
  c.start();
  sockets[0].open();
  sockets[0].welcome();
  assert.equal(c.reportStream("connected", 0), true);
  c.reportStream("connected", 0);
  sockets[0].drop(1006);
  c.reportStream("reconnecting", -2);
  c.reportStream("lost", -3);
  c.retryNow();
  sockets[1].open();
  sockets[1].welcome({ resumed: true });
  const streams = (ws) => ws.sent.filter((f) => f.type === "stream");
  assert.deepEqual(streams(sockets[0]), [{ type: "stream", state: "connected", code: 0 }]);
  assert.deepEqual(streams(sockets[1]), [{ type: "stream", state: "lost", code: -3 }]);
});

test("TCGSDK codes map to stream states", () => {
  assert.deepEqual(streamReportFor("onConnectSuccess", 0), { state: "connected", code: 0 });
  for (const code of [1, 2, -1, 0]) assert.deepEqual(streamReportFor("onDisconnect", code), { state: "disconnected", code });
  assert.deepEqual(streamReportFor("onDisconnect", -2), { state: "lost", code: -2 });
  assert.deepEqual(streamReportFor("onConnectFail", -2), { state: "reconnecting", code: -2 });
  assert.deepEqual(streamReportFor("onConnectFail", -1), { state: "reconnecting", code: -1 });
  assert.deepEqual(streamReportFor("onConnectFail", -3), { state: "lost", code: -3 });
  assert.deepEqual(streamReportFor("onConnectFail", 105), { state: "lost", code: 105 });
  assert.equal(streamReportFor("onEvent", 0), null);
});

test("glue: init, lease, heartbeat, TCGSDK.start once per ServerSession, input counts", async () => {
  const calls = [];
  const sdk = {
    init(cfg) {
      calls.push("init");
      this.cfg = cfg;
      queueMicrotask(() => cfg.onInitSuccess({ code: 0 }));
    },
    getClientSession: () => "CS",
    start: (ss) => calls.push("start " + ss),
    destroy: () => calls.push("destroy"),
    sendKeyboardEvent: () => calls.push("key"),
  };
  const { FakeWS, sockets } = fakeWebSocket();
  const clock = new Clock();
  let appInit = 0;
  const car = new CARSession({
    TCGSDK: sdk,
    init: { mount: "game", onInitSuccess: () => appInit++ },
    start: async (cs) => (calls.push("lease " + cs), { HeartbeatSession: "s1", HeartbeatToken: "T", ServerSession: "SS1", QueuePosition: 0 }),
    heartbeatURL: "ws://app.test/hb",
    bindInput: false,
    heartbeat: { WebSocket: FakeWS, storage: null, now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, window: null, document: null },
  }).begin();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(appInit, 1, "the app's own callback still runs");
  const ws = sockets[0];
  ws.open();
  ws.welcome();
  ws.msg({ type: "ready", data: { ServerSession: "SS1" } }); // same as the lease's: not started twice
  assert.deepEqual(calls, ["init", "lease CS", "start SS1"]);
  sdk.cfg.onConnectSuccess({ code: 0 });
  sdk.sendKeyboardEvent({ key: 65, down: true });
  sdk.cfg.onConnectFail({ code: -3 });
  const sent = ws.sent.slice(1);
  assert.deepEqual(sent, [
    { type: "stream", state: "connected", code: 0 },
    { type: "activity" },
    { type: "stream", state: "lost", code: -3 },
  ]);
  ws.msg({ type: "ready", data: { ServerSession: "SS2" } }); // a restart brings a new one
  assert.equal(calls.at(-1), "start SS2");
  sdk.cfg.onConnectSuccess({ code: 0 });
  ws.msg({ type: "ready", data: { ServerSession: "SS3" } }); // a newer page's, while this stream runs
  assert.equal(calls.at(-1), "start SS2", "a running stream is not taken over");
  sdk.cfg.onDisconnect({ code: 1 });
  ws.msg({ type: "ready", data: { ServerSession: "SS3" } }); // after another connection took it
  assert.equal(calls.at(-1), "start SS2");
  ws.msg({ type: "released", reason: "stream lost" });
  ws.drop(4005, "stream lost");
  assert.equal(calls.at(-1), "destroy");
  assert.equal(car.heartbeat.state, "released");
});

test("bindInput touches on keyboard, pointer and gamepad input, and unbinds", async () => {
  const { c, sockets, win } = newClient({ activityInterval: 1 });
  c.start();
  sockets[0].open();
  sockets[0].welcome({ idleThreshold: 100000 });
  const target = new EventTarget();
  let pads = [];
  const nav = globalThis.navigator;
  Object.defineProperty(globalThis, "navigator", { value: { getGamepads: () => pads }, configurable: true });
  try {
    let touches = 0;
    const orig = c.touch.bind(c);
    c.touch = () => {
      touches++;
      orig();
    };
    const unbind = c.bindInput(target, { gamepadPoll: 5 });
    target.dispatchEvent(new Event("keydown"));
    target.dispatchEvent(new Event("pointerdown"));
    assert.equal(touches, 2);
    pads = [{ index: 0, timestamp: 1 }];
    win.dispatchEvent(new Event("gamepadconnected"));
    assert.equal(touches, 3);
    await new Promise((r) => setTimeout(r, 20)); // first poll records the timestamp
    pads = [{ index: 0, timestamp: 2 }]; // a button moved
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(touches >= 4, `gamepad input not seen (${touches})`);
    unbind();
    const n = touches;
    target.dispatchEvent(new Event("keydown"));
    pads = [{ index: 0, timestamp: 3 }];
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(touches, n, "input after unbind");
  } finally {
    Object.defineProperty(globalThis, "navigator", { value: nav, configurable: true });
  }
});
