package car

import (
	"slices"
	"strings"
	"time"
)

// UserSnapshot is one user's state in a Snapshot.
type UserSnapshot struct {
	UserId           string //nolint:revive
	State            LeaseState
	Since            time.Time
	QueuePosition    int
	Connected        bool
	IdleTimes        int
	HeartbeatSession string
	// For a lease being released: the DestroySession calls made, the last
	// transient failure and when the next attempt is due (zero while one
	// runs).
	ReleaseAttempts  int
	ReleaseError     string
	ReleaseNextRetry time.Time
	// StartError is the last transient failure of a queued user's
	// admission, while it is the head and retrying.
	StartError string
}

// Snapshot is the manager's state at one moment.
type Snapshot struct {
	Users        []UserSnapshot // by UserId
	Active       int            // holding a concurrency (active or disconnected)
	Disconnected int            // of which the client is gone
	Waiting      int            // queued
	// PendingReleases counts leases whose DestroySession failed for a
	// transient reason and waits for a retry.
	PendingReleases int
	// Released counts finished leases by reason since the manager started.
	Released map[ReleaseReason]int
	// DestroyCalls counts leases released with DestroySession (once per
	// lease, however many attempts it took); DestroyFailures those that
	// failed for good (a permanent error); DestroyRetries the transient
	// failures that sent a release to the release queue.
	DestroyCalls, DestroyFailures, DestroyRetries int
	// NoticesSent counts the queue, ready and other notices the manager
	// sent.
	NoticesSent int
	// FinishedElsewhere counts leases this replica had on its books that
	// another replica released (with a shared LeaseStore): OnRelease ran
	// there.
	FinishedElsewhere int
}

// Snapshot reports every user's state and the counters.
func (m *SessionManager) Snapshot() Snapshot {
	m.mu.Lock()
	s := Snapshot{
		Users:             make([]UserSnapshot, 0, len(m.users)),
		Released:          make(map[ReleaseReason]int, len(m.stats.released)),
		DestroyCalls:      m.stats.destroyCalls,
		DestroyFailures:   m.stats.destroyFail,
		DestroyRetries:    m.stats.destroyRetries,
		NoticesSent:       m.stats.noticesSent,
		FinishedElsewhere: m.stats.forgotten,
		PendingReleases:   len(m.relPending),
	}
	for k, v := range m.stats.released {
		s.Released[k] = v
	}
	for _, e := range m.users {
		u := UserSnapshot{UserId: e.userID, State: e.state, Since: e.since, HeartbeatSession: e.hbID}
		switch {
		case e.inQueue: // queued, or the head being admitted
			u.QueuePosition = m.queue.position(e)
			s.Waiting++
			if e.headErr != nil {
				u.StartError = e.headErr.Error()
			}
		}
		switch e.state {
		case LeaseActive:
			s.Active++
		case LeaseDisconnected:
			s.Active++
			s.Disconnected++
		case LeaseReleasing:
			u.ReleaseAttempts = e.relAttempts
			if e.relErr != nil {
				u.ReleaseError = e.relErr.Error()
			}
			if !e.relRunning {
				u.ReleaseNextRetry = e.relNext
			}
		}
		s.Users = append(s.Users, u)
	}
	m.mu.Unlock()
	for i := range s.Users {
		if s.Users[i].HeartbeatSession == "" {
			continue
		}
		if info, ok := m.hb.Session(s.Users[i].HeartbeatSession); ok {
			s.Users[i].Connected, s.Users[i].IdleTimes = info.Connected, info.IdleTimes
		}
	}
	sortUsers(s.Users)
	return s
}

func sortUsers(u []UserSnapshot) {
	slices.SortFunc(u, func(a, b UserSnapshot) int { return strings.Compare(a.UserId, b.UserId) })
}
