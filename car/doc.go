// Package car is a client for Tencent Cloud CAR (Cloud Application
// Rendering), API version 2022-01-10, and a session manager that keeps a
// heartbeat with every user's client.
//
// # The API client
//
// A CAR concurrency serves one user at a time. The backend locks one for a
// user with [Client.ApplyConcurrent], starts the application on it with
// [Client.CreateSession], whose ServerSession goes to the user's browser
// (TCGSDK.start), and releases it with [Client.DestroySession]. A user
// whose client vanishes without DestroySession keeps the concurrency for
// the project's reconnect wait (90 s by default), and the same UserId
// coming back within it gets the same concurrency again.
//
// Calls are signed with TC3-HMAC-SHA256, retried on throttling
// (RequestLimitExceeded arrives as an HTTP 200 error envelope), HTTP 429,
// 5xx and network errors, since every CAR action is safe to repeat; each
// retry is signed afresh and every wait ends with the context. The context
// bounds the whole call: the SDK's default HTTP client sets no per-attempt
// timeout (pass one with [WithHTTPClient] and an http.Client Timeout). Failures are
// *[APIError] values (the same type package scf returns); codes are
// constants such as [CodeNoIdle]. Required fields are checked before
// anything is sent: a *[ValidationError] names the field and the rule.
//
// # The session manager
//
// Tencent's advice for CAR backends is to keep a heartbeat with each
// client, call DestroySession when the user goes idle or is really gone,
// and let a user who reconnects within the wait keep the concurrency.
// [SessionManager] does exactly that, joining a [Client] to a
// [heartbeat.Server] (mount the manager, an http.Handler, where clients
// connect their heartbeat WebSocket):
//
//   - [SessionManager.Start] runs ApplyConcurrent then CreateSession and
//     returns a [Lease]: the ServerSession and a heartbeat token for the
//     client. On ResourceNotFound.NoIdle the user joins a bounded FIFO
//     queue instead; the client learns its position through heartbeat
//     "queue" notices, and a "ready" notice brings the ServerSession once
//     the head of the queue gets a concurrency (the head retries
//     ApplyConcurrent every poll interval, and at once after a release).
//   - A user idle for [WithIdleRelease] thresholds is released (reason
//     "idle"); the first notice at 1× the threshold warns the client.
//   - A client that disconnects has the reconnect wait
//     ([WithReconnectWait], default 90 s) to come back with its resume
//     token; if it does, nothing happens; if not, the concurrency is
//     released (reason "disconnected").
//   - [SessionManager.Stop] releases at once; [SessionManager.Shutdown]
//     drains: it empties the queue and releases every concurrency.
//
// Timers: the heartbeat server's single scheduler drives every deadline of
// every session: the next ping, the ping timeout (a client silent that
// long is disconnected), the idle thresholds, and the reconnect wait. The
// manager adds one timer of its own, the queue's poll interval, alive only
// while the queue is not empty.
//
// Exactly once: every lease is released once, whatever races (an idle
// notice, the end of the reconnect wait, Stop, Shutdown): the first to move
// the lease to "releasing" does the work; the others return at once. A
// release asked for while ApplyConcurrent or CreateSession is running for
// the user waits until they settle, so it never races a lock being taken.
// DestroySession is called once per lease that holds a concurrency, retried
// inside that one call on throttling, 5xx and network errors
// ([WithDestroyRetry]); UnsupportedOperation.Stopping (CAR is already
// tearing the session down) counts as done. The heartbeat session id of a
// lease carries a generation ("user#3"), so a late callback of an ended
// lease cannot touch the user's next one.
//
// [SessionManager.Snapshot] reports each user's state and the counters:
// active, disconnected, waiting, released by reason, DestroySession calls
// and failures.
//
// Package car/cartest is a CAR reference server for tests.
package car
