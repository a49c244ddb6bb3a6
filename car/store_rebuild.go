package car

// A shared store that lost its data (a Redis restarted empty) rebuilds
// what each replica holds from that replica's books (LeaseRebuilder).

// watchStore subscribes to the store's events and, if the store can lose
// its data, registers this replica's books with it. The stop it returns
// undoes both.
func (m *SessionManager) watchStore() (stop func()) {
	stopWatch := m.store.Watch(m.onStoreEvent)
	r, ok := m.store.(LeaseRebuilder)
	if !ok {
		return stopWatch
	}
	stopHeld := r.OnDataLoss(m.heldLeases)
	return func() {
		stopWatch()
		stopHeld()
	}
}

// heldLeases lists the leases on this replica's books for a store that
// lost its data: its queued users first, in queue order, then the leases
// it starts, holds or releases. Left out: a Start's placeholder (no
// generation yet; its Create is answered after the rebuild), a release the
// manager finishes without the store (lost), and a release not yet claimed
// that this replica never saw reach CAR (its lease, if any, is on its
// owner's books).
func (m *SessionManager) heldLeases() []LeaseRecord {
	me := m.store.Replica()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]LeaseRecord, 0, len(m.users))
	seen := make(map[*entry]bool, len(m.users))
	add := func(e *entry) {
		seen[e] = true
		if e.done || e.gen == 0 || e.lost || m.users[e.userID] != e {
			return
		}
		r := LeaseRecord{
			UserId: e.userID, Generation: e.gen, Owner: me, Applied: e.applied,
			Request: e.req, ServerSession: e.serverSession,
		}
		switch e.state {
		case LeaseQueued:
			r.State, r.Ticket = LeaseQueued, e.storeTicket
		case LeaseStarting:
			r.State, r.Applied, r.Holder, r.HoldLeft = LeaseStarting, true, me, m.holdTTL()
		case LeaseReleasing:
			if !e.claimed && !e.applied {
				return
			}
			r.State, r.Reason, r.Holder, r.HoldLeft = LeaseReleasing, e.reason, me, m.cfg.claimTTL
		default: // active, disconnected
			r.State = LeaseActive
		}
		out = append(out, r)
	}
	m.queue.each(func(e *entry, _ int) bool {
		add(e)
		return true
	})
	for _, e := range m.users {
		if !seen[e] {
			add(e)
		}
	}
	return out
}
