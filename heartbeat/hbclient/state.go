package hbclient

import "strconv"

// State is a Client's state.
type State int32

// Client states. Expired and Closed are final.
const (
	// StateConnecting: Connect is running.
	StateConnecting State = iota
	// StateConnected: the server accepted the hello.
	StateConnected
	// StateReconnecting: the connection dropped; resuming with backoff.
	StateReconnecting
	// StateExpired: the session is gone on the server (grace window passed
	// or resume refused). Get a fresh token from the backend to start over.
	StateExpired
	// StateClosed: Close was called, or the server released, replaced or
	// refused the session.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateExpired:
		return "expired"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}
