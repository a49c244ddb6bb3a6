// A stand-in for TCGSDK, Tencent Cloud CAR's web SDK, for the demo and the
// browser tests. It has TCGSDK's shape (init, getClientSession, start,
// destroy, the input methods) and callbacks (onInitSuccess,
// onConnectSuccess, onDisconnect, onConnectFail), and its "cloud stream" is
// the reference server's client stream (package car/cartest): start()
// decodes the ServerSession (base64 of {"v":1,"url","token","concurrency"})
// and opens url?concurrency=…&token=…. Like TCGSDK it reconnects a lost
// stream on its own, every reconnectInterval up to reconnectAttempts times
// (TCGSDK: 6 s, 10 times), reporting onConnectFail -2 each time and -3 when
// it gives up. The reference server closes a stream with 4000 + TCGSDK's
// onDisconnect code (0 server closed, 1 repeated connection, 2 heartbeat
// timeout).

export function createFakeTCGSDK({ reconnectInterval = 6000, reconnectAttempts = 10 } = {}) {
  let cfg = null;
  let ws = null;
  let serverSession = "";
  let retries = 0;
  let retryTimer = null;
  let inits = 0;
  const fake = {
    state: "idle", // idle, connecting, connected, reconnecting, lost, destroyed
    concurrency: "",
    failReconnects: false, // tests: make every reconnect fail
    inputs: 0,
    listeners: new Set(),
    onChange(fn) {
      this.listeners.add(fn);
    },
    set(state, detail) {
      this.state = state;
      for (const fn of this.listeners) fn(state, detail);
    },
    /** dropStream breaks the stream as a network failure would. */
    dropStream() {
      if (ws) {
        const old = ws;
        ws = null;
        old.onclose = null;
        old.close();
        lost(-1, "stream lost (test)");
      }
    },
  };

  function parse(ss) {
    const o = JSON.parse(atob(ss));
    if (o.v !== 1 || !o.url || !o.token || !o.concurrency) throw new Error("not a reference-server ServerSession");
    return o;
  }

  function open(isRetry) {
    let s;
    try {
      s = parse(serverSession);
    } catch (e) {
      cfg.onConnectFail?.({ code: 1001, msg: String(e) });
      return;
    }
    const u = new URL(s.url);
    u.searchParams.set("concurrency", s.concurrency);
    u.searchParams.set("token", fake.failReconnects && isRetry ? "wrong-" + s.token : s.token);
    const sock = new WebSocket(u.href);
    ws = sock;
    let connected = false;
    sock.onmessage = (e) => {
      let f;
      try {
        f = JSON.parse(e.data);
      } catch {
        return;
      }
      if (f.Type === "connected" && !connected) {
        connected = true;
        retries = 0;
        fake.concurrency = f.ConcurrencyId;
        fake.set("connected", { concurrency: f.ConcurrencyId });
        cfg.onConnectSuccess?.({ code: 0, seat_index: 0, role: "Player" });
      }
    };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      ws = null;
      if (e.code >= 4000 && e.code <= 4002) {
        // The server ended it: TCGSDK reports the code and does not retry.
        const code = e.code - 4000;
        fake.set("disconnected", { code, reason: e.reason });
        cfg.onDisconnect?.({ code, msg: e.reason });
        return;
      }
      if (!connected && isRetry) {
        retry();
        return;
      }
      lost(-1, "no stream");
    };
  }

  function lost(code, msg) {
    fake.set("reconnecting", { code });
    cfg.onDisconnect?.({ code, msg });
    retries = 0;
    retry();
  }

  function retry() {
    if (retries >= reconnectAttempts) {
      fake.set("lost", { code: -3 });
      cfg.onConnectFail?.({ code: -3, msg: "retries exhausted" });
      return;
    }
    retries++;
    cfg.onConnectFail?.({ code: -2, msg: "auto reconnecting (" + retries + ")" });
    retryTimer = setTimeout(() => {
      retryTimer = null;
      if (fake.state === "reconnecting") open(true);
    }, reconnectInterval);
  }

  const sdk = {
    __fake: fake,
    init(config) {
      cfg = config || {};
      inits++;
      fake.set("idle");
      setTimeout(() => cfg.onInitSuccess?.({ code: 0 }), 0);
    },
    getClientSession() {
      return btoa(JSON.stringify({ fake: "client-session", init: inits, at: Date.now() }));
    },
    start(ss) {
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      if (ws) {
        const old = ws;
        ws = null;
        old.onclose = null;
        old.close();
      }
      serverSession = ss;
      retries = 0;
      fake.set("connecting");
      open(false);
    },
    reconnect() {
      if (serverSession) sdk.start(serverSession);
    },
    destroy() {
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      if (ws) {
        const old = ws;
        ws = null;
        old.onclose = null;
        old.close(1000);
      }
      fake.set("destroyed");
    },
    sendKeyboardEvent() {
      fake.inputs++;
    },
    sendMouseEvent() {
      fake.inputs++;
    },
    sendGamepadEvent() {
      fake.inputs++;
    },
    mouseMove() {
      fake.inputs++;
    },
  };
  return sdk;
}
