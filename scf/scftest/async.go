package scftest

import (
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// asyncEvent is an event in a function's asynchronous queue.
type asyncEvent struct {
	id          string
	qualifier   string
	routingKey  string
	payload     string
	enqueued    time.Time
	tries       int // attempts made, rejected ones (overruns) included
	execRetries int
	sysRetries  int
	rec         recordRef
}

// enqueue accepts an asynchronous event.
func (m *model) enqueue(fn *function, ev *asyncEvent) *apiserver.Error {
	if len(fn.queue) >= m.queueLimit {
		return apiserver.Errorf(scf.CodeInvokeFailed, "the asynchronous queue of function [%s] is full (%d events)", fn.name, m.queueLimit)
	}
	ev.enqueued = m.now()
	ev.rec = m.newRecord(fn, ev.id, ev.enqueued)
	fn.queue = append(fn.queue, ev)
	m.counters.AsyncQueued++
	m.record(Event{Kind: "async", Action: "queued", Subject: fn.key(), Detail: ev.id})
	m.dispatch(fn)
	return nil
}

// dispatch runs queued events, oldest first, while instances can be
// had. The queue is consumed at the pace of the function's limits: when
// no instance can be had while the function has executions in flight, the
// head event waits for one of them to end (dispatch runs again at
// every end); that is no overrun. When none is in flight, so that nothing
// of its own will free the quota (reserved 0, a pool others hold) or a
// warm instance (the burst), the event meets the overrun (429, 432): the
// queue pauses and retries it a minute later, until its MsgTTL passes.
func (m *model) dispatch(fn *function) {
	for !fn.paused && !fn.deleted && !m.closed && len(fn.queue) > 0 {
		ev := fn.queue[0]
		if m.now().Sub(ev.enqueued) >= fn.msgTTL {
			fn.queue = fn.queue[1:]
			m.drop(fn, ev, "MsgTTL expired")
			continue
		}
		ver := m.resolve(fn, ev.qualifier, ev.routingKey)
		if ver == nil {
			fn.queue = fn.queue[1:]
			if r := ev.rec.live(); r != nil {
				r.retMsg = errorBody(scf.StatusQualifierNotFound, "Qualifier ["+ev.qualifier+"] of function ["+fn.name+"] not found", ev.id)
			}
			m.count(scf.StatusQualifierNotFound)
			m.drop(fn, ev, "qualifier not found")
			continue
		}
		inst, cold, rej := m.place(fn, ver)
		if rej != nil && fn.inFlight() > 0 {
			return // an end of one of them calls dispatch
		}
		if rej != nil {
			m.count(rej.status)
			if r := ev.rec.live(); r != nil {
				r.retMsg = errorBody(rej.status, rej.message, ev.id)
			}
			m.attempt(ev)
			fn.paused = true
			m.record(Event{Kind: "async", Action: "overrun", Subject: fn.key(), Code: statusCode(rej.status),
				Detail: ev.id + ": the queue retries in 1m"})
			m.after(time.Minute, func() {
				fn.paused = false
				m.dispatch(fn)
			})
			return
		}
		fn.queue = fn.queue[1:]
		m.attempt(ev)
		ex, err := m.newExec(fn, ver, inst, cold, execParams{
			id: ev.id, event: ev.payload, async: ev, limit: time.Duration(ver.cfg.timeoutSec) * time.Second,
		})
		if err != nil {
			return
		}
		ex.rec = ev.rec
		m.run(ex)
	}
}

// inFlight counts the function's executions running.
func (f *function) inFlight() int {
	n := 0
	for _, inst := range f.instances {
		n += len(inst.execs)
	}
	return n
}

// asyncDone applies the retry policy to a finished asynchronous
// execution: execution errors are retried RetryNum times (default 2), one
// minute apart, then dropped; system errors with exponential backoff up
// to 5 minutes, and overruns every minute, until MsgTTL (default 6 h);
// request errors are dropped at once.
func (m *model) asyncDone(ex *execution) {
	ev, fn, status := ex.async, ex.fn, ex.out.status
	if status == scf.StatusSuccess {
		return
	}
	age := m.now().Sub(ev.enqueued)
	switch scf.ClassOf(status) {
	case scf.ClassExecution:
		if ev.execRetries < fn.retryNum {
			ev.execRetries++
			m.retryLater(fn, ev, time.Minute, "execution error")
			return
		}
		m.drop(fn, ev, "execution error: retries exhausted")
	case scf.ClassSystem:
		d := min(time.Second<<min(ev.sysRetries, 9), 5*time.Minute)
		ev.sysRetries++
		if age+d >= fn.msgTTL {
			m.drop(fn, ev, "system error: MsgTTL reached")
			return
		}
		m.retryLater(fn, ev, d, "system error")
	case scf.ClassOverrun:
		if age+time.Minute >= fn.msgTTL {
			m.drop(fn, ev, "overrun: MsgTTL reached")
			return
		}
		m.retryLater(fn, ev, time.Minute, "overrun")
	default:
		m.drop(fn, ev, "request error")
	}
}

// attempt counts an attempt of an event; every one after the first
// is a retry.
func (m *model) attempt(ev *asyncEvent) {
	ev.tries++
	if ev.tries > 1 {
		m.counters.AsyncRetries++
	}
	if r := ev.rec.live(); r != nil {
		r.retryNum = int64(ev.tries - 1)
	}
}

func (m *model) retryLater(fn *function, ev *asyncEvent, d time.Duration, why string) {
	if r := ev.rec.live(); r != nil {
		r.retCode = scf.RetCodeRunning
	}
	m.record(Event{Kind: "async", Action: "retry", Subject: fn.key(), Detail: ev.id + ": " + why + ", again in " + d.String()})
	m.after(d, func() {
		if fn.deleted || m.closed {
			return
		}
		fn.queue = append(fn.queue, ev)
		m.dispatch(fn)
	})
}

func (m *model) drop(fn *function, ev *asyncEvent, why string) {
	if r := ev.rec.live(); r != nil {
		r.retCode = scf.RetCodeFailed
	}
	m.counters.AsyncDropped++
	m.record(Event{Kind: "async", Action: "drop", Subject: fn.key(), Detail: ev.id + ": " + why})
}
