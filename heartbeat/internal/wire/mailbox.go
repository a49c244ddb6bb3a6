package wire

import "sync"

// Mailbox queues the callbacks of one session. They run one at a time, in
// order, on a goroutine that is started when the first call is posted and
// exits as soon as the queue is empty, so an idle session costs no goroutine
// and a slow callback delays only its own session.
//
// A mailbox has no lock of its own: its owner guards it (the Server's mutex
// for server sessions, the Client's for a client) and passes that lock to
// Drain. Callbacks run with no lock held.
type Mailbox struct {
	queue   []func()
	running bool
	dropped bool
}

// Post queues fn and reports whether the caller must start a goroutine
// running Drain. Posting to a dropped mailbox does nothing.
func (m *Mailbox) Post(fn func()) (start bool) {
	if m.dropped {
		return false
	}
	m.queue = append(m.queue, fn)
	if m.running {
		return false
	}
	m.running = true
	return true
}

// Drop discards queued calls and refuses new ones. A call already running
// finishes.
func (m *Mailbox) Drop() {
	m.dropped = true
	clear(m.queue)
	m.queue = nil
}

// next pops the next call; ok is false when the draining goroutine must exit.
func (m *Mailbox) next() (fn func(), ok bool) {
	if len(m.queue) == 0 || m.dropped {
		m.running = false
		return nil, false
	}
	fn = m.queue[0]
	m.queue[0] = nil
	m.queue = m.queue[1:]
	if len(m.queue) == 0 {
		m.queue = nil // let the backing array go
	}
	return fn, true
}

// Drain runs m's calls until it is empty; mu is the lock guarding m.
func (m *Mailbox) Drain(mu sync.Locker) {
	for {
		mu.Lock()
		fn, ok := m.next()
		mu.Unlock()
		if !ok {
			return
		}
		fn()
	}
}

// Idle reports whether m has no call queued or running and no goroutine
// draining it, so that its owner may forget it.
func (m *Mailbox) Idle() bool { return !m.running && len(m.queue) == 0 }
