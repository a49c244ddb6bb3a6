package heartbeat

import (
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/internal/deadline"
)

// The scheduler serves every deadline of a Server with one min-heap, one
// time.Timer and one goroutine. Each connection and each session owns at most
// one heap entry: the earliest of its own deadlines.
//
//	connection: hello due (awaiting hello), ping due, liveness (last frame +
//	            ping timeout), close handshake due (closing)
//	session:    next idle threshold, grace expiry (while disconnected)
//
// Deadlines are kept lazily: when a deadline moves later (a frame arrives,
// the user is active) nothing is touched; the entry fires at the old time,
// the owner recomputes, and re-arms. Only a deadline that moves earlier
// updates the heap. All of it is guarded by Server.mu. The goroutine starts
// when the heap gets its first entry and exits when the heap is empty.

// timerEntry is an owner's place in the heap.
type timerEntry struct {
	at    time.Duration // since Server.epoch
	index int           // in scheduler.heap; -1 when not scheduled
}

// timed is an owner of deadlines: a *conn or a *serverSession.
type timed interface {
	entry() *timerEntry
	// expire does the owner's due work at now and re-arms its entry with
	// Server.schedule if it has a later deadline. Called with Server.mu held
	// and the entry already removed from the heap.
	expire(now time.Duration, fx *effects)
}

// effects is work an expire wants done once Server.mu is released.
type effects struct {
	hardClose []*websocket.Conn
}

func (fx *effects) run() {
	for _, ws := range fx.hardClose {
		ws.Close()
	}
}

type scheduler struct {
	heap    timerHeap
	running bool
	wake    chan struct{} // capacity 1: "the earliest deadline moved earlier"
}

// schedule makes sure t wakes no later than at. Caller holds Server.mu.
func (s *Server) schedule(t timed, at time.Duration) {
	e := t.entry()
	switch {
	case e.index < 0:
		e.at = at
		s.sched.heap.Push(t)
	case at < e.at:
		e.at = at
		s.sched.heap.Fix(t)
	default:
		return
	}
	if e.index == 0 {
		if !s.sched.running {
			s.sched.running = true
			s.goLocked(s.runScheduler)
		} else {
			s.wakeScheduler()
		}
	}
}

// unschedule removes t from the heap. Caller holds Server.mu.
func (s *Server) unschedule(t timed) {
	if s.sched.heap.Remove(t) {
		if len(s.sched.heap) == 0 {
			s.wakeScheduler() // so that it exits now rather than at the old deadline
		}
	}
}

func (s *Server) wakeScheduler() {
	select {
	case s.sched.wake <- struct{}{}:
	default:
	}
}

func (s *Server) runScheduler() {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var fx effects
		s.mu.Lock()
		now := s.now()
		for len(s.sched.heap) > 0 && s.sched.heap[0].entry().at <= now {
			s.sched.heap.Pop().expire(now, &fx)
		}
		if len(s.sched.heap) == 0 {
			s.sched.running = false
			s.mu.Unlock()
			fx.run()
			return
		}
		wait := s.sched.heap[0].entry().at - now
		s.mu.Unlock()
		fx.run()

		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-s.sched.wake:
		}
	}
}

// timerHeap orders the owners by deadline; equal deadlines in no order
// beyond the heap's own.
type timerHeap = deadline.Heap[timed, byDeadline]

type byDeadline struct{}

func (byDeadline) Less(a, b timed) bool { return a.entry().at < b.entry().at }
func (byDeadline) Index(t timed) *int   { return &t.entry().index }
