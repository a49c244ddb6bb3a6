package car

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// The manager with a shared LeaseStore (WithLeaseStore). Its local entries
// are a working copy of the leases this replica deals with: those it
// started, and those it adopted from the store because a heartbeat
// callback, a Start or a Stop of another replica's lease reached it. Every
// decision that several replicas could take at once goes to the store: a
// new lease (Create), the release (Claim, then Finish), the head of the
// queue (LockHead) and its admission (Update). An entry whose lease the
// store no longer has is forgotten without a callback: the replica that
// finished the lease ran OnRelease.

// storeCtx bounds one store call (WithStoreTimeout).
func (m *SessionManager) storeCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, m.cfg.storeTimeout)
}

// holdTTL is how long a start holds its lease in the store; the starter
// renews it before each round of ApplyConcurrent and CreateSession.
func (m *SessionManager) holdTTL() time.Duration { return 2*m.cfg.apiTimeout + time.Second }

// headTTL is how long the head lock lasts; the holder renews it every poll.
func (m *SessionManager) headTTL() time.Duration { return m.holdTTL() + 2*m.cfg.queuePoll }

// startShared wires the store in when NewSessionManager has one.
func (m *SessionManager) startShared() {
	m.changed = make(chan struct{})
	m.stopWatch = m.store.Watch(m.onStoreEvent)
	m.running = true
	m.queueWG.Add(1)
	go m.runSharedQueue()
}

// onStoreEvent wakes what waits on another replica: the queue, Starts
// waiting for a lease held elsewhere; a lease finished elsewhere leaves
// this replica's books.
func (m *SessionManager) onStoreEvent(ev LeaseEvent) {
	m.kickQueue()
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
		applied: rec.Applied, serverSession: rec.ServerSession,
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
	if e := m.entryFor(hbID); e != nil || m.store == nil {
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
	if e := m.entryFor(hbID); e != nil || m.store == nil {
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

// nextSharedStep is nextStartStep with a store: a user with no local entry
// gets a placeholder (state starting, so that a second Start waits for the
// first) while the store is asked.
func (m *SessionManager) nextSharedStep(req StartRequest) (startStep, *entry, <-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return 0, nil, nil, ErrManagerClosed
	}
	e := m.users[req.UserId]
	if e == nil {
		e = &entry{userID: req.UserId, req: req, since: time.Now(), admitted: make(chan struct{}), released: make(chan struct{})}
		m.beginStartLocked(e)
		m.users[e.userID] = e
		return stepCreate, e, nil, nil
	}
	switch e.state {
	case LeaseReleasing:
		m.retryReleaseNowLocked(e)
		return stepWait, e, e.released, nil
	case LeaseStarting:
		return stepWait, e, e.busy, nil
	case LeaseQueued:
		e.req = req
		return stepLease, e, nil, nil
	default:
		e.req, e.resume = req, e.state
		m.beginStartLocked(e)
		return stepReattach, e, nil, nil
	}
}

// dropPlaceholder removes the placeholder of a Start whose lease was not
// created here.
func (m *SessionManager) dropPlaceholder(e *entry, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settleLocked(e)
	e.admitErr = err
	if e.admitErr == nil {
		e.admitErr = ErrLeftQueue
	}
	m.forgetLocked(e)
	m.stats.forgotten--
}

// waitElsewhere waits while another replica holds the user's lease: until
// the next store event or the hold's end (at most a poll interval, in case
// an event was lost).
func (m *SessionManager) waitElsewhere(ctx context.Context, left time.Duration) error {
	d := min(max(left, 10*time.Millisecond), m.cfg.queuePoll)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.changedChan():
	case <-ctx.Done():
		return fmt.Errorf("car: Start: the user's lease is held by another replica: %w", ctx.Err())
	}
	return nil
}

// startWithStore is Start with a shared store.
func (m *SessionManager) startWithStore(ctx context.Context, req StartRequest) (*Lease, error) {
	for {
		step, e, wait, err := m.nextSharedStep(req)
		if err != nil {
			return nil, err
		}
		switch step {
		case stepWait:
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, m.waitError(e, ctx.Err())
			}
		case stepLease:
			ok, err := m.stillQueued(ctx, e)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			return m.lease(e)
		case stepReattach:
			l, held, err := m.reattachShared(ctx, e)
			if held >= 0 {
				if err := m.waitElsewhere(ctx, held); err != nil {
					return nil, err
				}
				continue
			}
			return l, err
		}
		// stepCreate: e is a placeholder.
		sctx, cancel := m.storeCtx(ctx)
		rec, created, err := m.store.Create(sctx, CreateLease{Request: req, Queue: m.cfg.queueLimit > 0, QueueLimit: m.cfg.queueLimit, Hold: m.holdTTL()})
		cancel()
		if err != nil {
			err = storeErr("create", err)
			m.dropPlaceholder(e, err)
			return nil, err
		}
		if !created {
			m.dropPlaceholder(e, nil)
			if rec.State == LeaseStarting && rec.Holder != m.store.Replica() && rec.HoldLeft > 0 {
				if err := m.waitElsewhere(ctx, rec.HoldLeft); err != nil {
					return nil, err
				}
				continue
			}
			if m.adoptRecord(rec) == nil {
				if err := m.waitElsewhere(ctx, m.cfg.queuePoll); err != nil {
					return nil, err
				}
			}
			continue
		}
		m.mu.Lock()
		e.gen, e.hbID = rec.Generation, rec.SessionID()
		m.byHB[e.hbID] = e
		if rec.State == LeaseQueued {
			pending := e.pending
			e.pending = ""
			m.settleLocked(e)
			m.enqueueLocked(e)
			m.mu.Unlock()
			if pending != "" { // Stop or Shutdown came meanwhile
				m.release(e, pending)
				_, err := e.admission()
				return nil, err
			}
			return m.leaseQueued(e)
		}
		m.mu.Unlock()
		return m.startNewShared(ctx, e)
	}
}

// stillQueued checks with the store that the lease of e, queued on this
// replica's books, is still queued before Start hands out a fresh token
// for it: this replica may not have heard yet that another replica
// admitted it, or admitted and released it (the user's previous life, one
// Stop ago). Reopening the heartbeat session of a lease that is gone would
// leave the client waiting for a "ready" that never comes. While another
// replica's head runner tries to admit it, Start waits for that try. When
// the lease moved on, e leaves the books (the store's record is adopted in
// its place) and Start looks again.
func (m *SessionManager) stillQueued(ctx context.Context, e *entry) (bool, error) {
	sctx, cancel := m.storeCtx(ctx)
	rec, found, err := m.store.Get(sctx, e.userID)
	cancel()
	if err != nil {
		return false, storeErr("get", err)
	}
	same := found && rec.Generation == e.gen
	switch {
	case same && rec.State == LeaseQueued:
		return true, nil
	case same && rec.State == LeaseStarting && rec.Holder != m.store.Replica() && rec.HoldLeft > 0:
		return false, m.waitElsewhere(ctx, rec.HoldLeft)
	case same && rec.State == LeaseStarting:
		return true, nil // this replica's head runner has it: still in the queue
	}
	m.mu.Lock()
	if m.users[e.userID] == e && e.state == LeaseQueued && !e.done {
		if same && rec.State == LeaseActive && !e.wasAdmitted {
			e.admitSession, e.serverSession = rec.ServerSession, rec.ServerSession
			e.wasAdmitted = true
			close(e.admitted)
		}
		m.forgetLocked(e)
		if same {
			m.stats.forgotten-- // not finished: another replica has it now
		}
	}
	m.mu.Unlock()
	m.kickQueue()
	if found && rec.Generation >= e.gen {
		m.adoptRecord(rec)
	}
	return false, nil
}

// startNewShared is startNew with a store.
func (m *SessionManager) startNewShared(ctx context.Context, e *entry) (*Lease, error) {
	err := m.admit(ctx, e, true)
	if HasCode(err, CodeNoIdle) && m.cfg.queueLimit > 0 {
		sctx, cancel := m.storeCtx(m.runCtx)
		_, uerr := m.store.Update(sctx, e.userID, e.gen, LeaseUpdate{State: LeaseQueued})
		cancel()
		if uerr == nil {
			m.mu.Lock()
			if e.pending == "" && !m.closing {
				m.settleLocked(e)
				m.enqueueLocked(e)
				m.mu.Unlock()
				return m.leaseQueued(e)
			}
			m.mu.Unlock()
		} else {
			err = fmt.Errorf("%w (and joining the queue failed: %w)", err, storeErr("update", uerr))
		}
	}
	if err == nil {
		err = m.recordActive(e)
	}
	m.finishStart(e, err, true)
	if err != nil {
		return nil, err
	}
	l, err := m.lease(e)
	if err == nil {
		m.sendReady(e)
	}
	return l, err
}

// reattachShared is reattach with a store. held >= 0 means another replica
// holds the lease for that long: wait, then try again.
func (m *SessionManager) reattachShared(ctx context.Context, e *entry) (l *Lease, held time.Duration, err error) {
	sctx, cancel := m.storeCtx(ctx)
	rec, err := m.store.Update(sctx, e.userID, e.gen, LeaseUpdate{State: LeaseStarting, Hold: m.holdTTL()})
	cancel()
	if err != nil {
		m.finishStart(e, err, false)
		switch {
		case errors.Is(err, ErrLeaseGone):
			m.finishRemote(e)
			return nil, 0, nil
		case errors.Is(err, ErrLeaseHeld):
			return nil, rec.HoldLeft, nil
		}
		return nil, -1, storeErr("update", err)
	}
	err = m.admit(ctx, e, true)
	if rerr := m.recordActive(e); err == nil {
		err = rerr
	}
	m.finishStart(e, err, false)
	if err != nil {
		return nil, -1, err
	}
	l, err = m.lease(e)
	if err == nil {
		m.sendReady(e)
	}
	return l, -1, err
}

// recordActive records in the store that e holds its concurrency (a no-op
// without a store).
func (m *SessionManager) recordActive(e *entry) error {
	if m.store == nil {
		return nil
	}
	m.mu.Lock()
	ss := e.serverSession
	m.mu.Unlock()
	ctx, cancel := m.storeCtx(m.runCtx)
	_, err := m.store.Update(ctx, e.userID, e.gen, LeaseUpdate{State: LeaseActive, Applied: true, ServerSession: ss})
	cancel()
	if err != nil {
		return fmt.Errorf("car: recording the lease of %q: %w", e.userID, storeErr("update", err))
	}
	return nil
}

// recordQueued records that the head of the queue goes back to waiting
// (best effort: its hold runs out otherwise).
func (m *SessionManager) recordQueued(e *entry) {
	if m.store == nil {
		return
	}
	m.mu.Lock()
	applied := e.applied
	m.mu.Unlock()
	ctx, cancel := m.storeCtx(m.runCtx)
	_, err := m.store.Update(ctx, e.userID, e.gen, LeaseUpdate{State: LeaseQueued, Applied: applied})
	cancel()
	if err != nil {
		m.log.Debug("queue head: returning to the queue not recorded", "user", e.userID, "error", err)
	}
}

// renewHold renews a starting lease's hold before a round of calls.
func (m *SessionManager) renewHold(ctx context.Context, e *entry) error {
	if m.store == nil || e.gen == 0 {
		return nil
	}
	sctx, cancel := m.storeCtx(ctx)
	_, err := m.store.Update(sctx, e.userID, e.gen, LeaseUpdate{State: LeaseStarting, Hold: m.holdTTL()})
	cancel()
	if err != nil {
		return fmt.Errorf("car: the lease of %q: %w", e.userID, storeErr("update", err))
	}
	return nil
}

// releaseShared is release with a store: the claim decides who releases.
func (m *SessionManager) releaseShared(e *entry, reason ReleaseReason) {
	m.mu.Lock()
	if m.users[e.userID] != e || e.state == LeaseReleasing || e.done {
		m.mu.Unlock()
		return
	}
	if e.state == LeaseStarting {
		if e.pending == "" {
			e.pending = reason
		}
		m.mu.Unlock()
		return
	}
	wasQueued := e.state == LeaseQueued
	if wasQueued {
		m.dequeueLocked(e)
		switch reason {
		case ReleaseShutdown:
			e.admitErr = ErrManagerClosed
		case ReleaseQueueTimeout:
			e.admitErr = ErrQueueTimeout
		default:
			e.admitErr = ErrLeftQueue
			reason = ReleaseLeftQueue
		}
	}
	e.state, e.since, e.reason = LeaseReleasing, time.Now(), reason
	if wasQueued {
		e.wasAdmitted = true
		close(e.admitted)
	}
	m.mu.Unlock()
	if wasQueued {
		m.kickQueue()
	}
	m.attemptReleaseShared(e)
}

// releaseLater queues the next attempt of e's release after d (or the
// backoff, d < 0), keeping err as its last failure.
func (m *SessionManager) releaseLater(e *entry, err error, d time.Duration) {
	m.mu.Lock()
	e.relRunning = false
	if e.done {
		m.mu.Unlock()
		return
	}
	if err != nil {
		e.relErr = err
		e.relTries++
	}
	if d < 0 {
		d = m.releaseBackoff().Delay(e.relTries)
	}
	e.relNext = time.Now().Add(d)
	m.relPending[e] = struct{}{}
	m.startReleaseRunnerLocked()
	reason, tries := e.reason, e.relTries
	m.mu.Unlock()
	if err != nil && m.runCtx.Err() == nil {
		m.log.Warn("release not done; it is queued and will be retried",
			"user", e.userID, "reason", string(reason), "try", tries, "retry_in", d, "error", err)
	}
}

// attemptReleaseShared makes one attempt of e's release: claim (or renew
// the claim), tell the client, DestroySession, finish. Whatever step fails
// for a transient reason (the store, CAR) is tried again from the release
// queue, as long as it takes.
func (m *SessionManager) attemptReleaseShared(e *entry) {
	m.mu.Lock()
	reason, ifHolding, hbID := e.reason, e.ifHolding, e.hbID
	m.mu.Unlock()
	// A release handed over by WithPendingReleases (generation 0) has no
	// lease in the store: this manager holds it alone.
	handed := e.gen == 0
	c, err := Claim{Won: true}, error(nil)
	if !handed {
		ctx, cancel := m.storeCtx(m.runCtx)
		c, err = m.store.Claim(ctx, ClaimRequest{UserId: e.userID, Generation: e.gen, Reason: reason, TTL: m.cfg.claimTTL, IfHolding: ifHolding})
		cancel()
	}
	switch {
	case err != nil:
		m.releaseLater(e, storeErr("claim", err), -1)
		return
	case c.Gone, c.NotHolding:
		m.finishRemote(e)
		return
	case c.Lost:
		m.mu.Lock()
		if !e.lost {
			e.lost = true
			m.mu.Unlock()
			m.log.Error("the lease store lost this lease (restarted empty?); releasing it from what this replica knows",
				"user", e.userID, "generation", e.gen)
		} else {
			m.mu.Unlock()
		}
	case !c.Won:
		m.releaseLater(e, nil, c.RetryIn+10*time.Millisecond)
		return
	}
	m.mu.Lock()
	e.applied = e.applied || c.Record.Applied || e.lost
	first := !e.claimed
	e.claimed = true
	held, destroyed := e.applied, e.destroyed
	m.mu.Unlock()
	if c.TakenOver {
		m.log.Warn("taking over a release whose claim expired (its replica died or stalled); DestroySession may run twice for this lease, which is harmless",
			"user", e.userID, "generation", e.gen)
	}
	if first && hbID != "" {
		if err := m.hb.Release(hbID, string(reason)); err != nil && !errors.Is(err, heartbeat.ErrUnknownSession) && !errors.Is(err, heartbeat.ErrServerClosed) {
			m.log.Warn("telling the client of its release failed", "user", e.userID, "error", err)
		}
	}
	if held && !destroyed {
		cctx, cancel := m.callContext(m.runCtx)
		_, err := m.client.DestroySession(cctx, &DestroySessionInput{UserId: e.userID}, WithCallRetry(m.cfg.destroyRetry))
		cancel()
		if HasCode(err, CodeStopping) {
			err = nil
		}
		m.mu.Lock()
		e.relAttempts++
		if err != nil && !permanentDestroyError(err) {
			m.stats.destroyRetries++
			m.mu.Unlock()
			m.releaseLater(e, err, -1)
			return
		}
		e.destroyed, e.destroyErr = true, err
		m.mu.Unlock()
	}
	m.mu.Lock()
	ok := e.lost || handed
	m.mu.Unlock()
	if !ok {
		ctx, cancel := m.storeCtx(m.runCtx)
		ok, err = m.store.Finish(ctx, e.userID, e.gen)
		cancel()
	}
	if err != nil {
		m.releaseLater(e, storeErr("finish", err), -1)
		return
	}
	if !ok { // another replica took the claim over and reports the release
		m.finishRemote(e)
		return
	}
	m.mu.Lock()
	delete(m.relPending, e)
	e.relRunning = false
	destroyErr := e.destroyErr
	m.mu.Unlock()
	m.finish(e, held, destroyErr)
}

// runSharedQueue is the queue runner with a store, alive for the manager's
// life on every replica: whichever holds the head lock admits the head;
// every replica keeps its own queued users told of their positions.
func (m *SessionManager) runSharedQueue() {
	defer m.queueWG.Done()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.storeTimeout)
		if err := m.store.UnlockHead(ctx); err != nil {
			m.log.Debug("queue: head lock not given up; it runs out", "error", err)
		}
		cancel()
	}()
	for {
		m.mu.Lock()
		closing := m.closing
		m.running = !closing
		m.mu.Unlock()
		if closing || m.runCtx.Err() != nil {
			return
		}
		m.sharedTimeouts()
		admitted := m.sharedHead()
		m.sweepOrphans()
		next := m.sharedPositions()
		if admitted {
			continue
		}
		wait := m.cfg.queuePoll
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 0))
		}
		// A fresh timer per wait: Reset on a timer inside a synctest bubble
		// has lost timers in our churn test (see golang/go#76052).
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-m.kick:
		case <-m.runCtx.Done():
		}
		timer.Stop()
	}
}

// sharedTimeouts releases this replica's queued users who waited longer
// than WithQueueTimeout.
func (m *SessionManager) sharedTimeouts() {
	if m.cfg.queueTimeout <= 0 {
		return
	}
	now := time.Now()
	var out []*entry
	m.mu.Lock()
	m.queue.each(func(e *entry, _ int) bool {
		if now.Sub(e.queuedAt) >= m.cfg.queueTimeout && e.state == LeaseQueued {
			out = append(out, e)
		}
		return true
	})
	m.mu.Unlock()
	for _, e := range out {
		m.release(e, ReleaseQueueTimeout)
	}
}

// sharedHead admits the head of the queue if this replica holds the head
// lock. It reports whether the runner should go on at once.
func (m *SessionManager) sharedHead() bool {
	ctx, cancel := m.storeCtx(m.runCtx)
	rec, ok, err := m.store.LockHead(ctx, m.headTTL())
	cancel()
	if err != nil {
		m.mu.Lock()
		m.headMine = false
		m.mu.Unlock()
		if !errors.Is(err, ErrHeadLocked) && m.runCtx.Err() == nil {
			m.log.Warn("queue: lease store unreachable; the head waits", "error", err)
		}
		return false
	}
	m.mu.Lock()
	m.headMine = true
	m.mu.Unlock()
	if !ok || rec.Holder != "" && rec.Holder != m.store.Replica() && rec.HoldLeft > 0 {
		return false
	}
	e := m.adoptRecord(rec)
	if e == nil {
		return false
	}
	m.mu.Lock()
	if e.state != LeaseQueued || time.Now().Before(e.notBefore) || m.closing {
		m.mu.Unlock()
		return false
	}
	m.beginStartLocked(e)
	m.mu.Unlock()
	if err := m.renewHold(m.runCtx, e); err != nil {
		m.mu.Lock()
		e.state = LeaseQueued
		pending := e.pending
		e.pending = ""
		m.settleLocked(e)
		m.mu.Unlock()
		switch {
		case errors.Is(err, ErrLeaseGone):
			m.finishRemote(e)
		case pending != "":
			m.release(e, pending)
		}
		return false
	}
	return m.admitHead(e)
}

// positionBatch is how many queued users a position round looks up in the
// store at once.
const positionBatch = 32

// sharedPositions tells this replica's queued users their positions (the
// store's), coalesced as the old queue did (see positionRound in queue.go's
// doc): at most one notice per user per notice interval, only to users
// whose position changed, and no more than the queue's departures paid
// for, spent front of the queue first, so a round after an admission
// looks up and tells a few users, not the whole queue. Every poll interval
// a full round also finds those who left the queue elsewhere (admitted by
// another replica's head runner, or released) in case a store event was
// lost. It returns when the first user it had to skip may have its notice
// (zero if none).
func (m *SessionManager) sharedPositions() time.Time {
	now := time.Now()
	m.mu.Lock()
	full := !now.Before(m.nextFullRound)
	if full {
		m.nextFullRound = now.Add(m.cfg.queuePoll)
	}
	recheck := m.recheck
	m.recheck = nil
	if !m.queue.dirty && !full {
		m.mu.Unlock()
		m.checkGone(recheck)
		return time.Time{}
	}
	m.queue.dirty = false
	m.queue.credit = min(m.queue.credit, noticesPerMove*(m.queue.live+1))
	budget := m.queue.credit
	m.mu.Unlock()

	var notices []positionNotice
	var next time.Time
	gone := recheck
	after, begun := uint64(0), false
	for done := false; !done; {
		m.mu.Lock()
		batch := m.queue.from(after, begun, positionBatch)
		m.mu.Unlock()
		if len(batch) == 0 {
			break
		}
		ids := make([]string, len(batch))
		for i, e := range batch {
			ids[i] = e.userID
		}
		ctx, cancel := m.storeCtx(m.runCtx)
		pos, err := m.store.Positions(ctx, ids)
		cancel()
		m.mu.Lock()
		if err != nil || len(pos) != len(ids) {
			m.queue.dirty = true // try again at the next round
			m.mu.Unlock()
			break
		}
		for i, e := range batch {
			after, begun = e.ticket, true
			switch {
			case e.state != LeaseQueued || e.done || !e.inQueue:
			case pos[i] == 0:
				gone = append(gone, e)
			case pos[i] == e.sentPos:
			case len(notices) >= budget:
				m.queue.dirty = true // the next departures pay for it
				done = done || !full
			case now.Before(e.sentAt.Add(m.cfg.noticeInterval)):
				m.queue.dirty = true // its turn comes later
				if at := e.sentAt.Add(m.cfg.noticeInterval); next.IsZero() || at.Before(next) {
					next = at
				}
			default:
				e.sentPos, e.sentAt = pos[i], now
				notices = append(notices, positionNotice{e.hbID, pos[i]})
			}
			if done {
				break
			}
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.queue.credit -= len(notices)
	m.mu.Unlock()
	for _, n := range notices {
		m.notify(n.hbID, heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: n.pos})
	}
	m.checkGone(gone)
	return next
}

// checkGone asks the store about queued users who seem to have left the
// queue elsewhere: a user admitted by another replica leaves this
// replica's books with its Wait answered; one released elsewhere is
// forgotten.
func (m *SessionManager) checkGone(gone []*entry) {
	for _, e := range gone {
		m.mu.Lock()
		skip := e.state != LeaseQueued || e.done
		m.mu.Unlock()
		if skip {
			continue
		}
		ctx, cancel := m.storeCtx(m.runCtx)
		rec, found, err := m.store.Get(ctx, e.userID)
		cancel()
		switch {
		case err != nil:
		case !found || rec.Generation != e.gen:
			m.finishRemote(e)
		case rec.State == LeaseActive:
			// The client's connection may be here: then the entry stays,
			// active, as onConnect would have adopted it, so that this
			// replica keeps reporting (Snapshot) and handling the user it
			// serves. Otherwise the admitting replica has it now.
			info, _ := m.hb.Session(e.hbID)
			m.mu.Lock()
			if e.state == LeaseQueued && !e.done {
				e.admitSession, e.serverSession = rec.ServerSession, rec.ServerSession
				e.state, e.wasAdmitted = LeaseActive, true
				close(e.admitted)
				if info.Connected {
					m.dequeueLocked(e)
					e.since, e.applied = time.Now(), rec.Applied
				} else {
					m.forgetLocked(e)
					m.stats.forgotten--
				}
			}
			m.mu.Unlock()
		}
	}
}

// Drain is the Shutdown of a rolling deploy, for a manager with a shared
// store: it stops admitting and gives the head of the queue up, lets the
// releases it has claimed finish within ctx, and drains the heartbeat
// server: every client is closed with 1001 ("going away, reconnect") and
// resumes on another replica. It releases nothing: the leases, the queue
// and the deadlines stay in the store. A release still being retried when
// ctx ends is left to its claim: another replica takes it over once the
// claim's TTL ends. Without a shared store Drain refuses (nothing could
// take the users over): use Shutdown.
func (m *SessionManager) Drain(ctx context.Context) error {
	if m.private {
		return errors.New("car: Drain needs a shared lease store (WithStore or WithLeaseStore); without one use Shutdown, which releases")
	}
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return ErrManagerClosed
	}
	m.closing = true
	m.mu.Unlock()
	stop := context.AfterFunc(ctx, m.cancelRun)
	defer stop()
	m.kickQueue()
	m.queueWG.Wait()
	m.stops.Wait()
	m.kickReleases()
	m.relWG.Wait() // the release runner stops when nothing is pending, or at ctx's end
	m.cancelRun()
	m.relWG.Wait()
	m.stopWatch()
	hbErr := m.hb.Drain(ctx)
	if hbErr != nil {
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
