package car

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/retry"
)

func (r *StartRequest) validate() error {
	in := CreateSessionInput{UserId: r.UserId, UserIp: r.UserIp, RunMode: r.RunMode}
	if field, rule := in.validate(); field != "" {
		return &ValidationError{Service: Service, Action: "Start", Field: field, Rule: rule}
	}
	if len(r.UserId) > MaxUserIDLen {
		return &ValidationError{Service: Service, Action: "Start", Field: "UserId", Rule: fmt.Sprintf("must be at most %d bytes", MaxUserIDLen)}
	}
	return nil
}

// startStep is what Start does next, decided under the lock.
type startStep int

const (
	stepCreate   startStep = iota // no lease here: ask the store for a new one
	stepReattach                  // the user holds a concurrency: run both calls again
	stepLease                     // a queued user: a fresh token, same place
	stepWait                      // a start or release of the user is in progress
)

// Start admits a user. With a concurrency idle, it runs ApplyConcurrent then
// CreateSession and returns the ServerSession; with none (NoIdle) the user
// joins the FIFO queue and the lease says so (QueuePosition); its heartbeat
// then reports the position, and a "ready" notice brings the ServerSession.
// Either way the lease carries the heartbeat token for the client.
//
// Start waits, within ctx, while CAR answers UnsupportedOperation.Stopping
// (the user's previous session is still being torn down),
// FailedOperation.SlowDown or FailedOperation.LockTimeout, and while the
// user's previous lease is being released; it tries both calls up to
// three more times after a transient failure (5xx, InternalError, a lost
// answer, throttling). If it still fails in a way that may have reached
// CAR, Start calls DestroySession for the user before it returns the
// error, so no lock is left that no lease owns.
//
// Start for a user who already holds a concurrency (a reload, another
// device) runs ApplyConcurrent and CreateSession again: CAR reattaches the
// same concurrency and closes the older stream; the newer heartbeat
// connection replaces the older one. Start for a queued user keeps its
// place and issues a fresh token.
func (m *SessionManager) Start(ctx context.Context, req StartRequest) (*Lease, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	m.applyDefaults(&req)
	for {
		step, e, wait, err := m.nextStartStep(req)
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
			l, held, err := m.reattach(ctx, e)
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
		e.gen, e.hbID, e.storeTicket = rec.Generation, rec.SessionID(), rec.Ticket
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
		return m.startNew(ctx, e)
	}
}

// nextStartStep looks at the user's lease on this replica's books, under
// the lock. A user with none gets a placeholder (state starting, so that a
// second Start waits for the first) while the store is asked for a new
// lease.
func (m *SessionManager) nextStartStep(req StartRequest) (startStep, *entry, <-chan struct{}, error) {
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

// waitError explains a Start that gave up waiting for the user's previous
// lease.
func (m *SessionManager) waitError(e *entry, ctxErr error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.state == LeaseReleasing {
		return fmt.Errorf("car: Start %q: the previous lease is still being released: %w", e.userID, m.pendingErrorLocked(e, ctxErr))
	}
	return ctxErr
}

func (m *SessionManager) applyDefaults(r *StartRequest) {
	d := m.cfg.start
	for _, f := range []struct {
		dst *string
		def string
	}{
		{&r.RunMode, d.RunMode}, {&r.ApplicationParameters, d.ApplicationParameters},
		{&r.ApplicationId, d.ApplicationId}, {&r.ApplicationVersionId, d.ApplicationVersionId},
	} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
}

// startNew admits a new lease (state starting) or, on NoIdle, queues it.
func (m *SessionManager) startNew(ctx context.Context, e *entry) (*Lease, error) {
	err := m.admit(ctx, e, true)
	if HasCode(err, CodeNoIdle) && m.cfg.queueLimit > 0 {
		sctx, cancel := m.storeCtx(m.runCtx)
		rec, uerr := m.store.Update(sctx, e.userID, e.gen, LeaseUpdate{State: LeaseQueued})
		cancel()
		if uerr == nil {
			m.mu.Lock()
			e.storeTicket = rec.Ticket
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

// beginStartLocked marks e as starting: releases wait until it settles.
func (m *SessionManager) beginStartLocked(e *entry) {
	e.state = LeaseStarting
	e.busy = make(chan struct{})
}

// settleLocked ends a start: those waiting on busy go on.
func (m *SessionManager) settleLocked(e *entry) {
	if e.busy != nil {
		close(e.busy)
		e.busy = nil
	}
}

// leaseQueued opens the heartbeat session of a user who just joined the
// queue and tells it its position.
func (m *SessionManager) leaseQueued(e *entry) (*Lease, error) {
	l, err := m.lease(e)
	if err == nil {
		m.kickQueue()
	}
	return l, err
}

// lease issues a heartbeat token for e and describes it.
func (m *SessionManager) lease(e *entry) (*Lease, error) {
	token, err := m.hb.Open(m.runCtx, e.hbID)
	if err != nil {
		m.release(e, ReleaseStartFailed)
		return nil, fmt.Errorf("car: heartbeat session: %w", err)
	}
	storePos := 0
	ctx, cancel := m.storeCtx(m.runCtx)
	if pos, err := m.store.Positions(ctx, []string{e.userID}); err == nil && len(pos) == 1 {
		storePos = pos[0]
	}
	cancel()
	m.mu.Lock()
	l := &Lease{UserId: e.userID, HeartbeatSession: e.hbID, HeartbeatToken: token, ServerSession: e.serverSession, e: e}
	// A queued lease whose admission the head runner is trying right now
	// (starting, still in the queue) is still queued for its user: it is
	// not ready until the head runner says so.
	queued := e.state == LeaseQueued || e.state == LeaseStarting && e.inQueue
	if queued {
		l.QueuePosition = max(storePos, 1)
		e.sentPos, e.sentAt = l.QueuePosition, time.Now()
	}
	m.mu.Unlock()
	if queued {
		m.notify(e.hbID, heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: l.QueuePosition})
	}
	return l, nil
}

// startBackoff paces a Start waiting for CAR to finish with the user's
// previous session (Stopping, SlowDown, LockTimeout).
var startBackoff = retry.Exponential(250*time.Millisecond, 2*time.Second)

// maxStartRetries bounds the extra rounds of ApplyConcurrent and
// CreateSession a Start makes after transient failures.
const maxStartRetries = 3

// busyInCAR reports the answers that mean "this user's previous call or
// session is still being dealt with": worth waiting for.
func busyInCAR(err error) bool {
	return HasCode(err, CodeStopping) || HasCode(err, CodeSlowDown) || HasCode(err, CodeLockTimeout)
}

// admit runs ApplyConcurrent then CreateSession for e. With wait, it keeps
// trying within ctx while CAR is busy with the user (busyInCAR).
func (m *SessionManager) admit(ctx context.Context, e *entry, wait bool) error {
	transient := 0
	for attempt := 1; ; attempt++ {
		err := m.admitOnce(ctx, e)
		if err == nil || !wait {
			return err
		}
		if !busyInCAR(err) {
			// A transient failure (5xx, InternalError, a lost answer,
			// throttling beyond the client's retries) is worth a few more
			// rounds: both calls are safe to repeat for the user.
			if transient++; transient > maxStartRetries || !(mayHaveActed(err) || IsThrottled(err)) {
				return err
			}
		}
		t := time.NewTimer(startBackoff.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while waiting: %w)", ctx.Err(), err)
		}
	}
}

func (m *SessionManager) admitOnce(ctx context.Context, e *entry) error {
	if err := m.renewHold(ctx, e); err != nil {
		return err
	}
	m.mu.Lock()
	r := e.req
	m.mu.Unlock()
	callCtx, cancel := m.callContext(ctx)
	_, err := m.client.ApplyConcurrent(callCtx, &ApplyConcurrentInput{
		UserId: r.UserId, UserIp: r.UserIp, ProjectId: m.project,
		ApplicationId: r.ApplicationId, ApplicationVersionId: r.ApplicationVersionId,
	})
	cancel()
	m.mu.Lock()
	if err == nil || mayHaveActed(err) {
		e.applied = true
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	callCtx, cancel = m.callContext(ctx)
	out, err := m.client.CreateSession(callCtx, &CreateSessionInput{
		UserId: r.UserId, UserIp: r.UserIp, ClientSession: r.ClientSession,
		RunMode: r.RunMode, ApplicationParameters: r.ApplicationParameters,
	})
	cancel()
	if err != nil {
		return err
	}
	m.mu.Lock()
	e.serverSession = out.ServerSession
	m.mu.Unlock()
	return nil
}

// callContext bounds one API call of the manager by WithAPITimeout.
func (m *SessionManager) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.apiTimeout)
}

// mayHaveActed reports whether a failed call may still have been carried
// out by CAR: it timed out, its answer was lost, or the server failed
// (5xx, InternalError, ProcessTimeout). A definite API answer (NoIdle,
// Stopping, a bad parameter, throttling) means it was not. The classes are
// the SDK's one classification (retry.Classify); a failed dial counts with
// the network errors, so that a Start's rounds retry it, and CAR's
// ProcessTimeout and an HTTP status without an error envelope count too.
func mayHaveActed(err error) bool {
	return retry.Classify(err).Fault() || HasCode(err, CodeProcessTimeout) || HasCode(err, "ClientError.HttpStatusCodeError")
}

// finishStart settles an ApplyConcurrent/CreateSession run. On the first
// admission (initial) a failure releases the entry — with DestroySession
// when the calls may have reached CAR — before the error is reported; a
// failed reattach leaves the user with the concurrency it held. A release
// asked for meanwhile runs now.
func (m *SessionManager) finishStart(e *entry, err error, initial bool) {
	m.mu.Lock()
	pending := e.pending
	e.pending = ""
	switch {
	case err == nil, initial:
		e.state = LeaseActive
	default:
		e.state = e.resume
	}
	e.since = time.Now()
	if initial && !e.wasAdmitted {
		e.admitSession, e.admitErr = e.serverSession, err
		e.wasAdmitted = true
		close(e.admitted)
	}
	m.settleLocked(e)
	m.mu.Unlock()
	switch {
	case err != nil && initial:
		m.release(e, ReleaseStartFailed)
	case pending != "":
		m.release(e, pending)
	}
}

// reattach repeats ApplyConcurrent and CreateSession for a user who holds a
// concurrency (e is starting): CAR hands back the same one. held >= 0
// means another replica holds the lease for that long: wait, then try
// again.
func (m *SessionManager) reattach(ctx context.Context, e *entry) (l *Lease, held time.Duration, err error) {
	rec, err := m.updateLease(ctx, e, LeaseUpdate{State: LeaseStarting, Hold: m.holdTTL()})
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

// updateLease makes one Update of e's lease in the store, bounded by
// WithStoreTimeout.
func (m *SessionManager) updateLease(ctx context.Context, e *entry, u LeaseUpdate) (LeaseRecord, error) {
	sctx, cancel := m.storeCtx(ctx)
	defer cancel()
	return m.store.Update(sctx, e.userID, e.gen, u)
}

// recordActive records in the store that e holds its concurrency.
func (m *SessionManager) recordActive(e *entry) error {
	m.mu.Lock()
	ss := e.serverSession
	m.mu.Unlock()
	if _, err := m.updateLease(m.runCtx, e, LeaseUpdate{State: LeaseActive, Applied: true, ServerSession: ss}); err != nil {
		return fmt.Errorf("car: recording the lease of %q: %w", e.userID, storeErr("update", err))
	}
	return nil
}

// recordQueued records that the head of the queue goes back to waiting
// (best effort: its hold runs out otherwise).
func (m *SessionManager) recordQueued(e *entry) {
	m.mu.Lock()
	applied := e.applied
	m.mu.Unlock()
	if _, err := m.updateLease(m.runCtx, e, LeaseUpdate{State: LeaseQueued, Applied: applied}); err != nil {
		m.log.Debug("queue head: returning to the queue not recorded", "user", e.userID, "error", err)
	}
}

// renewHold renews a starting lease's hold before a round of calls.
func (m *SessionManager) renewHold(ctx context.Context, e *entry) error {
	if e.gen == 0 { // a Start's placeholder: no lease yet
		return nil
	}
	if _, err := m.updateLease(ctx, e, LeaseUpdate{State: LeaseStarting, Hold: m.holdTTL()}); err != nil {
		return fmt.Errorf("car: the lease of %q: %w", e.userID, storeErr("update", err))
	}
	return nil
}

// sendReady queues the "ready" notice with the lease's ServerSession: the
// client gets it after its welcome, whether it was queued or not.
func (m *SessionManager) sendReady(e *entry) {
	m.mu.Lock()
	ss := e.serverSession
	m.mu.Unlock()
	data, _ := json.Marshal(map[string]string{"ServerSession": ss})
	m.notify(e.hbID, heartbeat.Notice{Kind: heartbeat.NoticeReady, Data: data})
}
