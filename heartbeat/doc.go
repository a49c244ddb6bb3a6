// Package heartbeat keeps a backend informed about each user's client: is
// it still there, is the user still active, and has it gone for good.
//
// It exists for Tencent Cloud CAR (cloud-rendered apps). A CAR concurrency
// serves one user; when the user's browser vanishes without the backend
// calling DestroySession, CAR holds (and bills) the concurrency for a 90 s
// reconnect wait. With this package the backend runs its own heartbeat with
// every client, gets idle callbacks like TCGSDK's idleThreshold, notices a
// vanished client, lets it resume within a grace window, and learns exactly
// once when it is really gone.
//
// There are two sides:
//
//   - [Server], an http.Handler for the backend. Sessions are identified by
//     an id the application chooses (the CAR manager uses the CAR UserId).
//     [Server.Open] creates a session and returns a join token for the
//     client; callbacks report connect, idle, disconnect, resume and expiry;
//     [Server.Send] pushes notices (queue position, "ready" with opaque
//     data, custom); [Server.Release] ends a session; [Server.Shutdown] ends
//     them all; [Server.Drain] closes the connections for a rolling deploy
//     and ends nothing (see "Several replicas").
//   - the client: for Go clients, bots and tests, package
//     [github.com/tcconcurrency/sdk-go/heartbeat/hbclient] (hbclient.Connect
//     returns an *hbclient.Client); browsers use heartbeat.js from package
//     heartbeat/web (see "Browser clients" below). The two sides take
//     different option types, so no option goes to the wrong side.
//
// # Session lifecycle (server side)
//
//	Open ──► waiting ──hello──► connected ──drop──► disconnected ──hello──► connected
//	            │                 │    ▲                  │
//	            └──grace passes───┼────┼──────────────────┴──grace passes──► expired (gone)
//	                              └────┘ newer connection replaces older
//	Release or Shutdown, in any state ──► gone, no more callbacks
//
// Callbacks (options of [NewServer]), each with an [Event]:
//
//   - OnConnect: the first connection after Open (waiting → connected).
//   - OnIdle: 1×, 2×, 3×… the idle threshold (default 300 s, as TCGSDK)
//     after the last user activity, with Event.Times = 1, 2, 3…; an activity
//     frame starts the count again. Idle time is measured on the server from
//     the last activity frame and keeps counting while the client is
//     disconnected: a user who is away is not active. A resume is not
//     activity. Open counts as the first activity.
//   - OnDisconnect: the connected client is gone, with a [Reason]: closed by
//     client, connection lost, ping timeout, bad frame, message too big,
//     write timed out, rate limited, replaced. The Event carries the
//     client's LastSeen and the session's ExpiresAt: the grace counts from
//     the last frame, and its length depends on how the client left (see
//     Timeline).
//   - OnResume: a client joined a disconnected session within its grace,
//     or a newer connection replaced the current one (then
//     OnDisconnect with ReasonReplaced comes first), mirroring CAR's
//     "repeated connection".
//   - OnExpire: the grace passed with no client connected, after a
//     disconnect or after Open. The session no longer exists.
//
// # Timeline of a disconnect
//
// Everything counts from the client's last sign of life, the last frame of
// any kind the server received from it (pong, activity, anything), not from
// when its absence was noticed:
//
//	t0                    last frame from the client (Event.LastSeen)
//	t0 + pingTimeout      detection of a silent client: 4006, OnDisconnect (ReasonPingTimeout);
//	                      a TCP reset or a close frame is detected at once
//	t0 + grace            window end (Event.ExpiresAt): OnExpire, unless a client resumed;
//	                      never before the detection itself
//	then                  the application releases what the session held (the car manager
//	                      calls DestroySession at once; CAR's concurrency is then idle)
//
// The grace depends on how the client left:
//
//   - the page closed its WebSocket (close code 1000 or 1001, or a close
//     frame without a code: tab closed, navigation, reload): the reload
//     grace, [WithReloadGrace], default 10 s: long enough for a reload or a
//     quick reopen to resume;
//   - the connection was lost, the ping timeout passed, a write failed or
//     timed out, or the client sent any other close code: the reconnect
//     window, [WithReconnectWindow], default 60 s, what TCGSDK's own stream reconnects for (10 × 6 s);
//   - the server closed the client for what it sent (bad frame, frame too
//     big, invalid UTF-8, rate limit): the reload grace. Such a client is
//     told not to come back with the same token (4000, 1009, 1007, 4007), so
//     only a page reload (a fresh Open) brings the user back;
//   - replaced by a newer connection: no grace, OnResume follows at once.
//
// With the defaults a silent client is detected 30 s after its last frame
// and expires 60 s after it; a closed page expires 10 s after its close.
// A session opened and never joined expires the reconnect window after
// Open (each Open restarts it). The welcome's "grace" is the reconnect
// window: a client bounds its resume attempts with it, counted from the
// last frame it exchanged.
//
// # Guarantees
//
//   - Each callback fires exactly once per occurrence, and the callbacks of
//     one session run one at a time, in the order the events happened.
//   - Every OnDisconnect is followed by exactly one OnResume or OnExpire,
//     unless the session is released or the Server shut down first.
//     OnExpire comes at most once per session, and nothing comes after it.
//   - Callbacks run with no lock held, so they may call the Server (Send,
//     Release, Open, Session…). Each session has a mailbox drained by a
//     goroutine started on demand that exits when the mailbox is empty: a
//     slow callback delays only its own session.
//   - After [Server.Release] returns, no callback of that session starts
//     (one already running may finish); queued ones are dropped. After
//     [Server.Shutdown] begins, no callback starts for any session.
//   - Tokens are never logged, put in errors, or printed by %v.
//   - A bad frame or a stuck client closes that one connection; no other
//     session is affected.
//   - A notice ([Server.Send]) is delivered at most once, never twice: one
//     written to a connection that dies before the client read it is
//     lost, not sent again after the resume; one sent while no client is
//     connected is kept for the next welcome. With several replicas a
//     notice routed to the replica holding the connection travels by the
//     store's bus (Redis pub/sub), and is lost the same way if that
//     replica's link to Redis breaks while it is in flight. Notices are
//     therefore hints: what matters is also in state the client can ask
//     for (car.SessionManager answers a repeated Start with the lease and
//     its ServerSession, and a queued user's next position notice follows
//     at the next change).
//
// # Wire protocol (tcc.heartbeat.v1 and v2)
//
// The client opens a WebSocket to the URL where the Server is mounted,
// offering the subprotocol [Subprotocol] ("tcc.heartbeat.v1") or, to send
// stream frames, [SubprotocolV2] ("tcc.heartbeat.v2") first and v1 second.
// The Server accepts both and picks v2 when offered; the client learns
// which one it got from the handshake (the browser's WebSocket.protocol),
// and states that version in its hello ("v":1 or "v":2; the welcome's "v"
// repeats it). Version 2 is version 1 plus the client's stream frame; a v1
// client never sends it, and a client that was given v1 (an older server)
// must not either. All frames are text frames holding one JSON object with a
// "type". A client frame may be at most 4 KiB ([WithMaxMessageSize]).
//
// Client → server:
//
//	{"type":"hello","v":1,"session":"<id>","token":"<token>"}   first frame, exactly once
//	{"type":"activity"}                                          user input happened (optional)
//	{"type":"stream","state":"lost","code":-3}                   v2 only: the media stream's state (optional)
//
// The hello must arrive within 10 s. The token is the join token from
// [Server.Open], or the resume token from the latest welcome. Unknown fields
// are ignored; unknown types are an error. Text frames must be valid UTF-8
// (RFC 6455); one that is not closes the connection with 1007. Clients should
// coalesce activity: at most one frame every few seconds (the Go client
// sends at most one per hbclient.WithActivityInterval, default 5 s, on the leading
// and trailing edge).
//
// Frames from a client, data and control frames alike, are rate limited
// ([WithFrameRateLimit], default 20 per second with bursts of 100; a browser
// sends at most about one activity frame a second plus one pong per ping
// interval). The first frame over the limit closes the connection with 4007
// and a reason that gives the limit, the session disconnects
// (ReasonRateLimited, the reload grace) and its resume token is revoked. A
// client that goes on sending while closing is cut after one more burst, so
// a flood costs the server at most two bursts per connection, and
// reconnecting takes a fresh join token from the application.
//
// Stream frames (v2) tell the backend what the client's media stream (for
// CAR, TCGSDK's cloud stream) is doing, which TCGSDK itself never tells the
// backend. They reach [OnStream] as Event.Stream. "state" is one of
//
//	connected     the stream is up                        onConnectSuccess
//	disconnected  it dropped; "code" says how (a hint)    onDisconnect 1 repeated connection, 2 heartbeat
//	                                                      timeout, -1 reconnecting, 0 server closed
//	reconnecting  the SDK is retrying                     onConnectFail -2 (and -1, retry later)
//	lost          gone for good: a new session is needed  onConnectFail -3 retries exhausted, > 0 proxy
//	                                                      error; onDisconnect -2 create offer failed
//
// and "code" (optional, default 0) is the SDK's code, a 32-bit integer. An
// unknown state, a missing state or a stream frame on a v1 connection close
// the connection with 4000 and a reason. A report that repeats the previous
// one of the connection is not delivered again; at most 10 come through in a
// burst, then one per second, and the rest are dropped, except a "lost" that
// follows another state. The reports are hints: the heartbeat stays the
// truth about presence, and TCGSDK's own docs call codes 1 and 2 unreliable.
//
// Server → client:
//
//	{"type":"welcome","v":1,"session":"<id>","token":"<resume token>","resumed":false,
//	 "pingInterval":10000,"pingTimeout":30000,"grace":60000,"reloadGrace":10000,
//	 "idleThreshold":300000}
//	{"type":"queue","position":3}                                position in the app's queue
//	{"type":"ready","data":<any JSON>}                            e.g. the CAR ServerSession
//	{"type":"custom","name":"<name>","data":<any JSON>}           application-defined
//	{"type":"idle","times":2}                                     the server counted 2 thresholds
//	{"type":"released","reason":"<text>"}                         then the close frame 4005
//
// The welcome is the first server frame; it carries a fresh resume token
// (every hello consumes the token it used) and the server's timings in
// milliseconds. "resumed" is true when the session had been connected
// before. Notices sent while no client was connected follow the welcome.
//
// Liveness: the server sends a WebSocket ping every pingInterval (10 s). Any
// frame from the client counts as a sign of life: pong, activity, anything. A
// browser's WebSocket answers pings by itself, even in a background tab whose
// timers are throttled, so a browser only ever sends the hello and,
// optionally, activity frames. A connection silent for pingTimeout (30 s) is
// closed; a healthy client is never silent for more than one ping interval
// plus its round trip, so it may miss two pongs in a row and stay.
// The pong comes from the browser's network stack, not from the page's
// JavaScript: a background tab, a tab the browser froze and a page stuck
// in a long task keep answering for as long as the browser runs, so they
// are never dropped (Chromium, when it runs a frozen tab again, may close
// its socket with 1001; the client then resumes at once, within the reload
// grace). A page whose browser, network process or network is gone answers
// nothing and is closed pingTimeout after its last frame.
// Clients never need to ping; a Go client that wants to watch the server
// treats pingTimeout without any frame as a dead connection.
//
// Close codes ([CloseError] on the Go client; event.code and event.reason in
// a browser):
//
//	1000 CloseNormal              the client closed on purpose
//	1001 CloseGoingAway           the server is shutting down; try again later
//	1007 CloseInvalidPayload      a text frame was not valid UTF-8
//	1009 CloseMessageTooBig       a client frame exceeded the size limit (reason names it; a frame
//	                              over 16 times the limit is cut off unread, without a reason)
//	4000 CloseProtocolError       bad JSON, unknown type, binary frame, no hello first, second hello, no hello in 10 s,
//	                              bad stream frame
//	4001 CloseUnsupportedVersion  no known subprotocol offered, or hello "v" is not the negotiated version
//	4002 CloseUnauthorized        token malformed, forged, used or superseded; authorization hook refused
//	4003 CloseExpired             genuine token, but the session is gone (grace passed, released)
//	4004 CloseReplaced            a newer connection took over the session; do not reconnect
//	4005 CloseReleased            the application released the session; reason = Release's reason
//	4006 ClosePingTimeout         nothing received within pingTimeout (sent best effort)
//	4007 CloseRateLimited         the client sent frames faster than the limit (reason gives it);
//	                              its resume token is revoked
//
// On 4000–4005, 4007, 1007 and 1009 a client must not reconnect with the
// same token; on anything else it may resume with its latest resume token
// within the grace window.
//
// # Browser clients
//
// Package [github.com/tcconcurrency/sdk-go/heartbeat/web] ships the browser
// client: heartbeat.js, one ES module without dependencies or build step
// (with heartbeat.d.ts), and tcgsdk.js, which wires TCGSDK, the heartbeat
// and a car.SessionManager backend in one call. web.Handler serves them
// from the binary. The client keeps the latest resume token in
// sessionStorage so that a reload resumes, reconnects with full-jitter
// exponential backoff within the grace window (at once on the browser's
// online event and when the page becomes visible), stops on 4000–4005 and
// says why, coalesces activity below the idle threshold, and sends stream
// frames on v2:
//
//	import { connect } from "/heartbeat/web/heartbeat.js";
//	const hb = connect({ url: "/heartbeat", session: lease.HeartbeatSession, token: lease.HeartbeatToken });
//	hb.on("ready", ({ serverSession }) => TCGSDK.start(serverSession));
//	hb.on("state", ({ state }) => state === "expired" && startAgain());      // 4003: call Start for a fresh lease
//	hb.bindInput();                                                            // keyboard, pointer, gamepad = activity
//
// A minimal page by hand, from this description alone (the data of a
// car.SessionManager's ready notice is {"ServerSession": …}; a user who was
// not queued also has it in the Start answer already):
//
//	const key = "tcc.heartbeat:" + session;              // session, joinToken: from the backend's Start
//	let token = sessionStorage.getItem(key) || joinToken; // after a reload: resume with the stored token
//	let ws, grace = 60000, until = 0, attempt = 0, started = "", last = 0;
//	const play = (ss) => { if (ss && ss !== started) TCGSDK.start(started = ss); };
//	function connect() {
//	  ws = new WebSocket(url, ["tcc.heartbeat.v2", "tcc.heartbeat.v1"]);
//	  ws.onopen = () => ws.send(JSON.stringify({type: "hello", v: ws.protocol === "tcc.heartbeat.v2" ? 2 : 1, session, token}));
//	  ws.onmessage = (e) => {
//	    const f = JSON.parse(e.data);
//	    if (f.type === "welcome") { token = f.token; sessionStorage.setItem(key, token); grace = f.grace; until = 0; attempt = 0; }
//	    else if (f.type === "ready") play(f.data.ServerSession);   // or queue / idle / released / custom
//	  };
//	  ws.onclose = (e) => {
//	    if ((e.code >= 4000 && e.code <= 4005) || e.code === 4007 || e.code === 1007 || e.code === 1009) {
//	      sessionStorage.removeItem(key); return;                                       // final: show e.reason;
//	    }
//	    until ||= Date.now() + grace;                                                   // after 4003, call Start again
//	    if (Date.now() < until) setTimeout(connect, Math.random() * Math.min(10000, 500 * 2 ** attempt++));
//	  };
//	}
//	onkeydown = onpointerdown = () => {                     // activity: at most one frame per 5 s
//	  if (Date.now() - last > 5000 && ws.readyState === 1) { last = Date.now(); ws.send('{"type":"activity"}'); }
//	};
//	play(lease.ServerSession);
//	connect();
//
// # Tokens and access
//
// A token is 43 base64url characters: a 128-bit crypto/rand nonce and a
// 128-bit HMAC-SHA256 tag that binds it to its session id and to the key
// that minted it. By default each Server has a random key of its own; with
// [WithTokenKeys] (a key ring: a current key that mints, older keys that
// still verify, each at least 32 bytes) replicas share keys and accept each
// other's tokens, and [Server.SetTokenKeys] rotates them while the Server
// runs (see "Rotating the token key" below). A forged token or one for another session is refused
// (4002) without a lookup; a genuine token whose session is gone is told
// "expired" (4003) without keeping tombstones. A session accepts its current
// join token (from the latest Open) and its current resume token (from the
// latest welcome), compared in constant time; a successful hello consumes
// the one it used, so every token works once. [WithAuthorize] adds an
// application check on the upgrade request (cookies, headers) after the token
// checks out. Browsers must come from the request's own host unless
// [WithAllowedOrigins] says otherwise; a request without an Origin header (not
// a browser) passes the origin check.
//
// # Rotating the token key
//
// [Server.SetTokenKeys] replaces the key ring at once and closes no
// connection. Every replica must accept every token at every moment, so a
// rotation from key A to key B goes in three phases, each finished on
// every replica before the next begins:
//
//  1. Add B as an older key: SetTokenKeys(A, B). Tokens are still minted
//     with A, and every replica now accepts B as well.
//  2. Make B current: SetTokenKeys(B, A). A replica in this phase mints
//     with B, which every replica accepts since phase 1, and tokens
//     signed with A still work everywhere.
//  3. Drop A: SetTokenKeys(B), once no token signed with A is still held.
//
// Skipping phase 1 breaks clients: a replica that makes B current while
// another knows only A mints tokens that the other refuses with 4002
// "invalid token", and a client takes 4002 as final: package hbclient's
// Connect fails with [ErrUnauthorized], a resume refused so ends the
// client in StateExpired (its error matches ErrUnauthorized too), and the
// browser client above stops. A refused hello consumes nothing: the token
// still works on a replica that knows its key.
//
// When to drop A: a join token is held until its hello or the end of its
// session; a resume token from a welcome until the client's next hello,
// however long it stays connected. So a client whose last welcome (or join
// token) came from a replica before that replica's phase 2 holds a token
// signed with A for as long as its connection lasts. Drop A only once such
// connections are gone (keep it for the longest time a session stays
// connected, plus the reconnect window), or accept what happens to them: a
// hello with a token signed with a dropped key is refused with 4002
// [CloseUnauthorized] "invalid token", on every replica, and the client
// stops; its session runs out at the end of its grace window ([OnExpire]),
// as if the client never came back, unless the application issues a new
// token meanwhile (Open again; package car: Start again, which within the
// reconnect wait keeps the user's concurrency). One Server alone rotates
// the same way, with phases 1 and 2 in one step. A Server started without
// WithTokenKeys has a random key of its own that no ring can name: its
// first SetTokenKeys drops it, with the outcome above for every token it
// minted. Start with WithTokenKeys to rotate without that.
//
// # Timers and goroutines
//
// A Server has one code path, with or without [WithStore]: without one it
// runs on a [MemoryStore] of its own, which nobody else shares. That store
// keeps the sessions with no client connected (waiting after Open, or
// disconnected), their kept notices and their deadlines; the Server keeps
// the connections it holds. On its own store there are no owner leases
// and no refresher (the Server is the only owner, and they stop
// together), nothing is routed anywhere else, and the store runs on the
// Server's clock.
//
// One scheduler serves every deadline of the connections and connected
// sessions: a min-heap, one time.Timer and one goroutine, running only
// while there are deadlines. Each connection and each connected session
// holds one heap entry, the earliest of:
//
//	connection  hello due        10 s after the upgrade (then 4000)
//	            ping due         every pingInterval: a ping is queued for the connection's writer
//	            liveness         last frame + pingTimeout (then 4006, OnDisconnect)
//	            close handshake  close frame + write timeout (then the TCP connection is cut)
//	session     idle due         last activity + (n+1) × idle threshold (OnIdle), while connected
//
// The deadlines of a session with no client (its grace expiry: last frame
// + grace, or Open + reconnect window, then OnExpire; and its idle
// thresholds, OnIdle) are the store's, in a min-heap of its own. On the
// Server's own store the sweeper goroutine runs only while that heap has
// a deadline: it sleeps until the earliest one exactly, the store wakes it
// when an earlier one is set, and it fires each at its moment (not at the
// next [StoreSweepInterval], as with a shared store). Each deadline fires
// once: the step that takes it from the store moves the session on.
//
// Deadlines that move later (a frame arrives, the user is active) cost
// nothing: the entry fires at the old time, finds the new one, and re-arms.
// Read deadlines are never used: a timed-out read breaks a gorilla/websocket
// connection for good, so the scheduler cuts dead connections instead.
//
// Each connection has one long-lived goroutine, its reader. Writes are
// isolated per connection: a connection with output (frames, a ping, a
// close frame) gets its own writer goroutine, started on demand and gone as
// soon as the output is drained, so an idle connection has none and no
// write ever waits on a goroutine another connection needs. A client that
// stops reading holds only its own writer (and one pooled write buffer)
// until its write deadline (write timeout, default 10 s) cuts it
// (ReasonWriteTimeout, the reconnect window); everyone else's frames,
// pings and close frames go out at once. Output per connection is bounded:
// pings coalesce, notices replace each other by kind (at most 16 waiting),
// idle notices come one per threshold. The scheduler never writes, and no
// write happens under a lock. Write buffers come from a shared pool; the
// read buffer is 512 bytes.
//
// # Go client
//
// Package hbclient is the Go client: its doc describes its loop, states
// and resume.
//
// # Several replicas
//
// A backend that runs several replicas behind a load balancer (no sticky
// sessions needed) gives each replica's Server the same token keys
// ([WithTokenKeys]) and a [Store] shared by all of them ([WithStore]):
// car/redisstore on Redis, or [NewMemoryStore] for replicas in one process
// and tests. Without a Store a Server is a single process, exactly as
// described above: it runs on a MemoryStore of its own (see "Timers and
// goroutines"), with the same guarantees, and [Server.Session] and
// [Server.Len] see every session of it, connected or not.
//
// The model. A replica keeps in memory only the connections it holds:
// their pings, liveness, writes, and the idle count of their connected
// users (a connected user's idle thresholds, with the idle notice, fire on
// the replica holding the connection). Everything else is in the store:
// each session's state, token nonces, the owner replica and its
// connection epoch, the last frame and last activity reported, the grace
// deadline, and the notices kept for a client that is away. Each decision
// is one atomic step of the store timed by the store's clock; replicas
// pass ages, never their own clock readings, so clock skew changes
// nothing.
//
//   - A hello is accepted on any replica (Store.Claim consumes the nonce
//     everywhere in the same step); a token works once in all.
//   - A session connected to another replica has that connection closed
//     there with [CloseReplaced]; the old replica reports OnDisconnect with
//     ReasonReplaced and the new one OnResume.
//   - [Server.Send] on any replica reaches the connection wherever it is;
//     a notice sent while the client is away is kept by the store and
//     delivered after the next welcome, on whichever replica.
//   - [Server.Release] on any replica ends the session everywhere; the
//     replica holding the client sends the released notice.
//   - The idle count follows the user: the last activity and the count
//     move with the session from replica to replica, and while no client
//     is connected the store's deadlines count on. A connection that ends,
//     or is replaced while still open, hands the last activity its replica
//     saw to the store (Store.Detach), which passes a later one on to the
//     replica now holding the client, even after the new connection's
//     hello: the count starts from the user's real last activity, not from
//     the one last refreshed into the store. Only a replica that dies
//     loses what it saw since its last refresh (below).
//   - A connection's owner refreshes it every [StoreRefreshInterval]; the
//     store holds the ownership for [StoreOwnerTTL] after each refresh.
//
// Exactly once. Every replica sweeps the store's due deadlines every
// [StoreSweepInterval]; the step that takes a deadline also moves the
// session on, so each grace end (OnExpire), each idle threshold of a user
// with no connection (OnIdle), and each lost owner (OnDisconnect) fires on
// exactly one replica, whichever replica set it, also when that one is
// gone. OnConnect and OnResume fire on the replica that accepted the
// hello. Callbacks therefore run on any replica: the application must
// find its own state for a session by id, not in the memory of the
// replica that opened it. An idle threshold of a connected user fires on
// the replica holding the connection, which first records it in the store
// (Store.ReportIdle) and fires it only if the store takes it as that
// connection's: a connection that moves, or an owner that dies, right
// after a threshold leaves the new holder or the sweeper counting on from
// the next one, so that threshold fires once too (the record costs one
// store call per threshold, minutes apart by default). Two cases are at least
// once instead: a threshold the holder could not record (the store
// unreachable) fires there all the same, and may fire again on the
// replica the session goes to next; and a refresh that revives a session
// the store had counted as lost (after a long store outage) reports
// OnResume after the sweeper's OnDisconnect. A replica that dies after it
// took a deadline (a Sweep, or a recorded threshold) and before its
// callback ran loses that callback: what a replica is handed is its own.
// So can a threshold that falls while the store counts an owner as lost
// (after a store outage longer than an owner lease) if the owner's refresh
// revives the session before a sweep takes it. Recording a threshold
// delays that session's later callbacks by the store call (and by the
// refresh batch in flight with that session, if any: a batch of
// 500 connections is measured just before it is sent, and a record and a
// batch of one session wait for each other, so neither lands an older
// count after the other), at most a few seconds when the store is slow.
// A move with no activity in between never restarts the
// count: the old connection hands over only an activity the store does
// not have yet (Detach.ActivityKnown). An activity told by others
// ([Server.Touch] on another replica, a replaced connection's handover)
// outlives the owner's reports of an older one sent before it heard of
// it, so a delayed report never brings the next threshold forward.
//
// When a replica dies (no Shutdown), its connections die with it and its
// refreshes stop. When its owner lease runs out, one replica reports each
// of its sessions lost (OnDisconnect, ReasonConnectionLost) with the grace
// counted from the last frame its owner reported (so at most a refresh
// interval plus a ping interval earlier than the truth); clients resume on
// any replica with their resume tokens; sessions nobody resumes expire,
// once. The user activity the dead replica saw after its last refresh dies
// with it too: a user who resumes elsewhere counts as idle since the
// activity last reported, so idle thresholds can fire up to one
// [StoreRefreshInterval] (3 s) before the truth (keep idle thresholds well
// above it; the defaults are minutes). [Server.Drain] is the deploy path: connections close with
// CloseGoingAway, "going away, reconnect", sessions are recorded as
// disconnected at once, nothing is ended, and clients resume elsewhere.
// [Server.Shutdown] ends the sessions this replica holds, for the last
// replica.
//
// Open, Send, Touch and Release wait for the store for as long as their
// ctx allows (at most 5 s when it has no deadline). [Server.Session] and
// [Server.Len] do not wait: they report this replica's view, the sessions
// whose client is connected here.
//
// When the store is unreachable, calls fail with a [*StoreError]
// (errors.As): connected clients stay connected and keep their pings and
// idle count, Send and Release to a client connected here still work
// locally, Open, Touch and Send to other replicas fail, and a hello is
// refused with close code 1013 (try again later; clients retry with
// backoff). A sweep after a gap longer than an owner lease (nobody could
// sweep) first gives every owner a fresh lease, so an outage does not
// count live connections as lost; graces of sessions with no client keep
// running during it. When the store is back, everything goes on from the
// stored state. A store that comes back empty (restarted without its
// data) is detected by the next refresh: the Server logs it at error
// level, and the store recreates the sessions whose clients are connected
// (their resume tokens keep working); sessions with no connection and
// kept notices are lost, and their callbacks never fire.
//
// A Store failover with asynchronous replication (Redis Sentinel or a
// replica promoted) can lose the last writes before the failover: a
// consumed nonce may become valid again (the token could be used once
// more, only by a client that had it), a claim may revert (the next
// refresh then reports the connection replaced or gone, or revives it),
// and a deadline already fired may fire again. See car/redisstore for what
// it does about it.
//
// # Memory
//
// An idle connected session costs the Server one goroutine (its reader)
// and the heap of its session and connection state: the gorilla
// connection, its 512-byte read buffer, the socket. No writer goroutine,
// no timer and no write buffer are held while a connection is idle.
// Kernel socket buffers are not included. The measured figures (Go heap
// and stacks, RSS per session at 15,000 sessions, CPU per heartbeat), with
// the commands that reproduce them, are in BENCHMARKS.md ("Heartbeat server").
//
// The reader stack stays small because the activity frame, the one a
// connected client sends, is recognised without encoding/json, whose
// decoder would grow the reader goroutine's stack for good. A client that
// writes the frame in another form (extra fields or spaces) is served the
// same, at that cost.
package heartbeat
