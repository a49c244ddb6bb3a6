package heartbeat

import (
	"encoding/json"
	"strconv"
	"time"
)

// Event describes one occurrence handed to a callback. Only the fields that
// apply to the callback are set.
type Event struct {
	// SessionID is the application's id for the session.
	SessionID string
	// At is when the event happened: for OnIdle the moment the threshold was
	// crossed, otherwise the moment it was detected.
	At time.Time
	// Times counts idle thresholds since the last user activity (OnIdle
	// only): 1, 2, 3…
	Times int
	// Reason says why the connection ended (OnDisconnect only).
	Reason Reason
	// CloseCode is the close code the client sent (OnDisconnect with
	// ReasonClientClosed): 1000 or 1001 from a page that closed, 1005 for a
	// close frame without a code.
	CloseCode int
	// LastSeen is when the last frame of any kind arrived from the client
	// (OnDisconnect only). The grace counts from it.
	LastSeen time.Time
	// ExpiresAt is when the session expires unless a client resumes it
	// (OnDisconnect only, zero for ReasonReplaced): LastSeen plus the reload
	// grace or the reconnect window, depending on Reason, and never before
	// the disconnect was detected.
	ExpiresAt time.Time
	// Stream is the client's stream report (OnStream only).
	Stream StreamReport
}

// Reason says why a connection ended.
type Reason string

// Reasons reported by OnDisconnect.
const (
	// ReasonClientClosed: the client sent a close frame (e.g. page closed).
	ReasonClientClosed Reason = "closed by client"
	// ReasonConnectionLost: the connection broke without a close frame.
	ReasonConnectionLost Reason = "connection lost"
	// ReasonPingTimeout: nothing arrived within the ping timeout.
	ReasonPingTimeout Reason = "ping timeout"
	// ReasonProtocolError: the client sent a bad frame.
	ReasonProtocolError Reason = "bad frame"
	// ReasonMessageTooBig: the client sent a frame over the size limit.
	ReasonMessageTooBig Reason = "message too big"
	// ReasonWriteTimeout: a write to the client did not finish within the
	// write timeout (a client that stopped reading).
	ReasonWriteTimeout Reason = "write timed out"
	// ReasonRateLimited: the client sent frames faster than the rate limit
	// (WithFrameRateLimit); it was closed with CloseRateLimited.
	ReasonRateLimited Reason = "rate limited"
	// ReasonReplaced: a newer connection for the session took over. OnResume
	// follows at once.
	ReasonReplaced Reason = "replaced by a newer connection"
)

// SessionState is the server's view of a session.
type SessionState uint8

// Server-side session states. A session that expired or was released no
// longer exists.
const (
	// SessionWaiting: opened, no client has connected yet.
	SessionWaiting SessionState = iota
	// SessionConnected: a client is connected.
	SessionConnected
	// SessionDisconnected: the client is gone; the grace window is running.
	SessionDisconnected
)

func (s SessionState) String() string {
	switch s {
	case SessionWaiting:
		return "waiting"
	case SessionConnected:
		return "connected"
	case SessionDisconnected:
		return "disconnected"
	}
	return "SessionState(" + strconv.Itoa(int(s)) + ")"
}

// SessionInfo is a snapshot of a session, from Server.Session.
type SessionInfo struct {
	ID    string
	State SessionState
	// Connected reports whether a client is connected (State ==
	// SessionConnected).
	Connected bool
	// OpenedAt is when Open created the session.
	OpenedAt time.Time
	// Since is when the session entered its current state (for a
	// disconnected one, when the disconnect was detected) or, with no client
	// connected, was last opened.
	Since time.Time
	// ExpiresAt is when a session with no client connected expires unless
	// one connects; zero while connected.
	ExpiresAt time.Time
	// LastSeen is when the last frame of any kind arrived from a client;
	// zero if none ever connected.
	LastSeen time.Time
	// LastActivity is when the client last reported user activity (or when
	// the session was opened).
	LastActivity time.Time
	// IdleTimes is how many idle thresholds have passed since LastActivity.
	IdleTimes int
}

// NoticeKind names a notice. It is the "type" of the notice frame on the
// wire.
type NoticeKind string

// Notice kinds. The application sends queue, ready and custom notices with
// Server.Send; the Server itself sends idle and released notices.
const (
	// NoticeQueue: the user's position in the application's queue.
	NoticeQueue NoticeKind = "queue"
	// NoticeReady: the application is ready for the user; Data carries what
	// the client needs (e.g. the CAR ServerSession).
	NoticeReady NoticeKind = "ready"
	// NoticeCustom: an application-defined notice identified by Name.
	NoticeCustom NoticeKind = "custom"
	// NoticeIdle: the server counted Times idle thresholds.
	NoticeIdle NoticeKind = "idle"
	// NoticeReleased: the server released the session for Reason.
	NoticeReleased NoticeKind = "released"
)

// Notice is a message from the server to the client.
//
// While a session has no connected client, the Server keeps the latest
// undelivered notice of each kind (and, for custom notices, each name) and
// sends them right after the welcome of the next connection. A newer notice
// replaces an undelivered one of the same kind and name. Delivery is best
// effort: a notice written to a connection that then breaks is not sent
// again.
type Notice struct {
	// Kind says what the notice is about.
	Kind NoticeKind
	// Position is the queue position (NoticeQueue); not negative.
	Position int
	// Name identifies a custom notice (NoticeCustom): 1 to
	// MaxNoticeNameLen bytes.
	Name string
	// Data is opaque JSON for NoticeReady and NoticeCustom, at most
	// MaxNoticeDataSize bytes. Empty means none.
	Data json.RawMessage
	// Times is the idle count (NoticeIdle).
	Times int
	// Reason is the release reason (NoticeReleased).
	Reason string
}

// key identifies notices that replace each other while undelivered.
func (n Notice) key() string {
	if n.Kind == NoticeCustom {
		return string(n.Kind) + "/" + n.Name
	}
	return string(n.Kind)
}

func (n Notice) validate() error {
	switch n.Kind {
	case NoticeQueue:
		if n.Position < 0 {
			return &ValidationError{Field: "Notice.Position", Rule: "must not be negative, got " + strconv.Itoa(n.Position)}
		}
	case NoticeReady:
	case NoticeCustom:
		if n.Name == "" || len(n.Name) > MaxNoticeNameLen {
			return &ValidationError{Field: "Notice.Name", Rule: "must be 1 to " + strconv.Itoa(MaxNoticeNameLen) + " bytes for a custom notice, got " + strconv.Itoa(len(n.Name))}
		}
		if err := checkText("Notice.Name", n.Name); err != nil {
			return err
		}
	case NoticeIdle, NoticeReleased:
		return &ValidationError{Field: "Notice.Kind", Rule: "idle and released notices are sent by the Server itself; use queue, ready or custom"}
	default:
		return &ValidationError{Field: "Notice.Kind", Rule: "must be queue, ready or custom, got " + quoteShort(string(n.Kind))}
	}
	if len(n.Data) > MaxNoticeDataSize {
		return &ValidationError{Field: "Notice.Data", Rule: "must be at most " + strconv.Itoa(MaxNoticeDataSize) + " bytes, got " + strconv.Itoa(len(n.Data))}
	}
	if len(n.Data) > 0 && !json.Valid(n.Data) {
		return &ValidationError{Field: "Notice.Data", Rule: "must be valid JSON"}
	}
	return nil
}
