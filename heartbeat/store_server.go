package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// The Server's side of its Store: the one given with WithStore, or, without
// one, a MemoryStore of its own (ownStore). The local map s.sessions holds
// only the sessions whose client is connected to this Server: their
// connection, epoch, and the idle count while connected (idle thresholds
// of a connected user fire on the Server that holds the connection, from
// its own scheduler, with the idle notice). Everything a disconnected or
// waiting session needs lives in the store, whose deadlines the sweeper
// takes. No store call is made with Server.mu held.
//
// The own store differs only in what it spares the Server: it has no
// owner leases (no refresher runs), and it tells the Server when its next
// deadline is due (the sweeper runs only while one is set, and sweeps at
// that moment instead of every StoreSweepInterval).

// refreshBatch is the most held connections one Store.Refresh carries.
const refreshBatch = 500

func (s *Server) startStore() {
	s.bg, s.cancelBG = context.WithCancel(context.Background())
	s.loopStop = make(chan struct{})
	s.leaving = make(map[string]*serverSession)
	s.claiming = make(map[string]*claiming)
	s.sweepWake = make(chan struct{}, 1)
	s.stopListen = s.cfg.store.Listen(s.onStoreMessage)
	if s.own != nil {
		s.own.onDue(s.wakeSweeper)
		return
	}
	s.mu.Lock()
	s.sweeping = true
	s.goLocked(s.refreshLoop)
	s.goLocked(s.sweepLoop)
	s.mu.Unlock()
}

// wakeSweeper is the own store's call when a deadline became the earliest:
// it starts the sweeper, or has it look again. It is called by a store
// call, so never with Server.mu held.
func (s *Server) wakeSweeper() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if !s.sweeping {
		s.sweeping = true
		s.goLocked(s.sweepLoop)
		return
	}
	select {
	case s.sweepWake <- struct{}{}:
	default:
	}
}

// stopStore unregisters from the store and cancels the store calls still
// running. Idempotent.
func (s *Server) stopStore() {
	s.stopOnce.Do(func() {
		s.stopListen()
		s.cancelBG()
	})
}

func (s *Server) timing() Timing {
	return Timing{Window: s.cfg.grace, Idle: s.cfg.idleThreshold}
}

func (s *Server) openShared(ctx context.Context, id string, n nonce) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	if err := s.cfg.store.Open(ctx, id, nonceID(n), s.timing()); err != nil {
		return err
	}
	s.cfg.logger.Debug("heartbeat: session opened in the store", "session", id)
	return nil
}

func (s *Server) notifyShared(ctx context.Context, id, key string, frame []byte) error {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	err := s.cfg.store.Notify(ctx, id, key, frame)
	switch {
	case errors.Is(err, ErrUnknownSession):
		return fmt.Errorf("%w: %q", ErrUnknownSession, id)
	case errors.Is(err, ErrTooManyNotices):
		return fmt.Errorf("%w: session %q", ErrTooManyNotices, id)
	}
	return err
}

func (s *Server) touchShared(ctx context.Context, id string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if ss := s.sessions[id]; ss != nil && ss.conn != nil {
		ss.lastActivity.Store(int64(s.now()))
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	err := s.cfg.store.Touch(ctx, id)
	if errors.Is(err, ErrUnknownSession) {
		return fmt.Errorf("%w: %q", ErrUnknownSession, id)
	}
	return err
}

func (s *Server) releaseShared(ctx context.Context, id, reason string, frame []byte) error {
	// The drop after the store's End also takes a callback of a deadline
	// swept just before the End.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	local := false
	if ss := s.sessions[id]; ss != nil {
		local = true
		s.endReleasedLocked(ss, reason, frame)
	}
	if ls := s.leaving[id]; ls != nil {
		ls.pending = nil
		delete(s.leaving, id)
	}
	s.dropMailboxLocked(id)
	s.mu.Unlock()
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	err := s.cfg.store.End(ctx, id, reason)
	s.mu.Lock()
	if err == nil {
		// The store tells the owner, but not when it is this Server: a
		// hello of the session whose Claim ended before the End is told
		// here, after its welcome, or now if it was attached meanwhile.
		if ss := s.sessions[id]; s.claiming[id] != nil || ss != nil && !ss.ended {
			s.storeMessageLocked(StoreMessage{Kind: MessageRelease, Session: id, Reason: reason})
		}
	}
	s.dropMailboxLocked(id)
	s.mu.Unlock()
	if errors.Is(err, ErrUnknownSession) {
		if local {
			return nil
		}
		return fmt.Errorf("%w: %q", ErrUnknownSession, id)
	}
	return err
}

// endReleasedLocked ends a session held here because it was released: the
// client gets the released notice, then CloseReleased. Caller holds
// Server.mu.
func (s *Server) endReleasedLocked(ss *serverSession, reason string, frame []byte) {
	s.cfg.logger.Debug("heartbeat: session released", "session", ss.id, "reason", reason)
	if c := s.endLocked(ss, true); c != nil {
		c.out = append(c.out, frame)
		s.closeLocked(c, CloseReleased, reason)
	}
}

// claiming is what reached this replica for a session while hellos of it
// wait here for Store.Claim. The store routes a session's messages to the
// new owner as soon as the claim is recorded, before it has returned here
// and the client is welcomed: they are kept here and played after the
// welcome, in the order they came (dropped, a ready notice sent during the
// claim would never reach the client). It also keeps the latest activity a
// MessageTouch reported meanwhile: the old connection's replica hands its
// last activity over as soon as the claim replaces it.
type claiming struct {
	hellos   int            // hellos of the session waiting for Claim here
	messages []StoreMessage // notices and releases, in arrival order
	// activity is the latest activity a MessageTouch reported, when
	// touched: on this Server's clock, so it is negative for activity
	// before this Server started (a replica younger than the user's idle
	// time), and zero is a real instant, not "none".
	activity time.Duration
	touched  bool
}

// keep records a message for the claims under way. Notices of one key
// coalesce (the latest wins, in the place of the first), as in a session's
// pending notices; a release ends the list.
func (cw *claiming) keep(m StoreMessage) {
	if m.Kind == MessageNotice {
		for i := range cw.messages {
			if p := &cw.messages[i]; p.Kind == MessageNotice && p.Key == m.Key {
				p.Frame = m.Frame
				return
			}
		}
		if len(cw.messages) >= maxPendingNotices {
			return
		}
	}
	cw.messages = append(cw.messages, m)
}

// join attaches c to its session: the store consumes the token's nonce and
// makes this Server the owner; a previous owner closes its connection.
func (s *Server) join(c *conn, id string, used nonce) bool {
	fresh := newNonce()
	resume := s.tokens.mint(id, fresh)
	s.mu.Lock()
	cw := s.claiming[id]
	if cw == nil {
		cw = &claiming{}
		s.claiming[id] = cw
	}
	cw.hellos++
	s.mu.Unlock()
	ctx, cancel := s.storeCtx()
	cl, err := s.cfg.store.Claim(ctx, id, nonceID(used), nonceID(fresh))
	cancel()

	s.mu.Lock()
	defer s.mu.Unlock()
	// The messages kept so far are this claim's: those of an earlier
	// connection of the session went to that connection, and a later
	// claim's come after this one returned.
	kept := cw.messages
	cw.messages = nil
	if cw.hellos--; cw.hellos == 0 {
		delete(s.claiming, id)
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrUnknownSession):
			s.cfg.logger.Debug("heartbeat: hello refused: session expired or unknown", "session", id)
			s.closeLocked(c, CloseExpired, "session expired or unknown")
		case errors.Is(err, ErrTokenUsed):
			s.cfg.logger.Debug("heartbeat: hello refused: token already used or superseded", "session", id)
			s.closeLocked(c, CloseUnauthorized, "token already used or superseded")
		default:
			s.cfg.logger.Warn("heartbeat: hello refused: the session store failed", "session", id, "err", err)
			s.closeLocked(c, websocket.CloseTryAgainLater, "session store unavailable, try again")
		}
		return false
	}
	now := s.now()
	if c.state != connHello || s.closed {
		// Timed out or shut down while the store answered: give the
		// session back as disconnected, grace from this hello.
		if s.closed {
			s.closeLocked(c, CloseGoingAway, "server shutting down")
		}
		// The connection is leaving: notices the store routes here until
		// the detach is recorded are kept on it and handed back.
		ls := &serverSession{srv: s, id: id, timer: timerEntry{index: -1}, epoch: cl.Epoch, state: SessionDisconnected, openedAt: now - cl.OpenedAge, since: now, expiresAt: now + s.cfg.grace, idleBase: now - cl.ActivityAge, idleTimes: cl.IdleTimes}
		ls.lastActivity.Store(int64(ls.idleBase))
		s.leaveLocked(ls)
		var notices []pendingNotice
		for _, m := range kept {
			if m.Kind == MessageNotice {
				notices = append(notices, pendingNotice{key: m.Key, frame: m.Frame})
			}
		}
		s.storeDetachLocked(id, Detach{Epoch: cl.Epoch, Grace: s.cfg.grace, ActivityAge: cl.ActivityAge, IdleTimes: cl.IdleTimes, ActivityKnown: true}, notices)
		return false
	}
	ss := s.sessions[id]
	activity, times, known := now-cl.ActivityAge, cl.IdleTimes, true
	if ss != nil && ss.conn != nil { // an older connection of this replica
		a := time.Duration(ss.lastActivity.Load())
		switch {
		case cl.PrevOwner == s.cfg.store.Replica() && cl.PrevEpoch == ss.epoch:
			// The connection replaced is that one: its idle count is
			// exact here, where the store's is its last refresh, measured
			// again (a few milliseconds off, and up to a refresh old).
			activity, times, known = a, ss.recordedTimes(), ss.knows(a)
			if a != ss.idleBase {
				times = 0
			}
		case !ss.knows(a) && a > activity:
			// seen since its last refresh, which the store has
			activity, times, known = a, 0, false
		}
		old := ss.conn
		s.detachLocked(old, ReasonReplaced)
		s.closeLocked(old, CloseReplaced, "replaced by a newer connection")
	}
	if cw.touched && cw.activity > activity { // recorded by the store
		activity, times, known = cw.activity, 0, true
	}
	if ss == nil || ss.ended {
		ss = &serverSession{srv: s, id: id, timer: timerEntry{index: -1}, openedAt: now - cl.OpenedAge}
		s.sessions[id] = ss
	}
	ss.knownActivity, ss.activityKnown = activity, known
	ss.epoch, ss.timing = cl.Epoch, cl.Timing
	ss.resume, ss.hasResume = fresh, true
	ss.lastActivity.Store(int64(activity))
	ss.idleBase, ss.idleTimes = activity, times
	ss.conn, c.sess = c, ss
	ss.state, ss.since = SessionConnected, now
	c.state = connOpen
	c.nextPing = now + s.cfg.pingInterval
	s.schedule(c, c.nextPing)
	c.out = append(c.out, encode(welcomeFrame{
		Type:          frameWelcome,
		V:             c.version,
		Session:       id,
		Token:         resume,
		Resumed:       cl.Resumed,
		PingInterval:  s.cfg.pingInterval.Milliseconds(),
		PingTimeout:   s.cfg.pingTimeout.Milliseconds(),
		Grace:         s.cfg.grace.Milliseconds(),
		ReloadGrace:   s.cfg.reloadGrace.Milliseconds(),
		IdleThreshold: s.cfg.idleThreshold.Milliseconds(),
	}))
	c.out = append(c.out, cl.Notices...)
	s.kick(c)
	for _, m := range kept {
		switch m.Kind {
		case MessageNotice:
			if ss.queueNotice(m.Key, m.Frame) {
				s.kick(c)
			}
		case MessageRelease:
			s.endReleasedLocked(ss, m.Reason, encodeNotice(Notice{Kind: NoticeReleased, Reason: m.Reason}))
			return false
		}
	}
	s.schedule(ss, activity+time.Duration(ss.idleTimes+1)*s.cfg.idleThreshold)

	ev := Event{SessionID: id, At: s.epoch.Add(now)}
	if cl.PrevGone {
		// Its replica is gone and cannot report the end of its connection.
		s.postLocked(id, s.cfg.onDisconnect, Event{SessionID: id, At: ev.At, Reason: ReasonReplaced})
	}
	if !cl.Resumed {
		s.cfg.logger.Debug("heartbeat: session connected", "session", id, "epoch", cl.Epoch)
		s.postLocked(id, s.cfg.onConnect, ev)
	} else {
		s.cfg.logger.Debug("heartbeat: session resumed", "session", id, "epoch", cl.Epoch, "from", cl.PrevOwner)
		s.postLocked(id, s.cfg.onResume, ev)
	}
	return true
}

// detachSharedLocked hands a session whose connection here ended back to
// the store: it is no longer held here. Caller holds Server.mu.
func (s *Server) detachSharedLocked(ss *serverSession, now, last, grace time.Duration, revoke bool) {
	activity := time.Duration(ss.lastActivity.Load())
	times := ss.recordedTimes()
	if activity != ss.idleBase {
		times = 0
	}
	s.unschedule(ss)
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	if revoke {
		ss.hasResume = false
	}
	s.leaveLocked(ss)
	s.storeDetachLocked(ss.id, Detach{
		Epoch:         ss.epoch,
		LastSeenAge:   max(0, now-last),
		Grace:         grace,
		ActivityAge:   max(0, now-activity),
		IdleTimes:     times,
		Revoke:        revoke,
		ActivityKnown: ss.knows(activity),
	}, nil)
}

// knows says whether the store has activity as this connection's last:
// the store gave it, or was told it, and no later one was seen here.
func (ss *serverSession) knows(activity time.Duration) bool {
	return ss.activityKnown && activity == ss.knownActivity
}

// leaveLocked records ss as leaving: its detach is on its way to the store.
// The notices kept by an earlier leaving connection of the session go with
// the later one. Caller holds Server.mu.
func (s *Server) leaveLocked(ss *serverSession) {
	if prev := s.leaving[ss.id]; prev != nil && prev != ss {
		for _, p := range prev.pending {
			ss.queueNotice(p.key, p.frame)
		}
		prev.pending = nil
	}
	s.leaving[ss.id] = ss
}

// storeDetachLocked records a detach in the store on a goroutine of the
// Server. If it fails, the owner lease runs out instead: the session is
// then reported lost, its grace counted from the last refresh. Until the
// store has it, notices the store still routes here are kept on the
// leaving session (s.leaving) and then handed back to the store, which
// keeps them for the next connection; so are the notices in kept, which
// no connection here took. Caller holds Server.mu.
func (s *Server) storeDetachLocked(id string, d Detach, kept []pendingNotice) {
	s.goLocked(func() {
		ctx, cancel := s.storeCtx()
		err := s.cfg.store.Detach(ctx, id, d)
		cancel()
		if err != nil {
			s.cfg.logger.Warn("heartbeat: recording a disconnect in the store failed; the owner lease runs out instead", "session", id, "err", err)
		}
		s.mu.Lock()
		pending := kept
		if ss := s.leaving[id]; ss != nil && ss.epoch == d.Epoch {
			delete(s.leaving, id)
			pending, ss.pending = append(pending, ss.pending...), nil
		}
		s.mu.Unlock()
		for _, p := range pending {
			if err := s.notifyShared(s.bg, id, p.key, p.frame); err != nil && !errors.Is(err, ErrUnknownSession) {
				s.cfg.logger.Warn("heartbeat: a notice for a client that left could not be kept", "session", id, "err", err)
			}
		}
	})
}

// handOverActivityLocked gives the store the last activity seen on ss's
// connection, which a newer one (on another replica) replaced, if the
// store does not have it yet: the store keeps the later of it and the one
// it has (refreshed up to StoreRefreshInterval ago) and tells the new
// owner, so that the idle count follows the user to the activity seen
// here. Caller holds Server.mu.
func (s *Server) handOverActivityLocked(ss *serverSession) {
	activity := time.Duration(ss.lastActivity.Load())
	if ss.knows(activity) {
		return // the store has it
	}
	id, d := ss.id, Detach{Epoch: ss.epoch, ActivityAge: max(0, s.now()-activity)}
	s.goLocked(func() {
		ctx, cancel := s.storeCtx()
		err := s.cfg.store.Detach(ctx, id, d)
		cancel()
		if err != nil {
			s.cfg.logger.Debug("heartbeat: handing the last activity of a replaced connection to the store failed", "session", id, "err", err)
		}
	})
}

// dropHeldLocked removes a held session whose connection the store says is
// no longer its own, and closes the connection. Caller holds Server.mu.
func (s *Server) dropHeldLocked(ss *serverSession, st HeldStatus) {
	c := ss.conn
	switch st {
	case HeldReplaced:
		s.handOverActivityLocked(ss)
		s.detachLocked(c, ReasonReplaced)
		s.unschedule(ss)
		if s.sessions[ss.id] == ss {
			delete(s.sessions, ss.id)
		}
		s.closeLocked(c, CloseReplaced, "replaced by a newer connection")
	case HeldGone:
		s.cfg.logger.Info("heartbeat: the store no longer has a session held here; closing its connection", "session", ss.id)
		s.endLocked(ss, true)
		s.closeLocked(c, CloseExpired, "session expired")
	}
}

func (s *Server) refreshLoop() {
	t := time.NewTicker(StoreRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-s.loopStop:
			return
		case <-t.C:
		}
		s.refresh()
	}
}

// refresh tells the store which connections this replica holds, in
// batches of refreshBatch. Each batch is measured just before it is sent,
// so a batch carries the idle counts of its moment, and only its own
// sessions' records wait for it (storeWrite).
func (s *Server) refresh() {
	// In the order of their ids, the same every round: a connection is
	// refreshed about one round after the last time, however long a round
	// takes. (In the map's random order, one refreshed first in a round
	// and last in the next would wait two rounds, past the owner lease
	// when rounds are slow, and be counted lost while it is connected.)
	s.mu.Lock()
	var sess []*serverSession
	for _, ss := range s.sessions {
		if ss.conn != nil {
			sess = append(sess, ss)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(sess, func(a, b *serverSession) int { return strings.Compare(a.id, b.id) })

	rebuilt := 0
	for len(sess) > 0 {
		n := min(len(sess), refreshBatch)
		batch, held, at, done, ok := s.heldBatch(sess[:n])
		sess = sess[n:]
		if !ok {
			return // Shutdown or Drain
		}
		if len(held) == 0 {
			continue
		}
		ctx, cancel := s.storeCtx()
		res, err := s.cfg.store.Refresh(ctx, held)
		cancel()
		s.mu.Lock()
		for _, ss := range batch {
			if ss.storeWrite == done {
				ss.storeWrite = nil
			}
		}
		close(done)
		if err != nil {
			s.mu.Unlock()
			s.cfg.logger.Warn("heartbeat: refreshing the held connections in the store failed; they stay connected", "connections", len(held)+len(sess), "err", err)
			return
		}
		if res.Rebuilt {
			rebuilt += len(held)
		}
		now := s.now()
		for i, st := range res.Status {
			if i >= len(held) {
				break
			}
			ss := batch[i]
			if ss.conn == nil || ss.epoch != held[i].Epoch || s.sessions[ss.id] != ss {
				continue
			}
			if st == HeldOK || st == HeldRevived {
				ss.knownActivity, ss.activityKnown = at-held[i].ActivityAge, true // the activity reported
			}
			switch st {
			case HeldRevived:
				s.cfg.logger.Info("heartbeat: session counted as lost by the store is connected here again", "session", ss.id)
				s.postLocked(ss.id, s.cfg.onResume, Event{SessionID: ss.id, At: s.epoch.Add(now)})
			case HeldGone, HeldReplaced:
				s.dropHeldLocked(ss, st)
			}
		}
		s.mu.Unlock()
	}
	if rebuilt > 0 {
		s.cfg.logger.Error("heartbeat: the session store had lost its data (restarted empty?); sessions rebuilt from the connections held here; sessions not connected anywhere are lost", "rebuilt", rebuilt)
	}
}

// heldBatch measures the connections of sess still held here for one
// Refresh, and marks each one's idle count as on its way (storeWrite =
// done). It first waits for their records in flight (Store.ReportIdle),
// so that the batch carries those counts, not older ones. at is when it
// measured; ok is false if the loops stopped meanwhile (Shutdown, Drain).
func (s *Server) heldBatch(sess []*serverSession) (batch []*serverSession, held []Held, at time.Duration, done chan struct{}, ok bool) {
	for {
		s.mu.Lock()
		var busy []chan struct{}
		for _, ss := range sess {
			if w := ss.storeWrite; w != nil && ss.conn != nil {
				busy = append(busy, w)
			}
		}
		if len(busy) == 0 {
			break // still locked
		}
		s.mu.Unlock()
		for _, w := range busy {
			select {
			case <-w:
			case <-s.loopStop:
				return nil, nil, 0, nil, false
			}
		}
	}
	defer s.mu.Unlock()
	at, done = s.now(), make(chan struct{})
	for _, ss := range sess {
		c := ss.conn
		if c == nil || s.sessions[ss.id] != ss {
			continue
		}
		activity := time.Duration(ss.lastActivity.Load())
		times := ss.recordedTimes()
		if activity != ss.idleBase {
			times = 0
		}
		var resume string
		if ss.hasResume {
			resume = nonceID(ss.resume)
		}
		held = append(held, Held{
			Session:     ss.id,
			Epoch:       ss.epoch,
			Resume:      resume,
			LastSeenAge: max(0, at-time.Duration(c.lastSeen.Load())),
			ActivityAge: max(0, at-activity),
			IdleTimes:   times,
			Timing:      ss.timing,
		})
		batch = append(batch, ss)
		ss.storeWrite = done
	}
	return batch, held, at, done, true
}

// postSharedIdleLocked fires idle threshold ev.Times of ss, whose client is
// connected here, with a shared store: on the session's mailbox it first
// records the threshold in the store (Store.ReportIdle), then fires OnIdle
// and sends the idle notice, only if the store took it as this
// connection's. A threshold the store refused belongs to whoever holds the
// session now (a newer connection, or the sweeper after this owner
// counted as lost), which counts from the store's record: so it fires
// once. If the store cannot be reached it fires here all the same: an
// outage must not silence the idle callbacks of connected users, at the
// cost of a threshold that may fire again where the session goes next.
// Caller holds Server.mu.
func (s *Server) postSharedIdleLocked(ss *serverSession, activity time.Duration, ev Event) {
	id, epoch, base := ss.id, ss.epoch, ss.idleBase
	ss.unreported++
	s.postFuncLocked(id, func() {
		// A refresh batch in flight with this session may carry a count
		// from before this threshold: let it reach the store first. While
		// the record is on its way, the next batch with it waits for it.
		s.mu.Lock()
		for ss.storeWrite != nil {
			w := ss.storeWrite
			s.mu.Unlock()
			select {
			case <-w:
			case <-s.loopStop:
				return // Shutdown or Drain: the handover leaves it to the store
			}
			s.mu.Lock()
		}
		mine := make(chan struct{})
		ss.storeWrite = mine
		s.mu.Unlock()
		ctx, cancel := s.storeCtx()
		ok, err := s.cfg.store.ReportIdle(ctx, id, epoch, max(0, s.now()-activity), ev.Times)
		cancel()
		s.mu.Lock()
		ss.storeWrite = nil
		close(mine)
		if ss.idleBase == base && ss.unreported > 0 {
			ss.unreported--
		}
		switch {
		case s.closed || ss.ended || s.bg.Err() != nil:
			s.mu.Unlock()
			return // no callback starts once the Server is closing
		case err != nil:
			s.cfg.logger.Warn("heartbeat: recording an idle threshold in the store failed; firing it here (it may fire again on the replica the session moves to)", "session", id, "times", ev.Times, "err", err)
		case !ok:
			s.mu.Unlock()
			s.cfg.logger.Debug("heartbeat: an idle threshold belongs to the session's newer holder", "session", id, "times", ev.Times)
			return
		}
		if s.sessions[id] == ss && ss.epoch == epoch {
			if err == nil && !(ss.activityKnown && ss.knownActivity > activity) {
				ss.knownActivity, ss.activityKnown = activity, true // the activity reported
			}
			s.sendIdleNoticeLocked(ss, ev.Times)
		}
		s.mu.Unlock()
		if s.cfg.onIdle != nil {
			s.cfg.onIdle(ev)
		}
	})
}

// sweepLoop takes the store's due deadlines: every StoreSweepInterval
// from a shared store, and at each deadline of the own store, while it has
// one.
func (s *Server) sweepLoop() {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		wait := StoreSweepInterval
		if s.own != nil {
			at, ok := s.own.nextDue()
			if !ok {
				s.mu.Lock()
				select {
				case <-s.sweepWake: // a deadline came meanwhile
					s.mu.Unlock()
					continue
				default:
				}
				s.sweeping = false
				s.mu.Unlock()
				return
			}
			wait = max(0, at.Sub(s.epoch.Add(s.now())))
		}
		if t == nil {
			t = time.NewTimer(wait)
		} else {
			t.Reset(wait)
		}
		select {
		case <-s.loopStop:
			return
		case <-s.sweepWake:
			t.Stop()
			continue
		case <-t.C:
		}
		s.sweep()
	}
}

// sweep takes due deadlines from the store and fires their callbacks here.
func (s *Server) sweep() {
	for {
		ctx, cancel := s.storeCtx()
		due, err := s.cfg.store.Sweep(ctx, sweepBatch)
		cancel()
		if err != nil {
			s.cfg.logger.Warn("heartbeat: sweeping the store's deadlines failed; retrying", "err", err)
			return
		}
		s.mu.Lock()
		for _, d := range due {
			s.firedLocked(d)
		}
		closed := s.closed
		s.mu.Unlock()
		if len(due) < sweepBatch || closed {
			return
		}
	}
}

// firedLocked queues the callback of one swept deadline. Caller holds
// Server.mu.
func (s *Server) firedLocked(d Due) {
	switch d.Kind {
	case DueIdle:
		s.postLocked(d.Session, s.cfg.onIdle, Event{SessionID: d.Session, At: d.At, Times: d.Times})
	case DueLost:
		s.cfg.logger.Debug("heartbeat: session lost by its owner replica", "session", d.Session)
		s.postLocked(d.Session, s.cfg.onDisconnect, Event{SessionID: d.Session, At: d.At, Reason: ReasonConnectionLost, LastSeen: d.LastSeen, ExpiresAt: d.ExpiresAt})
	case DueExpired:
		if ss := s.sessions[d.Session]; ss != nil && ss.conn != nil {
			// Held here, but the store gave up on it (refreshes failed
			// past its grace): it is gone everywhere.
			s.dropHeldLocked(ss, HeldGone)
		}
		s.cfg.logger.Debug("heartbeat: session expired", "session", d.Session)
		s.postLocked(d.Session, s.cfg.onExpire, Event{SessionID: d.Session, At: d.At})
	}
}

// onStoreMessage receives a message the store routed to this replica.
func (s *Server) onStoreMessage(m StoreMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.storeMessageLocked(m)
}

// storeMessageLocked handles a message the store routed here. Caller holds
// Server.mu.
func (s *Server) storeMessageLocked(m StoreMessage) {
	ss := s.sessions[m.Session]
	held := ss != nil && ss.conn != nil
	switch m.Kind {
	case MessageReplaced:
		if held && ss.epoch == m.Epoch {
			s.dropHeldLocked(ss, HeldReplaced)
		}
	case MessageNotice:
		if held {
			if ss.queueNotice(m.Key, m.Frame) {
				s.kick(ss.conn)
			}
			return
		}
		// The connection left and the store does not know yet: keep it
		// until the detach is recorded, then hand it back.
		if ls := s.leaving[m.Session]; ls != nil {
			ls.queueNotice(m.Key, m.Frame)
			return
		}
		// A hello here has claimed the session and waits for the claim's
		// answer: keep it for the welcome.
		if cw := s.claiming[m.Session]; cw != nil {
			cw.keep(m)
			return
		}
		s.cfg.logger.Debug("heartbeat: a notice for a connection no longer here was dropped", "session", m.Session)
	case MessageRelease:
		if ss != nil {
			s.endReleasedLocked(ss, m.Reason, encodeNotice(Notice{Kind: NoticeReleased, Reason: m.Reason}))
		}
		if ls := s.leaving[m.Session]; ls != nil {
			ls.pending = nil
			delete(s.leaving, m.Session)
		}
		if cw := s.claiming[m.Session]; cw != nil {
			cw.keep(m)
		}
		s.dropMailboxLocked(m.Session)
	case MessageTouch:
		at := s.now() - m.ActivityAge
		switch {
		case held:
			if at > time.Duration(ss.lastActivity.Load()) {
				ss.lastActivity.Store(int64(at))
				ss.knownActivity, ss.activityKnown = at, true // the store's
			}
		case s.claiming[m.Session] != nil:
			cw := s.claiming[m.Session]
			if !cw.touched || at > cw.activity {
				cw.activity, cw.touched = at, true
			}
		}
	}
}
