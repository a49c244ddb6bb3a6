// Package hbclient is the Go client of the heartbeat (package
// [github.com/tcconcurrency/sdk-go/heartbeat], whose doc specifies the wire
// protocol), for Go clients, bots and tests. Browsers use heartbeat.js from
// package heartbeat/web instead.
//
// A [Client] is the client side of one session; the server side's view of
// a session is heartbeat.SessionInfo and its heartbeat.SessionState. The
// two sides take different option types ([Option] here,
// heartbeat.ServerOption there), so no option goes to the wrong side.
//
// [Connect] dials, sends the hello and returns once welcomed; a refusal is a
// typed error (*heartbeat.HandshakeError, *heartbeat.CloseError matching
// heartbeat.ErrUnauthorized, heartbeat.ErrExpired…). The Client's loop then
// answers pings, reports [Client.Touch] as coalesced activity frames
// ([WithActivityInterval]), fires local idle callbacks ([OnIdle]: 1×, 2×…
// the idle threshold after the last Touch), and treats the server's
// pingTimeout without any frame from the server as a dropped connection.
//
// After a drop it resumes with its latest resume token, waiting before
// each attempt as [WithReconnectDelay] says (by default the SDK's one
// exponential backoff with jitter, described in package internal/retry,
// starting again from its first wait in every outage), for at most the
// resume window: the server's reconnect
// window as its welcome states it, or [WithResumeWindow], counted from the
// last frame exchanged, as the server counts its window from the last frame
// it received.
//
// States ([State]): connecting, connected, reconnecting, then expired (the
// server refused the resume, or the window passed) or closed (Close, or
// the server released, replaced or refused it; [Client.Err] says which,
// e.g. *heartbeat.ReleasedError). [Client.Close] sends a normal close frame
// and waits for every goroutine of the Client. Callbacks run one at a time,
// in order, with no lock held.
//
// The Client offers heartbeat.SubprotocolV2 first; [Client.ReportStream]
// sends stream frames to a v2 server (the latest report again after each
// resume) and fails with [ErrStreamUnsupported] on a v1 one.
//
// To simulate a network failure in tests, give [WithDialer] a dialer whose
// NetDialContext keeps the net.Conn it returns, and close that conn; package
// heartbeat's own tests do so over an in-memory network inside
// testing/synctest bubbles.
package hbclient
