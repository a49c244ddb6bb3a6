package car

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The manager and its LeaseStore: a store shared with the other replicas
// (WithLeaseStore), or, without one, an in-memory store of the manager's
// own. The local entries are a working copy of the leases this replica
// deals with: those it started, and those it adopted from the store
// because a heartbeat callback, a Start or a Stop of another replica's
// lease reached it. Every decision that several replicas could take at
// once goes to the store: a new lease (Create), the release (Claim, then
// Finish), the head of the queue (LockHead) and its admission (Update). An
// entry whose lease the store no longer has is forgotten without a
// callback: the replica that finished the lease ran OnRelease.

// storeCtx bounds one store call (WithStoreTimeout). The private store
// answers from memory at once: its calls need no timer.
func (m *SessionManager) storeCtx(parent context.Context) (context.Context, context.CancelFunc) {
	if m.private {
		return parent, func() {}
	}
	return context.WithTimeout(parent, m.cfg.storeTimeout)
}

// holdTTL is how long a start holds its lease in the store; the starter
// renews it before each round of ApplyConcurrent and CreateSession.
func (m *SessionManager) holdTTL() time.Duration { return 2*m.cfg.apiTimeout + time.Second }

// headTTL is how long the head lock lasts; the holder renews it every poll.
func (m *SessionManager) headTTL() time.Duration { return m.holdTTL() + 2*m.cfg.queuePoll }

// startShared wires the store in: its events, and the queue runner.
func (m *SessionManager) startShared() {
	m.changed = make(chan struct{})
	m.stopWatch = m.watchStore()
	m.queueWG.Add(1)
	go m.runQueue()
}

// onStoreEvent wakes what waits on another replica: the queue, Starts
// waiting for a lease held elsewhere; a lease finished elsewhere leaves
// this replica's books.
func (m *SessionManager) onStoreEvent(ev LeaseEvent) {
	// The runner is woken once the event is on the books (after the
	// unlock): woken before, it could run its round on the old books and
	// then sleep a poll.
	defer m.kickQueue()
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	if ev.Replica != m.store.Replica() {
		switch ev.Kind {
		case LeaseEventQueue: // a join or a departure elsewhere: positions may have moved
			m.queue.credit += noticesPerMove
			m.queue.dirty = true
		case LeaseEventAdmitted:
			if e := m.users[ev.UserId]; e != nil && e.gen == ev.Generation && e.state == LeaseQueued {
				m.recheck = append(m.recheck, e)
			}
		}
	}
	var drop *entry
	if ev.Kind == LeaseEventReleased && ev.Replica != m.store.Replica() {
		if e := m.users[ev.UserId]; e != nil && e.gen == ev.Generation && e.state != LeaseStarting {
			drop = e
		}
	}
	if drop != nil {
		m.forgetLocked(drop)
	}
	m.mu.Unlock()
}

// changedChan is closed at the next store event.
func (m *SessionManager) changedChan() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// forgetLocked takes e off this replica's books without a release: its
// lease ended elsewhere, or was never made. Caller holds m.mu.
func (m *SessionManager) forgetLocked(e *entry) {
	delete(m.relPending, e) // also when done: a late retry may have queued it
	if e.done {
		return
	}
	e.done = true
	if m.users[e.userID] == e {
		delete(m.users, e.userID)
	}
	if e.hbID != "" && m.byHB[e.hbID] == e {
		delete(m.byHB, e.hbID)
	}
	delete(m.relPending, e)
	if e.inQueue {
		m.dequeueLocked(e)
	}
	if !e.wasAdmitted {
		if e.admitErr == nil && e.admitSession == "" {
			e.admitErr = ErrLeftQueue
		}
		e.wasAdmitted = true
		close(e.admitted)
	}
	close(e.released)
	m.stats.forgotten++
}

// finishRemote forgets e: its lease was finished by another replica.
func (m *SessionManager) finishRemote(e *entry) {
	m.mu.Lock()
	m.forgetLocked(e)
	m.mu.Unlock()
	m.kickQueue()
}

// adoptRecord returns this replica's entry for the lease rec, making one if
// there is none. It returns nil when another local lease of the user is in
// the way (starting or releasing here) or the manager is closing.
func (m *SessionManager) adoptRecord(rec LeaseRecord) *entry { return m.adopt(rec, false) }

// adopt is adoptRecord; evenClosing adopts while the manager shuts down.
func (m *SessionManager) adopt(rec LeaseRecord, evenClosing bool) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.users[rec.UserId]; e != nil {
		if e.gen == rec.Generation {
			return e
		}
		if e.gen > rec.Generation || e.state == LeaseStarting || e.state == LeaseReleasing {
			return nil
		}
		m.forgetLocked(e) // its lease ended elsewhere
	}
	if m.closing && !evenClosing {
		return nil
	}
	now := time.Now()
	e := &entry{
		userID: rec.UserId, gen: rec.Generation, hbID: rec.SessionID(), req: rec.Request, since: now,
		admitted: make(chan struct{}), released: make(chan struct{}),
		applied: rec.Applied, serverSession: rec.ServerSession, storeTicket: rec.Ticket,
	}
	switch rec.State {
	case LeaseQueued:
		e.state, e.queuedAt = LeaseQueued, now
		m.queue.push(e)
	case LeaseReleasing:
		e.state, e.reason, e.wasAdmitted = LeaseReleasing, rec.Reason, true
		close(e.admitted)
		e.relNext = now.Add(rec.HoldLeft)
		m.relPending[e] = struct{}{}
		m.startReleaseRunnerLocked()
	default: // starting elsewhere, or active
		e.state, e.wasAdmitted = LeaseActive, true
		e.admitSession = rec.ServerSession
		close(e.admitted)
	}
	m.users[e.userID], m.byHB[e.hbID] = e, e
	return e
}

// lookupEntry finds the entry of a heartbeat session, adopting it from the
// store if this replica has none.
func (m *SessionManager) lookupEntry(hbID string) *entry {
	if e := m.entryFor(hbID); e != nil || m.private {
		return e
	}
	user, gen, ok := ParseSessionID(hbID)
	if !ok {
		return nil
	}
	ctx, cancel := m.storeCtx(m.runCtx)
	rec, found, err := m.store.Get(ctx, user)
	cancel()
	if err != nil {
		m.log.Warn("lease store unreachable: a heartbeat event of another replica's lease is not applied", "session", hbID, "error", err)
		return nil
	}
	if !found || rec.Generation != gen {
		return nil
	}
	return m.adoptRecord(rec)
}

// adoptForRelease returns the entry of a heartbeat session that must be
// released (its grace ended, or it idled here), adopting it without asking
// the store: the release claim will say whether the lease still exists
// and holds a concurrency, and is retried until the store answers.
func (m *SessionManager) adoptForRelease(hbID string, ifHolding bool) *entry {
	if e := m.entryFor(hbID); e != nil || m.private {
		return e
	}
	user, gen, ok := ParseSessionID(hbID)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.users[user]; e != nil {
		if e.gen == gen {
			return e
		}
		if e.gen > gen || e.state == LeaseStarting || e.state == LeaseReleasing {
			return nil
		}
		m.forgetLocked(e)
	}
	e := &entry{userID: user, gen: gen, hbID: hbID, state: LeaseActive, since: time.Now(), ifHolding: ifHolding,
		wasAdmitted: true, admitted: make(chan struct{}), released: make(chan struct{})}
	close(e.admitted)
	m.users[user], m.byHB[hbID] = e, e
	return e
}

// adoptUser adopts the user's lease from the store (Stop on a replica that
// has no entry for it).
func (m *SessionManager) adoptUser(ctx context.Context, userID string) (*entry, error) {
	ctx, cancel := m.storeCtx(ctx)
	rec, found, err := m.store.Get(ctx, userID)
	cancel()
	if err != nil {
		return nil, storeErr("get", err)
	}
	if !found {
		return nil, nil
	}
	return m.adoptRecord(rec), nil
}

// Drain is the Shutdown of a rolling deploy, for a manager with a shared
// store: it stops admitting and gives the head of the queue up, lets the
// releases it has claimed finish within ctx, and drains the heartbeat
// server: every client is closed with 1001 ("going away, reconnect") and
// resumes on another replica. It releases nothing: the leases, the queue
// and the deadlines stay in the store. A release still being retried when
// ctx ends is reported as Shutdown reports one: logged at error level,
// handed to OnReleasePending and listed in the returned *ShutdownError.
// If the store holds its claim, another replica also takes it over once
// the claim's TTL ends (a second DestroySession for the same lease is
// harmless); if the claim never reached the store (it was unreachable),
// only that report knows of it: give it to a manager with
// WithPendingReleases. Without a shared store Drain refuses (nothing could
// take the users over): use Shutdown.
func (m *SessionManager) Drain(ctx context.Context) error {
	if m.private {
		return errors.New("car: Drain needs a shared lease store (WithStore or WithLeaseStore); without one use Shutdown, which releases")
	}
	stop, err := m.beginClose(ctx)
	if err != nil {
		return err
	}
	defer stop()
	m.stops.Wait()
	m.kickReleases()
	m.relWG.Wait() // the release runner stops when nothing is pending, or at ctx's end
	m.cancelRun()
	m.relWG.Wait()
	m.stopWatch()
	// A release this replica began and could not finish is never dropped
	// in silence: one whose claim the store has is finished by another
	// replica once the claim runs out (the orphan sweep), but one that
	// never reached the store (it was unreachable) is known only here.
	pending := m.handOver("drain", func(e *entry) bool { return e.state == LeaseReleasing })
	hbErr := m.hb.Drain(ctx)
	switch {
	case len(pending) > 0:
		return &ShutdownError{Op: "drain", Pending: pending, Err: ctx.Err()}
	case hbErr != nil:
		return fmt.Errorf("car: drain: %w", hbErr)
	}
	return ctx.Err()
}

// adoptAll puts every lease of the store on this replica's books, for
// Shutdown's release-all.
func (m *SessionManager) adoptAll(ctx context.Context) {
	sctx, cancel := m.storeCtx(ctx)
	recs, err := m.store.List(sctx)
	cancel()
	if err != nil {
		m.log.Error("shutdown: the lease store is unreachable; only this replica's leases are released", "error", err)
		return
	}
	for _, rec := range recs {
		m.adopt(rec, true)
	}
}

// maxOrphans bounds the orphaned releases taken over per sweep.
const maxOrphans = 100

// sweepOrphans, on the replica holding the head lock, takes over the
// releases whose claimer died: leases in state releasing whose claim ran
// out and that no replica retries (a claimer that ended the heartbeat
// session before it died leaves nobody else a reason to). It runs every
// half claim TTL at most.
func (m *SessionManager) sweepOrphans() {
	m.mu.Lock()
	now := time.Now()
	due := m.headMine && !now.Before(m.nextOrphanSweep)
	if due {
		m.nextOrphanSweep = now.Add(max(m.cfg.claimTTL/2, time.Second))
	}
	m.mu.Unlock()
	if !due {
		return
	}
	ctx, cancel := m.storeCtx(m.runCtx)
	defer cancel()
	var recs []LeaseRecord
	var err error
	if ol, ok := m.store.(OrphanLister); ok {
		recs, err = ol.Orphans(ctx, maxOrphans)
	} else {
		recs, err = m.store.List(ctx)
	}
	if err != nil {
		m.log.Debug("orphaned releases not swept", "error", err)
		return
	}
	for _, r := range recs {
		if r.State != LeaseReleasing || r.HoldLeft > 0 {
			continue
		}
		e := m.adoptRecord(r)
		if e == nil {
			continue
		}
		m.log.Warn("taking over a release whose claimer is gone", "user", r.UserId, "generation", r.Generation, "claimer", r.Holder)
		m.takeOver(e, r.Reason)
	}
}

// takeOver makes this replica carry out the release of e, which another
// replica claimed and left (its claim ran out). An entry adopted for it is
// already in the release queue; one this replica had on its books before
// (the user was connected here, or queued here) is moved to releasing and
// queued for an attempt now. A starting entry is released when its start
// settles.
func (m *SessionManager) takeOver(e *entry, reason ReleaseReason) {
	m.mu.Lock()
	if e.done || m.users[e.userID] != e {
		m.mu.Unlock()
		return
	}
	if reason == "" {
		reason = ReleaseDisconnected
	}
	switch e.state {
	case LeaseReleasing: // queued for its next attempt, or one runs now
		m.retryReleaseNowLocked(e)
		m.mu.Unlock()
	case LeaseStarting:
		if e.pending == "" {
			e.pending = reason
		}
		m.mu.Unlock()
	case LeaseQueued:
		m.mu.Unlock()
		m.release(e, reason)
	default: // active or disconnected here
		e.state, e.since, e.reason = LeaseReleasing, time.Now(), reason
		m.mu.Unlock()
		m.releaseLater(e, nil, 0)
	}
}
