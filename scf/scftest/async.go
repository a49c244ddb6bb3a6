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
	rec         *requestRecord
}

// requestRecord is what GetRequestStatus reports about an execution.
type requestRecord struct {
	id, fnKey, fnName string
	start             time.Time
	retCode           int64
	duration          float64
	memMB             float64
	retryNum          int64
	retMsg            string
}

func (r *requestRecord) update(ex *execution, _ time.Time) {
	res := ex.resultLocked(false)
	r.duration, r.memMB = res.Duration, float64(ex.memPeak)/(1<<20)
	if ex.out.status == scf.StatusSuccess {
		r.retCode, r.retMsg = scf.RetCodeSucceeded, res.RetMsg
	} else {
		r.retCode, r.retMsg = scf.RetCodeFailed, res.ErrMsg
	}
}

// newRecordLocked keeps a record, forgetting the oldest beyond the limit.
func (s *Server) newRecordLocked(fn *function, id string) *requestRecord {
	r := &requestRecord{id: id, fnKey: fn.key(), fnName: fn.name, start: s.clock.Now(), retCode: scf.RetCodeRunning}
	s.records[id] = r
	s.recordOrder = append(s.recordOrder, id)
	if len(s.recordOrder) > s.cfg.maxRecords {
		delete(s.records, s.recordOrder[0])
		s.recordOrder = s.recordOrder[1:]
	}
	return r
}

// enqueueLocked accepts an asynchronous event.
func (s *Server) enqueueLocked(fn *function, ev *asyncEvent) *apiserver.Error {
	if len(fn.queue) >= s.cfg.queueLimit {
		return apiserver.Errorf(scf.CodeInvokeFailed, "the asynchronous queue of function [%s] is full (%d events)", fn.name, s.cfg.queueLimit)
	}
	ev.enqueued = s.clock.Now()
	ev.rec = s.newRecordLocked(fn, ev.id)
	fn.queue = append(fn.queue, ev)
	s.counters.AsyncQueued++
	s.api.Record(apiserver.Event{Kind: "async", Action: "queued", Subject: fn.key(), Detail: ev.id})
	s.dispatchLocked(fn)
	return nil
}

// dispatchLocked runs queued events, oldest first, while instances can be
// had. The queue is consumed at the pace of the function's limits: when
// no instance can be had while the function has executions in flight, the
// head event waits for one of them to end (dispatchLocked runs again at
// every end); that is no overrun. When none is in flight, so that nothing
// of its own will free the quota (reserved 0, a pool others hold) or a
// warm instance (the burst), the event meets the overrun (429, 432): the
// queue pauses and retries it a minute later, until its MsgTTL passes.
func (s *Server) dispatchLocked(fn *function) {
	for !fn.paused && !fn.deleted && !s.closed && len(fn.queue) > 0 {
		ev := fn.queue[0]
		if s.clock.Now().Sub(ev.enqueued) >= fn.msgTTL {
			fn.queue = fn.queue[1:]
			s.dropLocked(fn, ev, "MsgTTL expired")
			continue
		}
		ver := s.resolveLocked(fn, ev.qualifier, ev.routingKey)
		if ver == nil {
			fn.queue = fn.queue[1:]
			ev.rec.retMsg = errorBody(scf.StatusQualifierNotFound, "Qualifier ["+ev.qualifier+"] of function ["+fn.name+"] not found", ev.id)
			s.countLocked(scf.StatusQualifierNotFound)
			s.dropLocked(fn, ev, "qualifier not found")
			continue
		}
		inst, cold, rej := s.placeLocked(fn, ver)
		if rej != nil && fn.inFlight() > 0 {
			return // an end of one of them calls dispatchLocked
		}
		if rej != nil {
			s.countLocked(rej.status)
			ev.rec.retMsg = errorBody(rej.status, rej.message, ev.id)
			s.attemptLocked(ev)
			fn.paused = true
			s.api.Record(apiserver.Event{Kind: "async", Action: "overrun", Subject: fn.key(), Code: statusCode(rej.status),
				Detail: ev.id + ": the queue retries in 1m"})
			s.clock.AfterFunc(time.Minute, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				fn.paused = false
				s.dispatchLocked(fn)
			})
			return
		}
		fn.queue = fn.queue[1:]
		s.attemptLocked(ev)
		ex, err := s.newExecLocked(fn, ver, inst, cold, execParams{
			id: ev.id, event: ev.payload, async: ev, limit: time.Duration(ver.cfg.timeoutSec) * time.Second,
		})
		if err != nil {
			return
		}
		ex.rec = ev.rec
		s.run(ex)
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

// asyncDoneLocked applies the retry policy to a finished asynchronous
// execution: execution errors are retried RetryNum times (default 2), one
// minute apart, then dropped; system errors with exponential backoff up
// to 5 minutes, and overruns every minute, until MsgTTL (default 6 h);
// request errors are dropped at once.
func (s *Server) asyncDoneLocked(ex *execution) {
	ev, fn, status := ex.async, ex.fn, ex.out.status
	if status == scf.StatusSuccess {
		return
	}
	age := s.clock.Now().Sub(ev.enqueued)
	switch scf.ClassOf(status) {
	case scf.ClassExecution:
		if ev.execRetries < fn.retryNum {
			ev.execRetries++
			s.retryLaterLocked(fn, ev, time.Minute, "execution error")
			return
		}
		s.dropLocked(fn, ev, "execution error: retries exhausted")
	case scf.ClassSystem:
		d := min(time.Second<<min(ev.sysRetries, 9), 5*time.Minute)
		ev.sysRetries++
		if age+d >= fn.msgTTL {
			s.dropLocked(fn, ev, "system error: MsgTTL reached")
			return
		}
		s.retryLaterLocked(fn, ev, d, "system error")
	case scf.ClassOverrun:
		if age+time.Minute >= fn.msgTTL {
			s.dropLocked(fn, ev, "overrun: MsgTTL reached")
			return
		}
		s.retryLaterLocked(fn, ev, time.Minute, "overrun")
	default:
		s.dropLocked(fn, ev, "request error")
	}
}

// attemptLocked counts an attempt of an event; every one after the first
// is a retry.
func (s *Server) attemptLocked(ev *asyncEvent) {
	ev.tries++
	if ev.tries > 1 {
		s.counters.AsyncRetries++
	}
	ev.rec.retryNum = int64(ev.tries - 1)
}

func (s *Server) retryLaterLocked(fn *function, ev *asyncEvent, d time.Duration, why string) {
	ev.rec.retCode = scf.RetCodeRunning
	s.api.Record(apiserver.Event{Kind: "async", Action: "retry", Subject: fn.key(), Detail: ev.id + ": " + why + ", again in " + d.String()})
	s.clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if fn.deleted || s.closed {
			return
		}
		fn.queue = append(fn.queue, ev)
		s.dispatchLocked(fn)
	})
}

func (s *Server) dropLocked(fn *function, ev *asyncEvent, why string) {
	ev.rec.retCode = scf.RetCodeFailed
	s.counters.AsyncDropped++
	s.api.Record(apiserver.Event{Kind: "async", Action: "drop", Subject: fn.key(), Detail: ev.id + ": " + why})
}
