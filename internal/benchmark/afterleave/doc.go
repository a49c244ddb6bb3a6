// Package afterleave measures what users pay for: the concurrency-seconds
// CAR keeps holding (and billing) after a user left, with this SDK's
// SessionManager at its defaults and with CAR alone.
//
// The measurement is a Go test, TestAfterLeave, that runs inside
// testing/synctest bubbles: the CAR reference server (car/cartest), the
// SessionManager, its heartbeat endpoint and every client run on
// in-memory networks (internal/memnet) on the bubble's fake clock, so the
// default timings (a 25 s ping, a 90 s reconnect wait, a 10 s cleanup) cost
// no wall time and are measured exactly.
//
// # The model
//
// Each case has users (200 by default) who start at a jittered time within
// the first 30 s, are active (heartbeat activity every 10–40 s) and leave
// after 60–300 s, in one of four ways:
//
//   - silent vanish: the heartbeat connection stays open but nothing more
//     is read from it or sent on it (a laptop lid closed, a network that
//     black-holes packets); the connection is frozen, and new dials fail.
//     CAR's own stream sees its heartbeats stop: its reconnect wait starts
//     at once (cartest's Server.ExpireHeartbeat; CAR does not document how
//     long it takes to notice, and taking it as zero favours CAR alone).
//   - TCP cut: both connections are broken (the far end sees the
//     connection lost) and new dials fail.
//   - clean close: the page closes its heartbeat WebSocket with 1000
//     (half the users) or 1001 (the other half, as a browser does when a
//     tab closes or navigates), and its CAR stream with a close frame.
//   - reload within the grace: a clean close as above, then the page comes
//     back 1–5 s later, resumes its heartbeat with the resume token of its
//     last welcome, and reconnects its CAR stream with the same
//     ServerSession.
//
// Every case runs in two worlds side by side in the same bubble, with the
// same users doing the same things at the same instants: "sdk", where a
// backend runs car.SessionManager at its defaults (users start with
// Start and connect an hbclient.Client at its defaults), and "car alone",
// where the backend calls ApplyConcurrent and CreateSession and nothing
// else, so only CAR's own reconnect wait (90 s) and cleanup (10 s) free
// the concurrency. Each world has its own reference server at its
// defaults (rate limits included).
//
// # Figures
//
// Held: from the instant the user left to the instant the concurrency is
// idle again in CAR (its "released" event), in seconds; p50, p99, max and
// mean over the users. DestroySession: from the instant the user left to
// the manager's release (OnRelease), for the sdk world. For the reload
// case: the share of users who, 150 s after coming back, still hold the
// same concurrency, connected, with no release in between.
//
// Run it with
//
//	go test -run TestAfterLeave ./internal/benchmark/afterleave -args -json out.json
//
// .ci/bench does, and the report (internal/benchmark/report) renders the
// table in BENCHMARKS.md. The test asserts what must hold whatever the
// defaults: every concurrency is released, the SDK never holds one longer
// than CAR alone, CAR alone holds for exactly its wait plus its cleanup,
// and a reload within the grace resumes the same concurrency every time.
// The targets (clean close ≤ 0.2× and silent vanish ≤ 0.75× CAR
// alone) are checked by the report, not asserted.
package afterleave
