package heartbeat

import (
	"errors"
	"net/http"
	"strconv"
)

// Sentinel errors. Match them with errors.Is; the typed errors below map to
// them where it makes sense.
var (
	// ErrServerClosed is returned by Server methods after Shutdown.
	ErrServerClosed = errors.New("heartbeat: server closed")
	// ErrUnknownSession is returned by Server methods given an id that has
	// no session (never opened, expired, or released).
	ErrUnknownSession = errors.New("heartbeat: unknown session")
	// ErrExpired reports a session that no longer exists on the server: the
	// grace window passed without a resume, or the server refused a resume.
	ErrExpired = errors.New("heartbeat: session expired")
	// ErrUnauthorized reports a refused token or authorization hook.
	ErrUnauthorized = errors.New("heartbeat: unauthorized")
	// ErrReplaced reports a connection taken over by a newer one for the
	// same session.
	ErrReplaced = errors.New("heartbeat: replaced by a newer connection")
	// ErrTooManyNotices is returned by Server.Send when a session already
	// holds the maximum number of undelivered notices of distinct kinds.
	ErrTooManyNotices = errors.New("heartbeat: too many undelivered notices")
)

// ValidationError reports a bad argument or option: which one, and the rule
// it broke.
type ValidationError struct {
	// Field names the argument or option, e.g. "session id" or
	// "WithPingTimeout".
	Field string
	// Rule says what is required.
	Rule string
}

func (e *ValidationError) Error() string {
	return "heartbeat: invalid " + e.Field + ": " + e.Rule
}

// CloseError reports that the server closed the WebSocket connection with a
// close code, e.g. [CloseUnauthorized] when a hello was refused. It matches
// [ErrExpired], [ErrUnauthorized] and [ErrReplaced] with errors.Is when the
// code says so.
type CloseError struct {
	// Code is the WebSocket close code, e.g. CloseExpired.
	Code int
	// Reason is the close reason text sent by the server.
	Reason string
}

func (e *CloseError) Error() string {
	s := "heartbeat: server closed the connection with code " + strconv.Itoa(e.Code)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is reports whether the close code corresponds to target.
func (e *CloseError) Is(target error) bool {
	switch target {
	case ErrExpired:
		return e.Code == CloseExpired
	case ErrUnauthorized:
		return e.Code == CloseUnauthorized
	case ErrReplaced:
		return e.Code == CloseReplaced
	}
	return false
}

// ReleasedError is the final error of a Go client (hbclient.Client) that the server released
// with Server.Release.
type ReleasedError struct {
	// Reason is the reason given to Server.Release.
	Reason string
}

func (e *ReleasedError) Error() string {
	if e.Reason == "" {
		return "heartbeat: session released"
	}
	return "heartbeat: session released: " + e.Reason
}

// HandshakeError reports that the HTTP upgrade to WebSocket failed, e.g. 403
// when the Origin is not allowed, or that the server did not select
// [Subprotocol].
type HandshakeError struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Detail says more when the status alone does not explain the failure.
	Detail string
}

func (e *HandshakeError) Error() string {
	s := "heartbeat: websocket handshake failed: HTTP " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}
