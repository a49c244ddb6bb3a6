package cartest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/deadline"
)

// The model is the state of the projects, packs and concurrencies. It has
// no lock and no clock of its own: the Server calls it under its mutex with
// the model time. Deadlines (lock expiry, reconnect wait, cleanup) are kept
// in a heap and applied lazily, in due order, by settle, which the Server
// runs before every read or change: what anyone observes is the state at
// the model time of the observation, and events carry the time they were
// due, not the time they were noticed.
type model struct {
	lockTime, cleanupDelay time.Duration
	projects               map[string]*project
	packs                  []*pack
	byID                   map[string]*conc
	holders                map[string]*conc // UserId → the concurrency the user holds
	timers                 concHeap
	seq                    uint64
	record                 func(Event)
	// The details of the events every lifecycle logs, formatted once.
	lockRenewed, lockExpired, destroyedDetail string
}

type project struct {
	id            string
	reconnectWait time.Duration
	packs         []*pack
	// The details of the project's events, formatted once.
	lockedDetail, createdDetail, waitingDetail, waitExpired, neverConnected string
}

type pack struct {
	id    string
	concs []*conc
}

// conc is one concurrency.
type conc struct {
	id        string
	pack      *pack
	state     State
	since     time.Time
	user      string
	userIP    string
	project   *project
	runMode   string
	appParams string
	destroyed bool
	token     string        // the current ServerSession's token; "" without a session
	stream    *serverStream // the connected client stream
	push      *Push

	due   time.Time // when the state ends by itself; zero if it does not
	seq   uint64    // orders equal deadlines by when they were set
	index int       // in model.timers; -1 when not there
}

// cause is the call that makes a change, for the event log.
type cause struct{ action, requestID string }

// closeOrder is a stream the server must close once it has left the model:
// network writes never happen under the lock.
type closeOrder struct {
	stream *serverStream
	code   int
	reason string
}

func newModel(cfg *config, now time.Time, record func(Event)) *model {
	m := &model{
		lockTime: cfg.lockTime, cleanupDelay: cfg.cleanupDelay,
		projects: make(map[string]*project),
		byID:     make(map[string]*conc),
		holders:  make(map[string]*conc),
		record:   record,

		lockRenewed:     fmt.Sprintf("lock renewed for %v", cfg.lockTime),
		lockExpired:     fmt.Sprintf("no CreateSession within the lock time (%v)", cfg.lockTime),
		destroyedDetail: fmt.Sprintf("cleanup for %v", cfg.cleanupDelay),
	}
	for _, p := range cfg.projects {
		w := p.ReconnectWait
		m.projects[p.ProjectId] = &project{
			id: p.ProjectId, reconnectWait: w,
			lockedDetail:   fmt.Sprintf("for project %s, until CreateSession or %v", p.ProjectId, cfg.lockTime),
			createdDetail:  fmt.Sprintf("waiting for the client for up to %v", w),
			waitingDetail:  fmt.Sprintf("; waiting %v for a reconnect", w),
			waitExpired:    fmt.Sprintf("no client within the reconnect wait (%v)", w),
			neverConnected: fmt.Sprintf("the client never connected within the reconnect wait (%v)", w),
		}
	}
	for _, p := range cfg.packs {
		pk := &pack{id: p.PackId, concs: make([]*conc, p.Size)}
		for i := range pk.concs {
			c := &conc{id: fmt.Sprintf("%s-%d", p.PackId, i+1), pack: pk, index: -1, since: now}
			pk.concs[i] = c
			m.byID[c.id] = c
		}
		m.packs = append(m.packs, pk)
		for _, id := range p.Projects {
			m.projects[id].packs = append(m.projects[id].packs, pk)
		}
	}
	return m
}

// settle applies every deadline due at or before now, in due order.
func (m *model) settle(now time.Time) {
	for len(m.timers) > 0 && !m.timers[0].due.After(now) {
		c := m.timers.Pop()
		at := c.due
		c.due = time.Time{}
		m.expire(c, at)
	}
}

// expire ends the state of c at its deadline.
func (m *model) expire(c *conc, at time.Time) {
	switch c.state {
	case StateLocked:
		m.event(at, EventLockExpired, c, cause{}, m.lockExpired)
		m.release(c, at)
	case StateCreated, StateDisconnected:
		detail := c.project.waitExpired
		if c.state == StateCreated {
			detail = c.project.neverConnected
		}
		m.event(at, EventReconnectWaitExpired, c, cause{}, detail)
		delete(m.holders, c.user)
		m.endSession(c, at, cause{}, "the session ended")
		m.setState(c, StateCleanup, at)
		m.setTimer(c, at.Add(m.cleanupDelay))
	case StateCleanup:
		m.release(c, at)
	}
}

// release makes c idle.
func (m *model) release(c *conc, at time.Time) {
	if m.holders[c.user] == c {
		delete(m.holders, c.user)
	}
	m.event(at, EventReleased, c, cause{}, "idle")
	m.clearTimer(c)
	*c = conc{id: c.id, pack: c.pack, index: -1, state: StateIdle, since: at}
}

// endSession invalidates the ServerSession and ends a push.
func (m *model) endSession(c *conc, at time.Time, cs cause, why string) {
	c.token = ""
	if c.push != nil {
		m.event(at, EventPushStopped, c, cs, why)
		c.push = nil
	}
}

func (m *model) setState(c *conc, s State, at time.Time) {
	c.state, c.since = s, at
}

func (m *model) setTimer(c *conc, due time.Time) {
	m.seq++
	c.due, c.seq = due, m.seq
	if m.timers.Contains(c) {
		m.timers.Fix(c)
		return
	}
	m.timers.Push(c)
}

func (m *model) clearTimer(c *conc) {
	m.timers.Remove(c)
	c.due = time.Time{}
}

func (m *model) event(at time.Time, kind EventKind, c *conc, cs cause, detail string) {
	m.record(Event{
		Time: at, Kind: kind, Subject: c.user, Resource: c.id,
		Action: cs.action, RequestId: cs.requestID, Detail: detail,
	})
}

func (m *model) project(id string) (*project, *apiserver.Error) {
	p := m.projects[id]
	if p == nil {
		return nil, apiserver.Errorf(car.CodeInvalidParameterValue, "the parameter `ProjectId` names no project of this account: %q", clip(id))
	}
	return p, nil
}

// apply is ApplyConcurrent.
func (m *model) apply(now time.Time, cs cause, user, ip, projectID string) *apiserver.Error {
	p, err := m.project(projectID)
	if err != nil {
		return err
	}
	if c := m.holders[user]; c != nil {
		switch {
		case c.destroyed:
			return stopping(user)
		case c.project != p:
			return apiserver.Errorf(car.CodeFailedOperation, "UserId %q already holds concurrency %s of project %s; DestroySession first to use project %s", clip(user), c.id, c.project.id, p.id)
		}
		c.userIP = ip
		if c.state == StateLocked {
			m.setTimer(c, now.Add(m.lockTime))
			m.event(now, EventLocked, c, cs, m.lockRenewed)
			return nil
		}
		m.event(now, EventReattached, c, cs, "ApplyConcurrent; the concurrency is "+c.state.String())
		return nil
	}
	var busy int
	for _, pk := range p.packs {
		for _, c := range pk.concs {
			if c.state != StateIdle {
				busy++
				continue
			}
			c.user, c.userIP, c.project = user, ip, p
			m.setState(c, StateLocked, now)
			m.setTimer(c, now.Add(m.lockTime))
			m.holders[user] = c
			m.event(now, EventLocked, c, cs, p.lockedDetail)
			return nil
		}
	}
	if len(p.packs) == 0 {
		return apiserver.Errorf(car.CodeNoIdle, "project %s has no concurrency pack bound", p.id)
	}
	return apiserver.Errorf(car.CodeNoIdle, "no idle concurrency: all %d concurrencies serving project %s are busy", busy, p.id)
}

// create is CreateSession; it returns the new session's token.
func (m *model) create(now time.Time, cs cause, user, ip, runMode, params string) (*conc, []closeOrder, *apiserver.Error) {
	c := m.holders[user]
	switch {
	case c == nil:
		return nil, nil, apiserver.Errorf(car.CodeLockTimeout, "UserId %q holds no locked concurrency: call ApplyConcurrent first (a lock lasts %v)", clip(user), m.lockTime)
	case c.destroyed:
		return nil, nil, stopping(user)
	}
	var orders []closeOrder
	if c.state != StateLocked {
		m.event(now, EventReattached, c, cs, "CreateSession; the concurrency was "+c.state.String())
		if c.stream != nil {
			orders = append(orders, closeOrder{c.stream, CloseRepeatedConnection, reasonRepeated})
			m.event(now, EventRepeatedConnection, c, cs, "a newer CreateSession replaced the connected client")
			c.stream = nil
		}
	}
	c.token = newToken()
	c.userIP, c.runMode, c.appParams = ip, runMode, params
	m.setState(c, StateCreated, now)
	detail := c.project.createdDetail
	if runMode == car.RunModeRunWithoutClient {
		m.clearTimer(c)
		detail = "RunWithoutClient: kept until DestroySession"
	} else {
		m.setTimer(c, now.Add(c.project.reconnectWait))
	}
	m.event(now, EventCreated, c, cs, detail)
	return c, orders, nil
}

// destroy is DestroySession. A user holding nothing, or already being
// destroyed, is no error.
func (m *model) destroy(now time.Time, cs cause, user string) []closeOrder {
	c := m.holders[user]
	if c == nil || c.destroyed {
		return nil
	}
	var orders []closeOrder
	if c.stream != nil {
		orders = append(orders, closeOrder{c.stream, CloseServerClosed, reasonDestroyed})
		c.stream = nil
	}
	m.endSession(c, now, cs, "DestroySession")
	c.destroyed = true
	m.setState(c, StateCleanup, now)
	m.setTimer(c, now.Add(m.cleanupDelay))
	m.event(now, EventDestroyed, c, cs, m.destroyedDetail)
	return orders
}

// session returns the user's concurrency if it has a live session.
func (m *model) session(user string) (*conc, *apiserver.Error) {
	c := m.holders[user]
	if c == nil || c.destroyed || c.token == "" {
		return nil, apiserver.Errorf(car.CodeSessionNotFound, "UserId %q has no session: CreateSession first (and it must not have been destroyed or reclaimed)", clip(user))
	}
	return c, nil
}

func (m *model) startPush(now time.Time, cs cause, user string, push Push) *apiserver.Error {
	c, err := m.session(user)
	if err != nil {
		return err
	}
	push.Since = now
	detail := push.URL
	if c.push != nil {
		detail += " (replacing " + c.push.URL + ")"
	}
	c.push = &push
	m.event(now, EventPushStarted, c, cs, detail)
	return nil
}

func (m *model) stopPush(now time.Time, cs cause, user string) *apiserver.Error {
	c, err := m.session(user)
	if err != nil {
		return err
	}
	if c.push != nil {
		c.push = nil
		m.event(now, EventPushStopped, c, cs, "StopPublishStream")
	}
	return nil
}

// count is DescribeConcurrentCount: of one project, or of the account.
func (m *model) count(projectID string) (total, running uint64, err *apiserver.Error) {
	packs := m.packs
	if projectID != "" {
		p, err := m.project(projectID)
		if err != nil {
			return 0, 0, err
		}
		packs = p.packs
	}
	for _, pk := range packs {
		for _, c := range pk.concs {
			total++
			if c.state != StateIdle {
				running++
			}
		}
	}
	return total, running, nil
}

// admit checks a stream's ServerSession against the model, before and
// after the WebSocket upgrade.
func (m *model) admit(concurrencyID, token string) (*conc, string) {
	c := m.byID[concurrencyID]
	if c == nil || c.token == "" || subtle.ConstantTimeCompare([]byte(c.token), []byte(token)) != 1 {
		return nil, "the ServerSession is not current: it was replaced by a newer CreateSession, or its session was destroyed or reclaimed"
	}
	return c, ""
}

// connect attaches a client stream to its concurrency. A stream already
// connected to the session is replaced (repeated connection).
func (m *model) connect(now time.Time, c *conc, st *serverStream) []closeOrder {
	var orders []closeOrder
	detail := "client stream opened"
	switch c.state {
	case StateDisconnected:
		detail = fmt.Sprintf("the client came back after %v", now.Sub(c.since))
	case StateConnected:
		orders = append(orders, closeOrder{c.stream, CloseRepeatedConnection, reasonRepeated})
		m.event(now, EventRepeatedConnection, c, cause{}, "a newer client stream of the same session replaced it")
	}
	c.stream = st
	st.conc = c
	m.setState(c, StateConnected, now)
	m.clearTimer(c)
	m.event(now, EventConnected, c, cause{}, detail)
	return orders
}

// disconnect detaches a stream that went away, or that the server closed
// for a heartbeat timeout; it is a no-op for a stream the model already
// let go.
func (m *model) disconnect(now time.Time, st *serverStream, detail string) {
	c := st.conc
	if c == nil || c.stream != st {
		return
	}
	c.stream = nil
	m.setState(c, StateDisconnected, now)
	if c.runMode == car.RunModeRunWithoutClient {
		detail += "; RunWithoutClient: kept until DestroySession"
	} else {
		m.setTimer(c, now.Add(c.project.reconnectWait))
		detail += c.project.waitingDetail
	}
	m.event(now, EventDisconnected, c, cause{}, detail)
}

func (m *model) snapshot(c *conc) Concurrency {
	out := Concurrency{
		ConcurrencyId: c.id, PackId: c.pack.id, State: c.state, Since: c.since, Until: c.due,
		UserId: c.user, UserIp: c.userIP, RunMode: c.runMode, ApplicationParameters: c.appParams,
		Destroyed: c.destroyed,
	}
	if c.project != nil {
		out.ProjectId = c.project.id
	}
	if c.push != nil {
		p := *c.push
		out.Push = &p
	}
	return out
}

func stopping(user string) *apiserver.Error {
	return apiserver.Errorf(car.CodeStopping, "the session of UserId %q is being destroyed; retry when its cleanup has ended", clip(user))
}

func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clip shortens user input quoted in an error message.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// concHeap orders concurrencies by deadline, then by when it was set.
type concHeap = deadline.Heap[*conc, byDue]

type byDue struct{}

func (byDue) Less(a, b *conc) bool { return deadline.Before(a.due, a.seq, b.due, b.seq) }
func (byDue) Index(c *conc) *int   { return &c.index }
