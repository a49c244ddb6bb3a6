// Package cartest is a reference server of Tencent Cloud CAR (Cloud
// Application Rendering) for tests, in-process like net/http/httptest:
//
//	srv := cartest.Start(t, cartest.WithManualClock(start))
//	client := srv.Client()
//	client.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "u1", UserIp: "203.0.113.7", ProjectId: cartest.DefaultProjectId})
//
// It speaks the CAR API 2022-01-10 the way the real endpoint does, on the
// frame of every reference server of this module: TC3-HMAC-SHA256
// signatures are verified (the Go SDK's Host with its port, the Node SDK's
// without), every answer is an HTTP 200 envelope with a fresh RequestId,
// bodies are decoded strictly (UnknownParameter, InvalidParameterValue,
// MissingParameter, InvalidParameter.JsonParseError, each naming the
// field), rate limits are CAR's (100/s for ApplyConcurrent, CreateSession
// and DestroySession, 20/s for the others; see WithRateLimit), and faults
// can be injected (Server.InjectFault). The official Tencent Cloud SDKs
// work against it unchanged; so does package car.
//
// One client cannot take it down (WithLimits; the defaults are those of
// internal/apiserver): SignedHeaders is capped at 32 names in 1 KB, with
// no name twice and each of a header the request carries; the signature
// is hashed as a stream; everything but the signature is checked before
// the body is read; a body over 10 MB is refused by its Content-Length,
// unread; large bodies (over 16 KB) share 64 MB and wait at most 10 s for
// room (RequestLimitExceeded); JSON with invalid UTF-8 or a key twice is
// refused (InvalidParameter.JsonParseError); headers are capped at 64 KB,
// with timeouts of 10 s for them, 1 min to read a request, 5 min to
// answer (counted from the end of an injected latency), 1 min idle; and
// at most 4,096 connections, the longest-idle one closed to make room.
// A client stream is a hijacked connection: no timeout cuts it (it has
// its own heartbeat), and it counts among the connections while open.
//
// # The model
//
// A project is served by the concurrency packs bound to it (WithProject,
// WithPack); a pack bound to several projects is shared. Without options
// there is one project, DefaultProjectId, and one pack of DefaultPackSize
// concurrencies, DefaultPackId. Each concurrency serves one user at a time
// and is in one State:
//
//	     ApplyConcurrent         CreateSession          client stream opens
//	idle ───────────────▶ locked ─────────────▶ created ─────────────────────▶ connected
//	 ▲                      │                      │                            │  ▲
//	 │           lock time  │      reconnect wait  │      stream closed or lost │  │ client back
//	 ├──────────────────────┘                      ▼                            ▼  │
//	 │                                          cleanup ◀──── reconnect wait ── disconnected
//	 └─────────── cleanup delay ────────────────┘   ▲
//	                                                └── DestroySession, from any state
//
// Every state but idle counts as Running in DescribeConcurrentCount.
//
//   - ApplyConcurrent locks the first idle concurrency (packs in the order
//     declared, concurrencies in order) of a pack serving the project, for
//     the lock time (DefaultLockTime, 30 s; WithLockTime). Nothing idle:
//     ResourceNotFound.NoIdle, with a message saying whether the project
//     has no pack or every concurrency is busy. Repeating it is harmless:
//     a lock is renewed for the lock time; a user with a session is
//     reattached (event "reattached") and nothing else changes: a
//     connected client is not disturbed. An expired lock releases the
//     concurrency at once (no application was started, so there is no
//     cleanup).
//   - CreateSession needs the user to hold a concurrency (else
//     FailedOperation.LockTimeout): a fresh lock, or a session of its own
//     from before, which it reattaches to (CAR's documented way to
//     reconnect after the SDK gave up). It issues a new ServerSession,
//     which replaces the older one: an older client stream is closed with
//     CloseRepeatedConnection, "user repeated connection".
//   - The client stream is how the server knows whether the user is
//     connected: a WebSocket on the server (see ServerSession) that the
//     test client Stream opens, with Server.DialStream or DialStream. A
//     stream of the current ServerSession may connect again after it
//     ended, as TCGSDK reconnects on its own; a second stream of the same
//     session replaces the first (CloseRepeatedConnection).
//   - The reconnect wait (DefaultReconnectWait, 90 s; Project.ReconnectWait,
//     40 s to 1 h like the console's ReconnectTimeout) runs while a session
//     has no client: from CreateSession until the first client connects,
//     and from when a client stream ends (closed or lost) without
//     DestroySession. The same UserId coming back within it
//     (ApplyConcurrent, CreateSession, stream) gets the same concurrency,
//     push included. When it runs out the user loses the concurrency at
//     once (a later ApplyConcurrent gets another one, if one is idle) and
//     the concurrency goes through the cleanup delay (DefaultCleanupDelay,
//     10 s; WithCleanupDelay), counted as Running, before it is idle.
//     With RunMode RunWithoutClient there is no reconnect wait: the
//     session lasts until DestroySession.
//   - DestroySession ends the session from any state (closing a connected
//     stream with CloseServerClosed, ending a push) and starts the cleanup
//     delay. Until the concurrency is idle, ApplyConcurrent and
//     CreateSession for that user answer UnsupportedOperation.Stopping,
//     and the stream push actions ResourceNotFound.SessionNotFound (their
//     documented errors have no Stopping). DestroySession for a user
//     holding nothing, or already being destroyed, succeeds and changes
//     nothing: its documented errors have no SessionNotFound, and it is
//     what a backend calls when unsure.
//   - StartPublishStream, StartPublishStreamWithURL and StopPublishStream
//     need a session (CreateSession done, not destroyed or reclaimed),
//     else ResourceNotFound.SessionNotFound; a session waiting for its
//     client has one. A new push replaces the current one; stopping
//     without a push succeeds. The push survives the reconnect wait and
//     ends with the session (Concurrency.Push).
//   - Calls for a UserId that overlap (one still in progress, e.g. during
//     an injected Fault.Latency) answer FailedOperation.SlowDown.
//   - A user holds one concurrency at a time: ApplyConcurrent for another
//     project while holding one answers FailedOperation. A different
//     UserId never gets a held concurrency.
//
// Values are checked as well as presence: UserIp must be an IP address,
// RunMode empty or RunWithoutClient, Role Player or Viewer (with
// HostUserId), ProjectId a declared project, PublishStreamURL an rtmp://
// URL, PublishStreamArgs query arguments, ApplicationCategory DESKTOP or
// MOBILE (accepted, not modelled: every project counts).
// ApplicationVersionId, ApplicationId and ClientSession are accepted and
// not modelled. Multiplayer is not modelled: a HostUserId naming another
// user answers UnsupportedOperation rather than pretend.
//
// # Time
//
// The model clock runs in real time (inside a testing/synctest bubble, the
// bubble's), or stands still with WithManualClock until Server.Advance
// moves it; no test needs to sleep through a reconnect wait. Deadlines are
// applied lazily and in due order before anything is read or changed, so
// API answers, Concurrencies, User and Events are those of the model time
// they are read at, and each event carries the time it was due. Signature
// timestamps and rate limits use the host clock, as the client signs with
// it.
//
// # The client stream
//
// A ServerSession of the reference server is the base64 of a small JSON
// object (ServerSession): version, stream URL (ws://, from the
// CreateSession request's Host and the stream path, DefaultStreamPath or
// WithStreamPath), a random token and the concurrency id. The server's
// first message on the stream, {"Type":"connected",…}, says the model has
// the client connected; the client sends nothing. When the server ends a
// stream it sends a close frame with 4000 plus TCGSDK's onDisconnect code
// (CloseServerClosed, CloseRepeatedConnection, CloseHeartbeatTimeout) and
// the reason in words. There is no heartbeat on the wire: a lost connection
// is seen at once, and Server.ExpireHeartbeat stands for a client whose
// heartbeats stopped.
//
// # Inspection and control
//
// Server.Concurrencies and Server.User show who holds which concurrency,
// in which state, since and until when; Server.Events is the log of API
// calls and state changes, in model time. Server.InjectFault delays,
// replaces or drops answers. WithListener (e.g. internal/memnet's) serves
// on any listener; Client and DialStream dial through it when it can dial,
// so the whole server runs inside a synctest bubble. NewUnstartedServer
// gives a server to mount as an http.Handler (the API at every path, the
// stream at its path).
//
// # The shell
//
// What the reference servers share is written once, in internal/apiserver's
// Host, so cartest and scftest behave alike there:
//
//   - Start(t), NewServer and NewUnstartedServer, then Server.Start and
//     Server.Close: on 127.0.0.1:0 unless WithListener. Close works in
//     one order: the server takes no more work, its context ends (injected
//     latencies are cut short), the listener and the calls in progress
//     close, then the client streams, the client transport and the clock.
//     It waits for everything the server started and may be called again.
//   - One client transport per server: Client and HTTPClient share it, and
//     Close closes its connections, so a test need not close a client's
//     idle connections itself.
//   - Credentials, random by default ("AKID" and 32 letters and digits, a
//     32-character key, new for every server): WithCredentials and
//     WithTemporaryCredentials let given pairs in, and the first one given
//     is the one Credentials returns and Client signs with. A credential
//     prints redacted.
//   - Faults (InjectFault with the one Fault type, scftest.Fault being the
//     same), the event log (Events), rate limits per second of host time
//     (WithRateLimit, WithoutRateLimits, SetRateLimit), Limits, WithLogger
//     (silent by default) and the model clock (WithManualClock, Advance,
//     Now).
//
// What differs is the model behind the shell. The event log is the shell's
// one Event type in both: cartest's model events carry the UserId as
// Subject and the ConcurrencyId as Resource, scftest's the function
// version and the instance.
//
// The reference server models the documented behaviour and the decisions
// above; timing and ordering may differ from the real service wherever that
// is undocumented, and its API may change in minor versions.
package cartest
