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
// retry is signed afresh and every wait ends with the context. Retries
// draw on the client's retry budget ([WithRetryBudget]: 500 tokens, 5 a
// retry), so that during an outage they do not multiply the load on CAR;
// when it is empty a call returns its last error. The session manager's
// release queue and queue head charge their retries to the same budget;
// when it is empty they wait, never drop a release, and try once per
// [WithReleaseRetryMax] as a probe until CAR answers again. What is retried, the
// waits and the budget are the SDK's one retry model, which also paces the
// session manager's DestroySession, release queue and queue head and the
// heartbeat client's reconnect; it is described in one place, the doc of
// package github.com/tcconcurrency/sdk-go/internal/retry. The context
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
// # Timers
//
// The heartbeat server's single scheduler drives every deadline of every
// session: the next ping, the ping timeout (a client silent that long is
// disconnected), the idle thresholds, and the reconnect wait. The manager
// adds two goroutines of its own: the queue runner (the poll interval, a
// transient failure's backoff, the position notices' interval,
// WithQueueTimeout; it lives as long as the manager, and sleeps without a
// timer while nobody is queued and no store is shared) and the release
// runner (the next attempt of each queued release; alive only while one
// is pending). Shutdown and Drain stop both.
//
// # Exactly once
//
// Every lease is released once, whatever races (an idle notice, the end of
// the reconnect wait, Stop, Shutdown, a lost stream): the first to move the
// lease to "releasing" does the work; the others return at once. A release
// asked for while ApplyConcurrent or CreateSession is running for the user
// waits until they settle, so it never races a lock being taken. A Start
// for a user whose previous lease is still being released waits for that
// release (and makes its next attempt happen now), so a new lease never
// races the old one's DestroySession. The heartbeat session id of a lease
// carries a generation ("user#3"), so a late callback of an ended lease
// cannot touch the user's next one. OnRelease runs once per lease, when
// its release is done.
//
// # When CAR fails
//
//   - DestroySession that fails for a transient reason (InternalError,
//     5xx, throttling, the network, a timeout) is retried: first inside the
//     call ([WithDestroyRetry]), then from the release queue with
//     exponential backoff from 1 s up to [WithReleaseRetryMax] (30 s), with
//     no attempt limit, until it is done. UnsupportedOperation.Stopping
//     (CAR is already tearing the session down) counts as done. A
//     permanent failure (AuthFailure, a refused parameter, an unknown
//     action or session) is logged at error level, counted
//     (Snapshot.DestroyFailures) and reported in the Release; it is never
//     retried in a loop. [SessionManager.Snapshot] shows each pending
//     release, its attempts and its last error; every failed attempt is
//     logged at warn level.
//   - [SessionManager.Stop] returns a *[ReleasePendingError] when the
//     release is not done by the time its context ends, with the last
//     error; the release goes on.
//   - [SessionManager.Shutdown] with a deadline hands what is still pending
//     to [OnReleasePending] and returns a *[ShutdownError] listing the
//     users; give them to the next manager with [WithPendingReleases].
//   - Start waits within its context while CAR answers
//     UnsupportedOperation.Stopping, FailedOperation.SlowDown or
//     FailedOperation.LockTimeout, and tries again a few times after a
//     transient failure. If it still fails after a call that may have
//     reached CAR (a timeout, a lost answer, 5xx, InternalError), it calls
//     DestroySession for the user before it returns the error: no lock or
//     session is left that no lease owns.
//   - The head of the queue keeps its place through transient failures,
//     retrying with backoff; a queued user leaves the queue only by Stop,
//     by its client being gone past the grace window, by
//     [WithQueueTimeout], or by a permanent error.
//   - Every call the manager makes is bounded by [WithAPITimeout] (30 s).
//
// # The queue
//
// Queued users are kept in FIFO order with a ticket each, given by the
// lease store; in the in-memory store a position lookup is O(log n) and
// joining or leaving does not touch the others. Position notices are coalesced: at
// most one per user per [WithNoticeInterval] (1 s), the latest position
// winning, and only to users whose position changed; a join changes no one
// else's position. Each departure from the queue pays for four notices,
// spent front of the queue first, so notices per admission stay constant
// however long the queue (users far back hear of their new place as that
// allows; the place they see is never better than the real one). Every user, queued or not, gets a "ready" notice with
// its ServerSession, and admission from the queue starts the idle count
// afresh (time spent waiting is not idleness). A queued user may refresh
// its ClientSession ([SessionManager.RefreshClientSession]) before
// admission.
//
// # Several replicas
//
// Every manager keeps its leases and its queue in a [LeaseStore], and runs
// one lease state machine on it. Without [WithStore] or [WithLeaseStore]
// that is an in-memory store of the manager's own, which nobody else
// shares: everything below then happens in one process, and
// [SessionManager.Drain] refuses, since no replica could take the users
// over.
//
// With [WithStore] (the manager's [LeaseStore] and its heartbeat server's
// [heartbeat.Store] at once; [WithLeaseStore] for the first alone), the
// replicas of a backend share
// their leases and their queue through a [LeaseStore]: package
// car/redisstore keeps them on Redis, [NewMemoryLeaseStore] in one
// process. Any replica serves any user. Each replica keeps a working copy
// of the leases it deals with, and adopts a lease from the store when a
// heartbeat callback (a client resumed here, a grace that ended here, an
// idle count swept here), a Start or a Stop reaches it for a lease another
// replica started. What must happen once is one atomic step of the store:
//
//   - A new lease gets its generation from one counter: the fencing token,
//     and the "#n" of its heartbeat session id. A Start for a user whose
//     lease is starting or being released on another replica waits until
//     that is done, so a new lease never races the old one's
//     DestroySession.
//   - A release is claimed: the first replica to claim a generation holds
//     its release for a TTL ([WithReleaseClaimTTL], by default the API
//     timeout plus [WithReleaseRetryMax], 60 s), renewed before each
//     DestroySession attempt, and only it tells the client, calls
//     DestroySession, finishes the lease in the store and runs OnRelease.
//     The others forget their copy (Snapshot.FinishedElsewhere).
//   - The queue is one FIFO ordered by tickets from one counter; a user who
//     comes back through another replica keeps its ticket. One replica at
//     a time holds the head lock (a TTL, renewed every poll) and admits the
//     head; a release anywhere wakes every replica's queue runner at once.
//     Each replica tells its own queued users their positions.
//
// Exactly once, across replicas, means: OnRelease runs once per lease, on
// one replica, and DestroySession is called by one claimer per
// generation. If a claimer dies (or stalls, or loses the store) after it
// called DestroySession and before it finished the lease, its claim runs
// out and another replica claims the same generation and calls
// DestroySession again. That second call is harmless: the user's session
// is already gone or going (UnsupportedOperation.Stopping counts as done),
// and no newer lease of the user can exist meanwhile, since a Start waits
// for the release. A replica whose claim was taken over learns it when it
// tries to finish and runs no OnRelease.
//
// When the store is unreachable, Start fails at once (within
// [WithStoreTimeout], 2 s) with a *[StoreError] (errors.As); connected
// clients keep their connections; a release that could not be claimed,
// carried out or recorded stays in the release queue and is retried with
// its backoff until it is done, never dropped; the head of the queue
// waits. A replica that dies loses no lease: the leases, the queue and the
// claims are in the store, its users resume on another replica, and what
// it was doing (a release, the head) is taken over when its claim or lock
// runs out. The idle count of its users goes on from the activity it last
// refreshed into the store, so an idle release ([WithIdleRelease]) of a user
// who resumes elsewhere can come up to one
// [heartbeat.StoreRefreshInterval] (3 s) early; a replica that lives on
// hands its users' last activity over as their connections move (see
// package heartbeat, "Several replicas"). A store that lost its data (a Redis restarted empty) and
// implements [LeaseRebuilder] finds it out before it answers this replica
// anything else (at the latest at the queue runner's next poll), logs it
// once at error level, and writes back what the replica has on its books:
// its active leases (generation, Start request, ServerSession), its queued
// users with their tickets, the leases it is starting, the releases it
// carries out (which then go on and finish once); its generation counter
// moves past every generation handed out before. Lost are the leases no
// live replica has on its books (those of a replica that died, or only
// ever seen by one that is gone), which CAR's own reconnect wait then
// frees; package redisstore's documentation says exactly what is rebuilt,
// what a Redis failover can lose, and what then happens.
//
// Every replica verifies every user's heartbeat token, so they share one
// token key ring (WithHeartbeat(heartbeat.WithTokenKeys(current,
// older...))), and [SessionManager.SetTokenKeys] rotates it at run time,
// closing no connection. Rotate from key A to key B in three phases, each
// finished on every replica before the next begins:
//
//  1. SetTokenKeys(A, B): B is accepted everywhere, A still mints.
//  2. SetTokenKeys(B, A): B mints; tokens signed with A still work.
//  3. SetTokenKeys(B), once no client still holds a token signed with A
//     (a connected client keeps the resume token of its last welcome for
//     as long as it stays connected).
//
// A replica that makes B current before every replica accepts it issues
// tokens the others refuse with 4002 "invalid token", which a client takes
// as final. A client that presents a token signed with a dropped key gets
// the same 4002 on every replica and stops; unless the application calls
// Start again for the user (a new token; within the reconnect wait the same
// concurrency), the lease is released as "disconnected" when the reconnect
// wait ends. Package heartbeat ("Rotating the token key") has the details.
//
// [SessionManager.Drain] is the shutdown of a rolling deploy: it
// releases nothing and closes the heartbeat connections with 1001 so the
// clients resume elsewhere; [SessionManager.Shutdown] with a store is the
// last replica's: it releases every lease of the project.
//
// # The client's stream
//
// A browser client speaking heartbeat protocol version 2 reports TCGSDK's
// stream events. The manager passes them to [OnStreamEvent]; a stream lost
// for good (TCGSDK gave up reconnecting) releases the concurrency or starts
// it again ([WithStreamLost]). TCGSDK's disconnect codes 1 and 2 are hints
// its own docs call unreliable: the heartbeat stays the truth about
// presence.
//
// [SessionManager.Snapshot] reports each user's state and the counters:
// active, disconnected, waiting, pending releases, released by reason,
// DestroySession calls, retries and failures, notices sent. Measured costs
// are in BENCHMARKS.md.
package car
