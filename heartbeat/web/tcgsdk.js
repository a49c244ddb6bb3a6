// tcgsdk.js: wires TCGSDK (Tencent Cloud CAR's web SDK) to the heartbeat
// client and the backend's car.SessionManager, in a few lines. Types in
// tcgsdk.d.ts.
//
//   import { startCAR } from "/heartbeat/web/tcgsdk.js";
//   startCAR({ TCGSDK, init: { mount: "game" }, startURL: "/api/start", heartbeatURL: "/heartbeat" });
//
// It calls TCGSDK.init, then on onInitSuccess posts
// {"ClientSession": TCGSDK.getClientSession()} to startURL, whose JSON
// answer is the car.Lease as the backend encodes it
// ({"HeartbeatSession","HeartbeatToken","ServerSession","QueuePosition"});
// connects the heartbeat; calls TCGSDK.start(serverSession) when the lease
// or a "ready" notice brings a ServerSession (once per ServerSession);
// counts TCGSDK input and page input as activity; reports TCGSDK's stream
// callbacks to the backend as stream frames; and, with refreshURL, hands a
// queued user's fresh ClientSession to the backend
// (car.SessionManager.RefreshClientSession). When the manager restarts a
// lost stream (car.StreamLostRestart), its new "ready" notice starts TCGSDK
// with the new ServerSession.

import { HeartbeatClient } from "./heartbeat.js";

/**
 * streamReportFor maps a TCGSDK callback and its code to the stream
 * frame's state (heartbeat/doc.go, "Stream frames").
 */
export function streamReportFor(callback, code) {
  const c = Number.isInteger(code) ? code : 0;
  switch (callback) {
    case "onConnectSuccess":
      return { state: "connected", code: 0 };
    case "onDisconnect":
      // -2 create offer failed: TCGSDK must init again; the others (1
      // repeated connection, 2 heartbeat timeout, -1 reconnecting, 0
      // server closed) are hints.
      return c === -2 ? { state: "lost", code: c } : { state: "disconnected", code: c };
    case "onConnectFail":
      // -3 retries exhausted and > 0 proxy errors need init + CreateSession
      // again; -2 (auto reconnecting) and -1 (retry later) are retries.
      return c === -3 || c > 0 ? { state: "lost", code: c } : { state: "reconnecting", code: c };
  }
  return null;
}

// TCGSDK's methods that send user input to the cloud: each call counts as
// activity.
const INPUT_METHODS = ["sendKeyboardEvent", "sendMouseEvent", "sendGamepadEvent", "sendRawEvent", "sendSeqRawEvents", "mouseMove", "mobileTouchMove", "sendText"];

const FORWARDED = ["state", "welcome", "queue", "ready", "idle", "released", "custom", "notice"];

/**
 * CARSession is a page's CAR session: TCGSDK, the lease and the
 * heartbeat. Events (on or addEventListener): the heartbeat's (state,
 * welcome, queue, ready, idle, released, custom, notice), plus lease (the
 * backend's answer), stream (a TCGSDK stream callback, as reported), and
 * error ({error, during}).
 */
export class CARSession extends EventTarget {
  constructor(options) {
    super();
    const o = options || {};
    this.TCGSDK = o.TCGSDK ?? globalThis.TCGSDK;
    if (!this.TCGSDK) throw new TypeError("startCAR: TCGSDK is not loaded (pass options.TCGSDK)");
    if (!o.start && !o.startURL) throw new TypeError("startCAR: options.startURL (or options.start) is required");
    this.options = o;
    this.lease = null;
    this.heartbeat = null;
    this.serverSession = "";
    this.stream = null; // latest {state, code, callback}
    this._restore = [];
    this._ended = false;
    this._refreshTimer = null;
  }

  on(type, fn) {
    const h = (e) => fn(e.detail);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** begin initialises TCGSDK; the rest follows from its callbacks. */
  begin() {
    const o = this.options;
    const init = { ...(o.init || {}) };
    const chain = (name, mine) => {
      const app = init[name];
      init[name] = (r) => {
        try {
          mine(r || {});
        } finally {
          if (typeof app === "function") app(r);
        }
      };
    };
    chain("onInitSuccess", (r) => {
      if (r.code === undefined || r.code === 0) this._lease().catch((error) => this._emit("error", { error, during: "start" }));
      else this._emit("error", { error: new Error("TCGSDK init failed with code " + r.code), during: "init" });
    });
    for (const name of ["onConnectSuccess", "onDisconnect", "onConnectFail"]) {
      chain(name, (r) => this._streamEvent(name, r.code));
    }
    this._wrapInput();
    this.TCGSDK.init(init);
    return this;
  }

  _wrapInput() {
    const sdk = this.TCGSDK;
    for (const name of INPUT_METHODS) {
      const orig = sdk[name];
      if (typeof orig !== "function") continue;
      sdk[name] = (...args) => {
        this.touch();
        return orig.apply(sdk, args);
      };
      this._restore.push(() => {
        sdk[name] = orig;
      });
    }
  }

  async _lease() {
    const o = this.options;
    const clientSession = this.TCGSDK.getClientSession();
    let lease;
    if (o.start) {
      lease = await o.start(clientSession);
    } else {
      const res = await fetch(o.startURL, {
        method: "POST",
        credentials: "same-origin",
        ...(o.fetchInit || {}),
        headers: { "Content-Type": "application/json", ...((o.fetchInit && o.fetchInit.headers) || {}) },
        body: JSON.stringify({ ...(o.startBody || {}), ClientSession: clientSession }),
      });
      if (!res.ok) throw new Error("start: HTTP " + res.status + " " + (await res.text()).slice(0, 200));
      lease = await res.json();
    }
    if (!lease || !lease.HeartbeatSession || !lease.HeartbeatToken) throw new Error("start: the answer is not a car.Lease (HeartbeatSession and HeartbeatToken are required)");
    if (this._ended) return;
    this.lease = lease;
    this._emit("lease", lease);
    const hb = new HeartbeatClient({
      ...(o.heartbeat || {}),
      url: lease.HeartbeatURL || o.heartbeatURL || "/heartbeat",
      session: lease.HeartbeatSession,
      token: lease.HeartbeatToken,
    });
    this.heartbeat = hb;
    for (const type of FORWARDED) hb.on(type, (d) => this._emit(type, d));
    hb.on("ready", (d) => {
      if (d.serverSession) this._ready(d.serverSession);
    });
    hb.on("state", (d) => {
      if (hb.final) this._end(d);
    });
    if (o.refreshURL) {
      // A ClientSession is valid for one TCGSDK.init: while the user waits,
      // the glue hands the backend a fresh one (RefreshClientSession) when
      // it reaches the head of the queue, and every refreshEvery after.
      hb.on("queue", (d) => this._queued(d.position));
      hb.on("ready", () => this._queued(0));
    }
    if (o.bindInput !== false) hb.bindInput(o.inputTarget);
    if (lease.QueuePosition > 0) {
      this._emit("queue", { position: lease.QueuePosition });
      if (o.refreshURL) this._queued(lease.QueuePosition);
    }
    hb.start();
    if (this.stream) hb.reportStream(this.stream.state, this.stream.code);
    if (lease.ServerSession) this._startStream(lease.ServerSession);
  }

  _queued(position) {
    const o = this.options;
    if (position !== 1 || this._ended) {
      if (position === 0 && this._refreshTimer) clearInterval(this._refreshTimer);
      if (position === 0) this._refreshTimer = null;
      return;
    }
    if (this._refreshTimer) return;
    const refresh = () => {
      const clientSession = this.TCGSDK.getClientSession();
      fetch(o.refreshURL, {
        method: "POST",
        credentials: "same-origin",
        ...(o.fetchInit || {}),
        headers: { "Content-Type": "application/json", ...((o.fetchInit && o.fetchInit.headers) || {}) },
        body: JSON.stringify({ ...(o.startBody || {}), ClientSession: clientSession }),
      })
        .then((res) => {
          if (res.ok) this._emit("refresh", { clientSession });
          else if (res.status !== 409) throw new Error("refresh: HTTP " + res.status);
        })
        .catch((error) => this._emit("error", { error, during: "refresh" }));
    };
    refresh();
    this._refreshTimer = setInterval(refresh, o.refreshEvery ?? 60000);
  }

  // _ready starts TCGSDK with a ServerSession from a "ready" notice: the
  // first one, or a new one after the stream was lost (the manager
  // restarted it). A new ServerSession while a stream runs, or after
  // another connection took the stream over (onDisconnect 1), belongs to
  // a newer page of the same user (the backend's Start for it): this page
  // leaves it alone, and its heartbeat is replaced next.
  _ready(serverSession) {
    if (serverSession === this.serverSession) return;
    if (this.serverSession && (!this.stream || this.stream.state !== "lost")) {
      this._emit("ignored", { serverSession, stream: this.stream });
      return;
    }
    this._startStream(serverSession);
  }

  _startStream(serverSession) {
    if (this._ended || serverSession === this.serverSession) return;
    this.serverSession = serverSession;
    this.TCGSDK.start(serverSession);
  }

  _streamEvent(callback, code) {
    const r = streamReportFor(callback, code);
    if (!r) return;
    this.stream = { ...r, callback };
    this._emit("stream", this.stream);
    if (this.heartbeat) this.heartbeat.reportStream(r.state, r.code);
  }

  _end(detail) {
    if (this._ended) return;
    this._ended = true;
    for (const r of this._restore.splice(0)) r();
    if (this._refreshTimer) clearInterval(this._refreshTimer);
    this._refreshTimer = null;
    if (this.options.destroyOnEnd !== false && typeof this.TCGSDK.destroy === "function") {
      try {
        this.TCGSDK.destroy({ message: detail.reason || detail.state });
      } catch {
        /* the stream may be gone already */
      }
    }
  }

  /** touch reports user activity (TCGSDK input and page input do so already). */
  touch() {
    if (this.heartbeat) this.heartbeat.touch();
  }

  /** close ends the page's side: the heartbeat closes (the backend's grace window starts) and TCGSDK is destroyed. */
  close() {
    if (this.heartbeat) this.heartbeat.close();
    this._end({ state: "closed", reason: "closed by the page" });
  }
}

/** startCAR creates a CARSession and begins it. */
export function startCAR(options) {
  return new CARSession(options).begin();
}
