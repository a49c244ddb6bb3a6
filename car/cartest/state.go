package cartest

import (
	"fmt"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
)

// State is the state of one concurrency.
type State int

// States of a concurrency. Every state but StateIdle counts as Running in
// DescribeConcurrentCount.
const (
	// StateIdle: free for any user of a project its pack serves.
	StateIdle State = iota
	// StateLocked: ApplyConcurrent locked it for a user; CreateSession
	// must follow within the lock time.
	StateLocked
	// StateCreated: CreateSession started the application; the user's
	// client has not connected its stream yet. The reconnect wait runs.
	StateCreated
	// StateConnected: the user's client stream is open.
	StateConnected
	// StateDisconnected: the client stream went away without
	// DestroySession; the concurrency waits for the same user to come back
	// for the project's reconnect wait.
	StateDisconnected
	// StateCleanup: the session ended (DestroySession, or the reconnect
	// wait ran out); the concurrency is cleaned up, then idle.
	StateCleanup
)

// String returns the state's name, e.g. "connected".
func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateLocked:
		return "locked"
	case StateCreated:
		return "created"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateCleanup:
		return "cleanup"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Concurrency is a snapshot of one concurrency, as Server.Concurrencies and
// Server.User return it.
type Concurrency struct {
	ConcurrencyId string //nolint:revive // the API's spelling
	PackId        string //nolint:revive
	State         State
	// Since is the model time the concurrency entered State.
	Since time.Time
	// Until is the model time State ends by itself (the lock expires, the
	// reconnect wait runs out, the cleanup ends); zero if it does not.
	Until time.Time
	// UserId is the user it serves; in StateCleanup, the user it served.
	// Empty when idle.
	UserId string //nolint:revive
	// UserIp is the UserIp of the user's latest ApplyConcurrent or
	// CreateSession.
	UserIp string //nolint:revive
	// ProjectId is the project the user applied for.
	ProjectId string //nolint:revive
	// RunMode and ApplicationParameters are those of the latest
	// CreateSession.
	RunMode               string
	ApplicationParameters string
	// Destroyed is set in StateCleanup after DestroySession: until the
	// concurrency is idle, calls for the user answer
	// UnsupportedOperation.Stopping. A cleanup after the reconnect wait
	// has already let the user go.
	Destroyed bool
	// Push is the cloud stream push, nil when there is none.
	Push *Push
}

// String formats the snapshot on one line, e.g.
// "pack-cartest1-1 connected since 00:01:00 user=u1 project=cap-cartest1".
func (c Concurrency) String() string {
	var b strings.Builder
	b.WriteString(c.ConcurrencyId + " " + c.State.String() + " since " + c.Since.UTC().Format("15:04:05"))
	if !c.Until.IsZero() {
		b.WriteString(" until " + c.Until.UTC().Format("15:04:05"))
	}
	if c.UserId != "" {
		b.WriteString(" user=" + c.UserId + " project=" + c.ProjectId)
	}
	if c.Destroyed {
		b.WriteString(" destroyed")
	}
	if c.Push != nil {
		b.WriteString(" push=" + c.Push.URL)
	}
	return b.String()
}

// Push is a cloud stream push of a session.
type Push struct {
	// URL is where the stream goes: the StartPublishStreamWithURL URL, or
	// for StartPublishStream rtmp://push.cartest.invalid/live/<UserId>
	// with the PublishStreamArgs as its query (the real push domain is
	// the account's).
	URL string
	// WithURL reports StartPublishStreamWithURL.
	WithURL bool
	// Since is the model time the push started.
	Since time.Time
}

// EventKind names an entry of the event log. It is the same type as
// scftest.EventKind.
type EventKind = apiserver.EventKind

// Kinds of events. EventCall is an API call; the others are the model's
// own, each for one concurrency and user.
const (
	EventCall                 EventKind = apiserver.EventCall
	EventLocked               EventKind = "locked"                 // ApplyConcurrent locked an idle concurrency, or renewed the lock
	EventLockExpired          EventKind = "lock-expired"           // no CreateSession within the lock time
	EventReattached           EventKind = "reattached"             // ApplyConcurrent or CreateSession for a user that still holds a concurrency
	EventCreated              EventKind = "created"                // CreateSession issued a ServerSession
	EventConnected            EventKind = "connected"              // the client stream opened
	EventDisconnected         EventKind = "disconnected"           // the client stream went away without DestroySession
	EventRepeatedConnection   EventKind = "repeated-connection"    // a newer session or stream of the user replaced a connected stream
	EventReconnectWaitExpired EventKind = "reconnect-wait-expired" // no client within the reconnect wait: the user lost the concurrency
	EventDestroyed            EventKind = "destroyed"              // DestroySession
	EventReleased             EventKind = "released"               // the concurrency is idle again
	EventPushStarted          EventKind = "push-started"
	EventPushStopped          EventKind = "push-stopped"
)

// Event is one entry of the event log: an API call (Kind [EventCall]), or a
// change of a concurrency's state (the other kinds above). It is the one
// event type of both reference servers (scftest.Event is the same type).
// For cartest's model events, Subject is the UserId of the user and
// Resource the ConcurrencyId; both are empty for calls. Action and
// RequestId name the call that caused a model event (empty when time or
// the client stream caused it); Code is the error code a call answered
// ("" on success, "(dropped)" for a connection an injected fault
// dropped). String formats it on one line, e.g.
// "00:01:30.000 reconnect-wait-expired subject=u1 resource=pack-cartest1-1".
type Event = apiserver.Event
