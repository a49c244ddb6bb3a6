package car

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// Releasing a lease. The first caller on this replica that moves a lease
// to LeaseReleasing does the work; every other caller returns at once. The
// work starts with the release claim in the lease store (Claim): exactly
// one claimer per generation wins, across replicas; a replica that loses
// forgets its copy. The winner tells the client, and a lease that may hold
// a concurrency gets DestroySession: one call (with WithDestroyRetry's
// retries inside it) made by the releasing goroutine, then, while it (or a
// store call) fails for a transient reason, further attempts from the
// release queue with exponential backoff and no attempt limit. The lease
// is finished — deleted from the store (Finish), taken off the books,
// counted, OnRelease called, the queue woken — when DestroySession
// succeeds (UnsupportedOperation.Stopping counts as success) or fails for
// a permanent reason.

// PendingRelease is a release not done yet: DestroySession keeps failing
// for a transient reason. Shutdown hands those still pending when its
// context ends to OnReleasePending; WithPendingReleases takes them back.
type PendingRelease struct {
	UserId string //nolint:revive // the API's spelling
	// Generation is the lease's generation in a shared LeaseStore (0 with
	// the private one): the manager it is handed to releases that lease,
	// never a newer one the user started since.
	Generation uint64
	Reason     ReleaseReason
	Attempts   int   // DestroySession calls made so far
	LastErr    error // the last failure
}

// ReleasePendingError reports a release that was not done when a caller
// stopped waiting for it (Stop's or Start's context ended). The manager
// keeps retrying it.
type ReleasePendingError struct {
	UserId   string //nolint:revive
	Attempts int
	LastErr  error // nil when no attempt has finished yet
	Err      error // why the caller stopped waiting: the context's error
}

func (e *ReleasePendingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "car: the release of user %q is not done", e.UserId)
	if e.LastErr != nil {
		fmt.Fprintf(&b, " (%d DestroySession attempt(s), last: %v)", e.Attempts, e.LastErr)
	}
	b.WriteString("; the manager keeps retrying it: ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the context's error and the last DestroySession failure.
func (e *ReleasePendingError) Unwrap() []error {
	if e.LastErr == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.LastErr}
}

// ShutdownError is returned by Shutdown or Drain whose context ended with
// releases still pending: Pending lists them (each was also given to
// OnReleasePending).
type ShutdownError struct {
	Op      string // "shutdown" or "drain"; "" reads as "shutdown"
	Pending []PendingRelease
	Err     error // the context's error
}

func (e *ShutdownError) Error() string {
	ids := make([]string, len(e.Pending))
	for i, p := range e.Pending {
		ids[i] = p.UserId
	}
	op := e.Op
	if op == "" {
		op = "shutdown"
	}
	return fmt.Sprintf("car: %s: %d release(s) not done: %s: %v", op, len(e.Pending), strings.Join(ids, ", "), e.Err)
}

func (e *ShutdownError) Unwrap() error { return e.Err }

// UserIds lists the users whose concurrency was not released.
func (e *ShutdownError) UserIds() []string { //nolint:revive // the API's spelling
	ids := make([]string, len(e.Pending))
	for i, p := range e.Pending {
		ids[i] = p.UserId
	}
	return ids
}

// Stop releases the user's concurrency (DestroySession) or takes the user
// out of the queue, and waits until that is done. Stopping a user with no
// lease does nothing. With a shared LeaseStore, Stop works on any replica,
// for a lease started on any replica.
//
// ctx bounds only the wait. The release itself runs on the manager's own
// context: a caller that goes away (the request of a page being closed)
// gets ctx's error back, and the concurrency is still released. When ctx
// ends before the release is done, Stop returns a *ReleasePendingError
// carrying the last DestroySession failure; the release goes on being
// retried. A permanent DestroySession failure (e.g. AuthFailure) is
// returned as is.
func (m *SessionManager) Stop(ctx context.Context, userID string) error {
	m.mu.Lock()
	e := m.users[userID]
	if e == nil {
		// Another replica's lease: adopt it from the store to release it.
		m.mu.Unlock()
		adopted, err := m.adoptUser(ctx, userID)
		if err != nil || adopted == nil {
			return err
		}
		m.mu.Lock()
		if e = m.users[userID]; e != adopted {
			e = nil // gone meanwhile
		}
	}
	if e == nil {
		m.mu.Unlock()
		return nil
	}
	reason := ReleaseStopped
	if e.state == LeaseQueued {
		reason = ReleaseLeftQueue
	}
	if e.state == LeaseReleasing {
		m.retryReleaseNowLocked(e)
	}
	closing := m.closing
	if !closing {
		m.stops.Add(1)
	}
	m.mu.Unlock()
	if !closing { // else Shutdown releases e
		go func() {
			defer m.stops.Done()
			m.release(e, reason)
		}()
	}
	select {
	case <-e.released:
		m.mu.Lock()
		defer m.mu.Unlock()
		return e.relFinal
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.pendingErrorLocked(e, ctx.Err())
	}
}

func (m *SessionManager) pendingErrorLocked(e *entry, ctxErr error) error {
	return &ReleasePendingError{UserId: e.userID, Attempts: e.relAttempts, LastErr: e.relErr, Err: ctxErr}
}

// release ends e exactly once (see the top of this file). A release asked
// for while e is starting is recorded and carried out when the start
// settles. It returns once the first attempt is done (or failed and the
// release was queued).
func (m *SessionManager) release(e *entry, reason ReleaseReason) {
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
	m.attemptRelease(e)
}

// releaseBackoff paces the release queue: 1 s, 2 s, 4 s… up to
// WithReleaseRetryMax (default 30 s), each wait drawn between half of that
// and all of it (the SDK's one backoff, package internal/retry), for as
// long as it takes.
func (m *SessionManager) releaseBackoff() retry.Backoff {
	return retry.Exponential(time.Second, m.cfg.releaseRetryMax)
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

// attemptRelease makes one attempt of e's release: claim (or renew
// the claim), tell the client, DestroySession, finish. Whatever step fails
// for a transient reason (the store, CAR) is tried again from the release
// queue, as long as it takes.
func (m *SessionManager) attemptRelease(e *entry) {
	m.mu.Lock()
	reason, ifHolding, hbID := e.reason, e.ifHolding, e.hbID
	m.mu.Unlock()
	// A release handed over by WithPendingReleases with no generation (a
	// private store, or none known) has no lease in the store: this
	// manager holds it alone.
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
		if err := m.hb.Release(m.runCtx, hbID, string(reason)); err != nil && !errors.Is(err, heartbeat.ErrUnknownSession) && !errors.Is(err, heartbeat.ErrServerClosed) {
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

// permanentDestroyError reports a DestroySession failure that retrying
// cannot cure: the request itself or the credentials are refused.
// It is the SDK's one classification (retry.Refused: bad input,
// credentials, an unknown action, version or region), plus CAR's own
// OperationDenied and SessionNotFound.
func permanentDestroyError(err error) bool {
	return retry.Classify(err) == retry.Refused || HasCode(err, CodeOperationDenied) || HasCode(err, CodeSessionNotFound)
}

// finish ends a release: e leaves the books exactly once.
func (m *SessionManager) finish(e *entry, held bool, destroyErr error) {
	at := time.Now()
	m.mu.Lock()
	delete(m.relPending, e) // a retry queued meanwhile has nothing left to do
	if e.done {
		m.mu.Unlock()
		return
	}
	e.done = true
	if m.users[e.userID] == e {
		delete(m.users, e.userID)
	}
	if e.hbID != "" && m.byHB[e.hbID] == e {
		delete(m.byHB, e.hbID)
	}
	m.stats.released[e.reason]++
	if held {
		m.stats.destroyCalls++
		if destroyErr != nil {
			m.stats.destroyFail++
		}
	}
	e.relFinal = destroyErr
	attempts := e.relAttempts
	reason := e.reason
	m.mu.Unlock()
	close(e.released)

	if destroyErr != nil {
		m.log.Error("DestroySession failed for good; the concurrency may stay held until CAR's reconnect wait ends",
			"user", e.userID, "reason", string(reason), "attempts", attempts, "error", destroyErr)
	} else {
		m.log.Info("released", "user", e.userID, "reason", string(reason), "destroyed", held, "attempts", attempts)
	}
	if m.cfg.onRelease != nil {
		m.cfg.onRelease(Release{UserId: e.userID, HeartbeatSession: e.hbID, Reason: reason, Destroyed: held, DestroyErr: destroyErr, Attempts: attempts, At: at})
	}
	if held {
		m.kickQueue()
	}
}

// kickReleases wakes the release runner: a release is due now, or the
// runner may be asleep with nothing left to do.
func (m *SessionManager) kickReleases() {
	select {
	case m.relKick <- struct{}{}:
	default:
	}
}

// retryReleaseNowLocked makes a queued release of e due at once (a Start
// or Stop for the user is waiting on it). Caller holds m.mu.
func (m *SessionManager) retryReleaseNowLocked(e *entry) {
	if _, ok := m.relPending[e]; ok && !e.relRunning {
		e.relNext = time.Time{}
		m.kickReleases()
	}
}

// startReleaseRunnerLocked makes sure the release runner is alive. Caller
// holds m.mu.
func (m *SessionManager) startReleaseRunnerLocked() {
	if m.relAlive {
		m.kickReleases()
		return
	}
	m.relAlive = true
	m.relWG.Add(1)
	go m.runReleases()
}

// maxReleaseAttempts bounds the DestroySession calls of the release queue
// in flight at once (CAR allows 100 per second).
const maxReleaseAttempts = 32

// runReleases is the release queue: it makes each pending release's next
// attempt when it is due. It lives while releases are pending, and stops
// when the manager's context ends (Shutdown's deadline): what is pending
// then is handed over.
func (m *SessionManager) runReleases() {
	defer m.relWG.Done()
	sem := make(chan struct{}, maxReleaseAttempts)
	var attempts sync.WaitGroup
	defer attempts.Wait()
	for {
		m.mu.Lock()
		if len(m.relPending) == 0 || m.runCtx.Err() != nil {
			m.relAlive = false
			m.mu.Unlock()
			return
		}
		now := time.Now()
		var due []*entry
		var next time.Time
		for e := range m.relPending {
			switch {
			case e.done: // finished or forgotten meanwhile
				delete(m.relPending, e)
			case e.relRunning:
			case !e.relNext.After(now) && m.chargeReleaseLocked(e, now):
				e.relRunning = true
				due = append(due, e)
			case next.IsZero() || e.relNext.Before(next):
				next = e.relNext
			}
		}
		m.mu.Unlock()
		for _, e := range due {
			attempts.Add(1)
			go func() {
				defer attempts.Done()
				defer m.settleReleaseCharge(e)
				select {
				case sem <- struct{}{}:
				case <-m.runCtx.Done():
					m.mu.Lock()
					e.relRunning = false
					m.mu.Unlock()
					return
				}
				defer func() { <-sem }()
				m.attemptRelease(e)
				// Wake the runner: it sleeps as long as every pending
				// release is running, and must stop once none is left
				// (Drain and Shutdown wait for it).
				m.kickReleases()
			}()
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = next.Sub(now)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-m.relKick:
		case <-m.runCtx.Done():
		}
		timer.Stop()
	}
}

// chargeReleaseLocked reports whether e's due attempt may go now. An
// attempt after a failed DestroySession is a retry, and takes its cost
// from the client's retry budget, as the client's own retries do. When the
// budget is empty the release waits; it is never dropped: one waiting
// release at a time goes uncharged, as a probe, at most one per
// WithReleaseRetryMax while probes fail, and the others are due again once
// the probe is answered (at once if it succeeded: CAR is back). Caller
// holds m.mu.
func (m *SessionManager) chargeReleaseLocked(e *entry, now time.Time) bool {
	if e.relAttempts == 0 || e.destroyed {
		return true // no DestroySession to repeat yet
	}
	if cost, ok := m.client.retryBudget().Spend(false); ok {
		e.relCost, e.relWaiting = cost, false
		return true
	}
	if !m.relProbing && !now.Before(m.relProbeAt) {
		m.relProbing, e.relProbe, e.relWaiting = true, true, false
		return true
	}
	e.relWaiting = true
	if m.relProbing {
		e.relNext = now.Add(m.cfg.releaseRetryMax) // or sooner, when the probe is answered
	} else {
		e.relNext = m.relProbeAt
	}
	return false
}

// settleReleaseCharge settles the retry budget after an attempt of e's
// release: a DestroySession that succeeded gives back what its retry took;
// a probe's answer decides when the releases waiting for the budget go.
func (m *SessionManager) settleReleaseCharge(e *entry) {
	m.mu.Lock()
	ok := (e.done && e.relFinal == nil) || (e.destroyed && e.destroyErr == nil)
	cost, probe := e.relCost, e.relProbe
	e.relCost, e.relProbe = 0, false
	if probe {
		m.relProbing = false
		m.relProbeAt = time.Time{}
		if !ok {
			m.relProbeAt = time.Now().Add(m.cfg.releaseRetryMax)
		}
		for w := range m.relPending {
			if w.relWaiting && !w.relRunning {
				w.relNext = m.relProbeAt
			}
		}
		m.kickReleases()
	}
	m.mu.Unlock()
	if ok && cost > 0 {
		m.client.retryBudget().Succeeded(cost)
	}
}

// adoptPending queues the releases handed over by WithPendingReleases.
func (m *SessionManager) adoptPending(pending []PendingRelease) {
	if len(pending) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range pending {
		if m.users[p.UserId] != nil {
			continue
		}
		// With a shared store and the lease's generation, the release
		// claims and finishes that lease as any other (a lease finished
		// meanwhile is left alone); else it is this manager's alone.
		gen := p.Generation
		if m.private {
			gen = 0
		}
		e := &entry{userID: p.UserId, gen: gen, state: LeaseReleasing, reason: ReleaseAdopted, since: time.Now(), applied: true,
			admitted: make(chan struct{}), released: make(chan struct{})}
		close(e.admitted)
		e.wasAdmitted = true
		m.users[p.UserId] = e
		m.relPending[e] = struct{}{}
	}
	m.startReleaseRunnerLocked()
}

// beginClose starts Shutdown or Drain: the manager stops admitting, ctx's
// end cancels the calls it makes on its own, and the queue runner stops
// (queued users are still queued). A second close fails with
// ErrManagerClosed.
func (m *SessionManager) beginClose(ctx context.Context) (stop func() bool, err error) {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil, ErrManagerClosed
	}
	m.closing = true
	m.mu.Unlock()
	stop = context.AfterFunc(ctx, m.cancelRun)
	m.kickQueue()
	m.queueWG.Wait()
	return stop, nil
}

// handOver lists the releases not done when Shutdown or Drain (op) gave
// up, of the entries keep selects: each is logged at error level and
// handed to OnReleasePending, in UserId order. The release runner has
// stopped by then.
func (m *SessionManager) handOver(op string, keep func(*entry) bool) []PendingRelease {
	var pending []PendingRelease
	m.mu.Lock()
	for _, e := range m.users {
		select {
		case <-e.released:
			continue
		default:
		}
		if !keep(e) {
			continue
		}
		reason := e.reason
		if reason == "" {
			reason = ReleaseShutdown
		}
		gen := e.gen
		if m.private {
			gen = 0 // the next process's private store will not have it
		}
		pending = append(pending, PendingRelease{UserId: e.userID, Generation: gen, Reason: reason, Attempts: e.relAttempts, LastErr: e.relErr})
	}
	m.mu.Unlock()
	slices.SortFunc(pending, func(a, b PendingRelease) int { return strings.Compare(a.UserId, b.UserId) })
	for _, p := range pending {
		m.log.Error(op+": release not done; hand it to the next manager (WithPendingReleases)",
			"user", p.UserId, "reason", string(p.Reason), "attempts", p.Attempts, "error", p.LastErr)
		if m.cfg.onReleasePending != nil {
			m.cfg.onReleasePending(p)
		}
	}
	return pending
}

// Shutdown drains the manager: it stops admitting, empties the queue,
// releases every concurrency it holds (DestroySession for all of them at
// once, up to CAR's rate), waits for the release queue to finish, then
// shuts the heartbeat server down.
//
// If ctx ends first, the calls still running are cancelled, and every
// release not done is handed to OnReleasePending and listed in the
// returned *ShutdownError (errors.As; it wraps ctx's error). Persist them
// and give them to the next manager with WithPendingReleases: CAR still
// counts those concurrencies until its own reconnect wait ends.
//
// With a shared LeaseStore, Shutdown is the last replica's: it releases
// every lease of the project, including those other replicas started. A
// rolling deploy uses Drain instead.
func (m *SessionManager) Shutdown(ctx context.Context) error {
	stop, err := m.beginClose(ctx)
	if err != nil {
		return err
	}
	defer stop()
	m.adoptAll(ctx) // the last replica releases every lease of the project
	m.mu.Lock()
	entries := make([]*entry, 0, len(m.users))
	for _, e := range m.users {
		entries = append(entries, e)
	}
	m.mu.Unlock()

	sem := make(chan struct{}, maxReleaseAttempts)
	var releases sync.WaitGroup
	for _, e := range entries {
		releases.Add(1)
		go func() {
			defer releases.Done()
			select {
			case sem <- struct{}{}:
			case <-m.runCtx.Done():
				return
			}
			defer func() { <-sem }()
			m.release(e, ReleaseShutdown)
		}()
	}
	releases.Wait()
	m.stops.Wait()
	for _, e := range entries {
		select {
		case <-e.released:
		case <-m.runCtx.Done():
		}
	}
	m.cancelRun()
	m.relWG.Wait()
	m.stopWatch()
	pending := m.handOver("shutdown", func(*entry) bool { return true })
	hbErr := m.hb.Shutdown(ctx)
	switch {
	case len(pending) > 0:
		return &ShutdownError{Op: "shutdown", Pending: pending, Err: ctx.Err()}
	case hbErr != nil:
		return hbErr
	}
	return ctx.Err()
}
