// heartbeat.js: the browser client of the tcc.heartbeat protocol (package
// github.com/tcconcurrency/sdk-go/heartbeat). One ES module, no build step,
// no dependencies; types in heartbeat.d.ts. The Go SDK serves it
// (heartbeat/web.Handler).
//
//   import { connect } from "/heartbeat/web/heartbeat.js";
//   const hb = connect({ url: "/heartbeat", session, token });   // from the backend's Start
//   hb.on("ready", ({ serverSession }) => TCGSDK.start(serverSession));
//
// What it does: it opens the WebSocket offering tcc.heartbeat.v2 then v1,
// says hello, keeps the latest resume token in sessionStorage (so a reload
// resumes the session), reconnects with full-jitter exponential backoff
// within the grace window the server states in its welcome (at once on the
// browser's "online" event and when the page becomes visible), stops on the
// final close codes 4000–4005 and says why, reports user activity as
// coalesced frames (touch), and reports the media stream's state
// (reportStream, protocol v2). Background tabs need nothing: the browser
// answers the server's pings itself, even while the page's code is
// throttled, frozen or busy, so the server never drops it (when Chromium
// runs a frozen tab again it may close the socket; the client resumes at once).

export const SUBPROTOCOL_V2 = "tcc.heartbeat.v2";
export const SUBPROTOCOL_V1 = "tcc.heartbeat.v1";

/** Close codes of the protocol (heartbeat/doc.go). */
export const Close = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  MESSAGE_TOO_BIG: 1009,
  PROTOCOL_ERROR: 4000,
  UNSUPPORTED_VERSION: 4001,
  UNAUTHORIZED: 4002,
  EXPIRED: 4003,
  REPLACED: 4004,
  RELEASED: 4005,
  PING_TIMEOUT: 4006,
});

const WHY = {
  4000: "protocol error",
  4001: "unsupported version",
  4002: "unauthorized",
  4003: "expired",
  4004: "replaced",
  4005: "released",
};

/** isFinal reports whether a close code forbids reconnecting (4000–4005). */
export function isFinal(code) {
  return code >= 4000 && code <= 4005;
}

/**
 * backoffDelay is the wait before reconnect attempt n (0, 1, 2…): "full
 * jitter", a uniformly random time in [0, min(cap, base·2^n)).
 */
export function backoffDelay(attempt, { base = 500, cap = 10000, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * activityIntervalFor keeps the activity interval below the idle threshold
 * (at most half of it, at least 100 ms), so an input is reported before the
 * server could count a threshold without it.
 */
export function activityIntervalFor(configured, idleThreshold) {
  if (!(idleThreshold > 0)) return configured;
  return Math.max(100, Math.min(configured, Math.floor(idleThreshold / 2)));
}

/**
 * Coalescer sends at most one frame per interval: the first touch at once
 * (leading edge), the touches during the interval as one frame at its end
 * (trailing edge).
 */
export class Coalescer {
  constructor(send, interval, { setTimeout: st = globalThis.setTimeout, clearTimeout: ct = globalThis.clearTimeout } = {}) {
    this._send = send;
    this.interval = interval;
    this._st = st;
    this._ct = ct;
    this._timer = null;
    this._pending = false;
  }

  /** touch records activity. It reports whether a frame went out now. */
  touch() {
    if (this._timer !== null) {
      this._pending = true;
      return false;
    }
    return this._fire();
  }

  /** flush sends pending activity at once (after a reconnect). */
  flush() {
    if (!this._pending) return false;
    this.cancel();
    return this._fire();
  }

  _fire() {
    this._pending = false;
    if (!this._send()) {
      this._pending = true; // not connected: remembered for the next connection
      return false;
    }
    this._timer = this._st(() => {
      this._timer = null;
      if (this._pending) this._fire();
    }, this.interval);
    return true;
  }

  /** cancel stops the interval, keeping what is pending. */
  cancel() {
    if (this._timer !== null) this._ct(this._timer);
    this._timer = null;
  }

  get pending() {
    return this._pending;
  }
}

function wsURL(url, loc) {
  const u = new URL(url, loc ? loc.href : undefined);
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new TypeError("heartbeat: url must be ws(s):// or http(s):// or a path, got " + url);
  return u.href;
}

function defaultStorage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null; // storage disabled
  }
}

/**
 * HeartbeatClient is one heartbeat session. Events (addEventListener, or
 * on(type, fn) with the detail): state, welcome, queue, ready, idle,
 * released, custom, notice (every server notice).
 */
export class HeartbeatClient extends EventTarget {
  constructor(options) {
    super();
    const o = options || {};
    if (!o.url) throw new TypeError("heartbeat: option url is required");
    if (!o.session) throw new TypeError("heartbeat: option session is required");
    this.session = String(o.session);
    this.url = wsURL(o.url, o.location ?? globalThis.location);
    this._joinToken = o.token ? String(o.token) : "";
    this._storage = o.storage === undefined ? defaultStorage() : o.storage;
    this._storageKey = o.storageKey ?? "tcc.heartbeat:" + this.session;
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this._now = o.now ?? (() => Date.now());
    this._st = o.setTimeout ?? globalThis.setTimeout.bind(globalThis);
    this._ct = o.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
    this._random = o.random ?? Math.random;
    this._backoff = { base: o.backoff?.base ?? 500, cap: o.backoff?.cap ?? 10000 };
    this._defaultGrace = o.grace ?? 90000;
    this._connectTimeout = o.connectTimeout ?? 10000;
    this._configuredInterval = o.activityInterval ?? 5000;
    this._protocols = o.protocols ?? [SUBPROTOCOL_V2, SUBPROTOCOL_V1];
    this._window = o.window === undefined ? globalThis.window : o.window;
    this._document = o.document === undefined ? globalThis.document : o.document;

    this.state = "idle"; // before start
    this.version = 0; // negotiated protocol version
    this.welcome = null;
    this.closeCode = 0;
    this.closeReason = "";
    this.why = "";
    this._ws = null;
    this._token = "";
    this._tokenSource = "";
    this._attempt = 0;
    this._retryTimer = null;
    this._connectTimer = null;
    this._windowEnd = 0;
    this._grace = this._defaultGrace;
    this._releasedReason = null;
    this._offlineSeen = false;
    this._stream = null; // latest stream report {state, code}
    this._streamSent = null;
    this._unbinds = [];
    this._coalescer = new Coalescer(() => this._sendRaw('{"type":"activity"}'), this._configuredInterval, {
      setTimeout: this._st,
      clearTimeout: this._ct,
    });
  }

  /** on subscribes fn to events of type with their detail; returns an unsubscribe function. */
  on(type, fn) {
    const h = (e) => fn(e.detail);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, extra) {
    const previous = this.state;
    if (previous === state) return;
    this.state = state;
    this._emit("state", { state, previous, ...extra });
  }

  get final() {
    return this.state === "expired" || this.state === "closed" || this.state === "released";
  }

  /** start connects; it picks the stored resume token of this session, if any. */
  start() {
    if (this.state !== "idle") return this;
    const stored = this._load();
    if (stored && stored.token && stored.token !== this._joinToken) {
      this._token = stored.token;
      this._tokenSource = "stored";
    } else if (this._joinToken) {
      this._token = this._joinToken;
      this._tokenSource = "join";
    } else {
      this._finish("closed", 0, "no token: pass the token from the backend's Start", "no token");
      return this;
    }
    this._windowEnd = this._now() + this._defaultGrace;
    this._listen();
    this._setState("connecting", { tokenSource: this._tokenSource });
    this._open();
    return this;
  }

  _load() {
    if (!this._storage) return null;
    try {
      const v = JSON.parse(this._storage.getItem(this._storageKey) || "null");
      return v && v.session === this.session ? v : null;
    } catch {
      return null;
    }
  }

  _save() {
    if (!this._storage) return;
    try {
      this._storage.setItem(this._storageKey, JSON.stringify({ session: this.session, token: this._token, url: this.url }));
    } catch {
      /* quota or disabled: a reload then needs a fresh token */
    }
  }

  _forget() {
    if (!this._storage) return;
    try {
      this._storage.removeItem(this._storageKey);
    } catch {
      /* ignore */
    }
  }

  _listen() {
    const w = this._window;
    if (w && w.addEventListener) {
      const online = () => this._online();
      const offline = () => {
        this._offlineSeen = true;
      };
      w.addEventListener("online", online);
      w.addEventListener("offline", offline);
      this._unbinds.push(() => {
        w.removeEventListener("online", online);
        w.removeEventListener("offline", offline);
      });
    }
    const d = this._document;
    if (d && d.addEventListener) {
      const vis = () => {
        if (d.visibilityState === "visible") this.retryNow();
      };
      d.addEventListener("visibilitychange", vis);
      this._unbinds.push(() => d.removeEventListener("visibilitychange", vis));
    }
  }

  _online() {
    if (this.state === "connected" && this._offlineSeen) {
      // The socket may have stalled while offline without the browser
      // noticing: resume on a fresh one (the server replaces the old).
      this._offlineSeen = false;
      this._drop("network back online");
      this.retryNow();
      return;
    }
    this.retryNow();
  }

  /** retryNow makes a waiting reconnect attempt happen at once. */
  retryNow() {
    if (this.state !== "reconnecting" || this._ws) return;
    if (this._retryTimer !== null) this._ct(this._retryTimer);
    this._retryTimer = null;
    this._open();
  }

  _open() {
    this._retryTimer = null;
    let ws;
    try {
      ws = new this._WebSocket(this.url, this._protocols);
    } catch (err) {
      this._finish("closed", 0, String(err && err.message ? err.message : err), "bad url");
      return;
    }
    this._ws = ws;
    this._welcomed = false;
    const timeout = Math.max(1, Math.min(this._connectTimeout, this._windowEnd - this._now()));
    this._connectTimer = this._st(() => {
      this._connectTimer = null;
      if (this._ws === ws && !this._welcomed) this._drop("no welcome within " + timeout + " ms");
    }, timeout);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this.version = ws.protocol === SUBPROTOCOL_V2 ? 2 : 1;
      ws.send(JSON.stringify({ type: "hello", v: this.version, session: this.session, token: this._token }));
    };
    ws.onmessage = (e) => {
      if (this._ws === ws) this._frame(e.data);
    };
    ws.onclose = (e) => {
      if (this._ws === ws) this._closed(e.code, e.reason || "");
    };
    ws.onerror = () => {}; // a close event follows
  }

  _frame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (!f || typeof f.type !== "string") return;
    switch (f.type) {
      case "welcome":
        this._welcome(f);
        return;
      case "queue":
        this._emit("queue", { position: f.position });
        break;
      case "ready": {
        const d = f.data;
        const serverSession = d && typeof d === "object" ? d.ServerSession : typeof d === "string" ? d : undefined;
        this._emit("ready", { data: d, serverSession });
        break;
      }
      case "idle":
        this._emit("idle", { times: f.times, threshold: this.welcome ? this.welcome.idleThreshold : undefined });
        break;
      case "released":
        this._releasedReason = f.reason ?? "";
        this._emit("released", { reason: this._releasedReason });
        break;
      case "custom":
        this._emit("custom", { name: f.name, data: f.data });
        break;
      default:
        return; // unknown server frames are ignored
    }
    this._emit("notice", f);
  }

  _welcome(f) {
    this._welcomed = true;
    if (this._connectTimer !== null) this._ct(this._connectTimer);
    this._connectTimer = null;
    this.welcome = f;
    this._token = f.token;
    this._tokenSource = "resume";
    this._save();
    this._attempt = 0;
    if (f.grace > 0) this._grace = f.grace;
    this._coalescer.interval = activityIntervalFor(this._configuredInterval, f.idleThreshold);
    this._offlineSeen = false;
    this._streamSent = null;
    this._setState("connected", { resumed: !!f.resumed, version: this.version });
    this._emit("welcome", { resumed: !!f.resumed, version: this.version, pingInterval: f.pingInterval, grace: f.grace, idleThreshold: f.idleThreshold });
    this._coalescer.flush();
    this._flushStream();
  }

  _closed(code, reason) {
    this._ws = null;
    if (this._connectTimer !== null) this._ct(this._connectTimer);
    this._connectTimer = null;
    this._coalescer.cancel();
    if (this.final) return;
    if (this._releasedReason !== null || code === Close.RELEASED) {
      const r = this._releasedReason ?? reason;
      this._finish("released", code, r, "released");
      return;
    }
    if (code === Close.UNAUTHORIZED && this._tokenSource === "stored" && this._joinToken) {
      // The stored token was superseded (another tab, or an older reload):
      // the backend's fresh join token still works.
      this._token = this._joinToken;
      this._tokenSource = "join";
      this._open();
      return;
    }
    if (isFinal(code)) {
      this._finish(code === Close.EXPIRED ? "expired" : "closed", code, reason, WHY[code]);
      return;
    }
    this._outage(code, reason);
  }

  _outage(code, reason) {
    const now = this._now();
    if (this.state === "connected") {
      this._windowEnd = now + this._grace;
      this._attempt = 0;
      this._setState("reconnecting", { code, reason });
    } else if (this.state === "connecting") {
      this._setState("reconnecting", { code, reason });
    }
    if (now >= this._windowEnd) {
      this._finish("expired", code, "not resumed within the grace window", "grace window passed");
      return;
    }
    const delay = Math.min(backoffDelay(this._attempt++, { ...this._backoff, random: this._random }), this._windowEnd - now);
    this._retryTimer = this._st(() => this._open(), delay);
  }

  _drop(why) {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    try {
      ws.close(Close.NORMAL, why.slice(0, 120));
    } catch {
      /* already closing */
    }
    this._closed(1006, why);
  }

  _finish(state, code, reason, why) {
    this.closeCode = code;
    this.closeReason = reason;
    this.why = why;
    if (this._retryTimer !== null) this._ct(this._retryTimer);
    if (this._connectTimer !== null) this._ct(this._connectTimer);
    this._retryTimer = this._connectTimer = null;
    this._coalescer.cancel();
    for (const u of this._unbinds.splice(0)) u();
    this._forget(); // a final state leaves no token worth resuming with
    this._setState(state, { code, reason, why });
  }

  _sendRaw(text) {
    const ws = this._ws;
    if (!ws || !this._welcomed || ws.readyState !== 1) return false;
    try {
      ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /** touch reports user activity: at most one frame per activity interval. */
  touch() {
    if (this.final) return;
    this._coalescer.touch();
  }

  /**
   * reportStream tells the backend the media stream's state ("connected",
   * "disconnected", "reconnecting", "lost") and the stream SDK's code. It
   * returns false when the server speaks protocol v1 (no stream frames).
   * While disconnected, the latest report waits for the next connection.
   */
  reportStream(state, code = 0) {
    if (this.final) return false;
    if (this.version === 1) return false;
    this._stream = { state, code: Number.isInteger(code) ? code : 0 };
    this._flushStream();
    return true;
  }

  _flushStream() {
    const r = this._stream;
    if (!r || this.version !== 2) return;
    if (this._streamSent && this._streamSent.state === r.state && this._streamSent.code === r.code) return;
    if (this._sendRaw(JSON.stringify({ type: "stream", state: r.state, code: r.code }))) this._streamSent = r;
  }

  /**
   * bindInput touches on keyboard, pointer, wheel and touch input on target
   * (default window), and on gamepad input while a gamepad is connected.
   * It returns a function that removes the binding.
   */
  bindInput(target, { gamepadPoll = 250 } = {}) {
    const t = target ?? this._window;
    if (!t || !t.addEventListener) return () => {};
    const touch = () => this.touch();
    const types = ["keydown", "pointerdown", "pointermove", "wheel", "touchstart"];
    for (const type of types) t.addEventListener(type, touch, { capture: true, passive: true });
    const nav = globalThis.navigator;
    let poll = null;
    const stamps = new Map();
    const pollPads = () => {
      const pads = nav && nav.getGamepads ? nav.getGamepads() : [];
      let any = false;
      for (const p of pads) {
        if (!p) continue;
        any = true;
        if (stamps.has(p.index) && stamps.get(p.index) !== p.timestamp) touch();
        stamps.set(p.index, p.timestamp);
      }
      if (!any && poll !== null) {
        clearInterval(poll);
        poll = null;
      }
    };
    const padOn = () => {
      touch();
      if (poll === null) poll = setInterval(pollPads, gamepadPoll);
    };
    const w = this._window;
    if (w && w.addEventListener) w.addEventListener("gamepadconnected", padOn);
    const unbind = () => {
      for (const type of types) t.removeEventListener(type, touch, { capture: true });
      if (w && w.removeEventListener) w.removeEventListener("gamepadconnected", padOn);
      if (poll !== null) clearInterval(poll);
      poll = null;
    };
    this._unbinds.push(unbind);
    return unbind;
  }

  /** close ends the session from the page (close code 1000); final. */
  close() {
    if (this.final) return;
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(Close.NORMAL, "closed by the page");
      } catch {
        /* ignore */
      }
    }
    this._finish("closed", Close.NORMAL, "closed by the page", "closed by the page");
  }
}

/** connect creates a HeartbeatClient and starts it. */
export function connect(options) {
  return new HeartbeatClient(options).start();
}
