package scftest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/scf"
)

// Handler is a function's code in a test. It runs once per execution, and
// must return when ctx ends: ctx is cancelled when the execution is
// aborted (its timeout, an out-of-memory on its instance) or the server
// closes. The outcome is fixed when ctx is cancelled, but a synchronous
// call (Invoke, InvokeFunction, an HTTP function's request) runs its
// handler on the goroutine that serves the request, so its answer leaves
// when the handler returns; an asynchronous event's handler runs on a
// goroutine of its own. The result becomes Result.RetMsg; an
// error fails the execution: a *Failure with its status code, anything
// else 430 (a user code exception). A panic is 439 (the user process
// exited), which recycles the instance.
type Handler func(ctx context.Context, inv *Invocation) (result string, err error)

// Invocation is one execution of a function, as its handler sees it.
type Invocation struct {
	FunctionName string
	Namespace    string
	// Qualifier is the version that runs: "$LATEST" or "1", "2"… (an
	// alias has been resolved).
	Qualifier string
	// RequestID is the FunctionRequestId; for an HTTP function it is also
	// the request's X-Scf-Request-Id header.
	RequestID string
	// Event is the event JSON (an HTTP function: the request body).
	Event string
	// Async is set for an asynchronous event; Attempt counts its retries
	// (0 for the first run).
	Async   bool
	Attempt int
	// InstanceID names the instance that runs the execution.
	InstanceID string
	// MemorySizeMB is the function's memory; the requests in flight on
	// one instance reporting more between them is an out-of-memory (434).
	MemorySizeMB int64
	// Deadline is when the execution times out (model time).
	Deadline time.Time
	// Header, Method and Path describe the HTTP request of an HTTP
	// function; nil and empty otherwise. The header carries
	// X-Scf-Request-Id (= RequestID), whatever MaxConcurrency.
	Header       http.Header
	Method, Path string

	ex  *execution
	srv *Server // set by Server.run, before the handler runs
}

// ReportMemory records the memory the execution uses now, in bytes. The
// requests in flight on one instance share its memory: when what they
// use adds up to more than the function's MemorySize, the instance runs
// out of memory, is recycled, and every request in flight on it fails
// with 434 (ctx of each ends).
func (inv *Invocation) ReportMemory(bytes int64) {
	inv.srv.mu.Lock()
	defer inv.srv.mu.Unlock()
	inv.srv.model.reportMemory(inv.ex, bytes)
}

// reportMemory records an execution's memory, and runs its instance out
// of memory when what the requests on it report adds up to more than it
// has.
func (m *model) reportMemory(ex *execution, bytes int64) {
	if ex.finished {
		return
	}
	ex.memNow, ex.memPeak = bytes, max(ex.memPeak, bytes)
	inst := ex.inst
	var sum int64
	for _, other := range inst.execs {
		sum += other.memNow
	}
	if limit := inst.memMB << 20; sum > limit {
		msg := fmt.Sprintf("Memory limit exceeded: the function used %d MB of its %d MB", mbUp(bytes), inst.memMB)
		if len(inst.execs) > 1 {
			msg = fmt.Sprintf("Memory limit exceeded: the %d requests in flight on instance %s used %d MB of its %d MB",
				len(inst.execs), inst.id, mbUp(sum), inst.memMB)
		}
		m.finish(ex, outcome{status: scf.StatusMemoryLimitReached, message: msg})
	}
}

func mbUp(bytes int64) int64 { return (bytes + 1<<20 - 1) >> 20 }

// Logf appends a line to the execution's log (returned with LogType Tail,
// the last 4 KB).
func (inv *Invocation) Logf(format string, args ...any) {
	ex := inv.ex
	inv.srv.mu.Lock()
	defer inv.srv.mu.Unlock()
	if ex.log.Len() < 64<<10 {
		fmt.Fprintf(&ex.log, format, args...)
		ex.log.WriteByte('\n')
	}
}

// Sleep waits d of model time, or until ctx ends (then it returns
// ctx.Err()). Use it to model a function's run time.
func (inv *Invocation) Sleep(ctx context.Context, d time.Duration) error {
	return inv.srv.clock.Sleep(ctx, d)
}

// Now returns the model time.
func (inv *Invocation) Now() time.Time { return inv.srv.clock.Now() }

// Failure is an error a Handler returns to fail with a status code, e.g.
// scf.StatusMemoryLimitReached (recycles the instance and aborts every
// request on it), scf.StatusTimeLimitReached (this request only),
// scf.StatusUserProcessExit (recycles the instance) or
// scf.StatusInternalError (a system error: asynchronous events are
// retried with backoff).
type Failure struct {
	Status  int
	Message string
}

func (f *Failure) Error() string {
	return strconv.Itoa(f.Status) + " " + scf.StatusName(f.Status) + ": " + f.Message
}

// Fail returns a *Failure.
func Fail(status int, message string) error { return &Failure{Status: status, Message: message} }

// Behavior is a declarative function: what every execution does. It suits
// the standalone server, where no Go code can be attached; there the
// function's environment variables SCFTEST_DURATION (a Go duration),
// SCFTEST_MEMORY (bytes), SCFTEST_RESULT, SCFTEST_FAIL_STATUS and
// SCFTEST_FAIL_MESSAGE set it per version.
type Behavior struct {
	// Duration is the model time one execution takes.
	Duration time.Duration
	// MemoryBytes is the memory reported at the start; above the
	// function's MemorySize it is an out-of-memory (434).
	MemoryBytes int64
	// Result is the return value.
	Result string
	// FailStatus, if set, fails the execution with this status (400–599)
	// after Duration, with FailMessage.
	FailStatus  int
	FailMessage string
}

// The environment variables of a declarative behaviour.
const (
	EnvDuration    = "SCFTEST_DURATION"
	EnvMemory      = "SCFTEST_MEMORY"
	EnvResult      = "SCFTEST_RESULT"
	EnvFailStatus  = "SCFTEST_FAIL_STATUS"
	EnvFailMessage = "SCFTEST_FAIL_MESSAGE"
	// EnvColdStart (a Go duration, "0s" for none) is the version's cold
	// start, as FunctionConfig.ColdStart.
	EnvColdStart = "SCFTEST_COLD_START"
)

// coldStartOf is what a new instance of v takes before its first request.
func (m *model) coldStartOf(v *version) time.Duration {
	if v.cfg.coldStartSet {
		return v.cfg.coldStart
	}
	return m.coldStart
}

// coldStartFromEnv reads SCFTEST_COLD_START.
func coldStartFromEnv(vars []keyValue) (d time.Duration, set bool, e *apiserver.Error) {
	for _, v := range vars {
		if v.Key != EnvColdStart {
			continue
		}
		d, err := time.ParseDuration(v.Value)
		if err != nil || d < 0 {
			return 0, false, apiserver.Errorf(scf.CodeInvalidValue, "the environment variable %s=%q must be a duration of 0 or more", v.Key, v.Value)
		}
		return d, true, nil
	}
	return 0, false, nil
}

// Handler returns the behaviour as a Handler.
func (b Behavior) Handler() Handler {
	return func(ctx context.Context, inv *Invocation) (string, error) {
		if b.MemoryBytes > 0 {
			inv.ReportMemory(b.MemoryBytes)
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
		}
		if err := inv.Sleep(ctx, b.Duration); err != nil {
			return "", err
		}
		if b.FailStatus != 0 {
			return "", Fail(b.FailStatus, b.FailMessage)
		}
		return b.Result, nil
	}
}

func (b Behavior) check() error {
	switch {
	case b.Duration < 0:
		return errors.New("Behavior.Duration must not be negative")
	case b.MemoryBytes < 0:
		return errors.New("Behavior.MemoryBytes must not be negative")
	case b.FailStatus != 0 && (b.FailStatus < 400 || b.FailStatus > 599):
		return fmt.Errorf("Behavior.FailStatus %d must be 0 or a status code 400–599", b.FailStatus)
	}
	return nil
}

// behaviorFromEnv reads the SCFTEST_* variables; nil when there are none.
func behaviorFromEnv(vars []keyValue) (*Behavior, *apiserver.Error) {
	var b Behavior
	found := false
	for _, v := range vars {
		var err error
		switch v.Key {
		case EnvDuration:
			b.Duration, err = time.ParseDuration(v.Value)
		case EnvMemory:
			b.MemoryBytes, err = strconv.ParseInt(v.Value, 10, 64)
		case EnvResult:
			b.Result = v.Value
		case EnvFailStatus:
			b.FailStatus, err = strconv.Atoi(v.Value)
		case EnvFailMessage:
			b.FailMessage = v.Value
		default:
			continue
		}
		found = true
		if err != nil {
			return nil, apiserver.Errorf(scf.CodeInvalidValue, "the environment variable %s=%q is not valid: %v", v.Key, v.Value, err)
		}
	}
	if !found {
		return nil, nil
	}
	if err := b.check(); err != nil {
		return nil, apiserver.Errorf(scf.CodeInvalidValue, "the SCFTEST_* environment variables: %v", err)
	}
	return &b, nil
}

// echo is the handler of a function with neither a Go handler nor a
// declarative behaviour: it returns its event.
func echo(_ context.Context, inv *Invocation) (string, error) {
	if inv.Event == "" {
		return "null", nil
	}
	return inv.Event, nil
}

// outcome is how an execution ended.
type outcome struct {
	status  int // scf.StatusSuccess or a failure code
	result  string
	message string
}

// execution is one run of a function on an instance.
type execution struct {
	id      string
	fn      *function
	ver     *version
	inst    *instance
	inv     *Invocation // &invocation
	handler Handler
	cold    bool
	limit   time.Duration // the execution's time limit
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	rec     recordRef
	async   *asyncEvent

	// Guarded by Server.mu, as all of the model.
	finished   bool
	started    bool // startLocked has run
	out        outcome
	start, end time.Time
	memPeak    int64
	memNow     int64 // the last ReportMemory: what it holds of its instance's memory
	log        strings.Builder
	timer      *clock.Timer

	invocation Invocation // allocated with the execution
	answer     invokeOut  // a synchronous API call's answer (invokeSync)
}

// execParams describes an execution to start.
type execParams struct {
	id, event    string
	async        *asyncEvent
	header       http.Header
	method, path string
	limit        time.Duration // the time limit; 0: the version's Timeout
	maxLimit     time.Duration // a cap on it (synchronous API calls: 300 s); 0: none
	now          time.Time     // the model time it is placed at; zero: read then
}

var errClosed = errors.New("the server is closed")

// startCall starts a synchronous execution of fn (Invoke,
// InvokeFunction, an HTTP function's request) with the id p.id; the
// caller must call run. A request that cannot run is recorded, and comes
// back as a rejection.
func (m *model) startCall(fn *function, qualifier, routingKey string, p execParams) (*execution, *rejection) {
	if p.now.IsZero() {
		p.now = m.now()
	}
	ver := m.resolve(fn, qualifier, routingKey)
	var rej *rejection
	var inst *instance
	var cold bool
	if ver == nil {
		rej = &rejection{scf.StatusQualifierNotFound, fmt.Sprintf("Qualifier [%s] of function [%s] not found", qualifier, fn.name)}
	} else {
		inst, cold, rej = m.place(fn, ver)
	}
	if rej != nil {
		m.count(rej.status)
		if rec := m.newRecord(fn, p.id, p.now).live(); rec != nil {
			rec.retCode, rec.retMsg = scf.RetCodeFailed, errorBody(rej.status, rej.message, p.id)
		}
		m.record(Event{Kind: "invoke", Action: "rejected", Subject: fn.key() + ":" + qualifier,
			Code: statusCode(rej.status), Detail: p.id})
		return nil, rej
	}
	if p.limit == 0 {
		p.limit = time.Duration(ver.cfg.timeoutSec) * time.Second
	}
	if p.maxLimit > 0 {
		p.limit = min(p.limit, p.maxLimit)
	}
	ex, err := m.newExec(fn, ver, inst, cold, p)
	if err != nil {
		return nil, &rejection{scf.StatusInternalError, "the reference server is closing"}
	}
	ex.rec = m.newRecord(fn, p.id, p.now)
	return ex, nil
}

// newExec starts an execution of ver on inst (already chosen by place).
// The caller must call run.
func (m *model) newExec(fn *function, ver *version, inst *instance, cold bool, p execParams) (*execution, error) {
	if m.closed {
		return nil, errClosed
	}
	ctx, cancel := m.begin()
	ex := &execution{
		id: p.id, fn: fn, ver: ver, inst: inst, cold: cold, limit: p.limit,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), async: p.async,
	}
	ex.invocation = Invocation{
		FunctionName: fn.name, Namespace: fn.ns, Qualifier: ver.name, RequestID: p.id, Event: p.event,
		InstanceID: inst.id, MemorySizeMB: inst.memMB, Header: p.header, Method: p.method, Path: p.path, ex: ex,
	}
	ex.inv = &ex.invocation
	if p.async != nil {
		ex.inv.Async, ex.inv.Attempt = true, p.async.tries-1
	}
	switch {
	case fn.handler != nil:
		ex.handler = fn.handler
	case ver.cfg.behavior != nil:
		ex.handler = ver.cfg.behavior.Handler()
	default:
		ex.handler = echo
	}
	if p.now.IsZero() {
		p.now = m.now()
	}
	m.busy(inst, ex, p.now)
	m.counters.Invocations++
	return ex, nil
}

// run starts an asynchronous execution on a goroutine of its own.
func (s *Server) run(ex *execution) { go s.exec(ex) }

// exec runs an execution: the cold start, the time limit, the handler.
// finish, which closes ex.done, ends it: when the handler returns, or
// earlier when the time limit, an out-of-memory on its instance or Close
// aborts it (then ctx ends and the handler's own outcome is ignored). An
// execution that startLocked has started already (a synchronous call
// with no cold start to wait for) goes straight to its handler.
func (s *Server) exec(ex *execution) {
	defer s.wg.Done()
	if !ex.started { // set only on this goroutine (here, or by syncCall before)
		if d := s.model.coldStartOf(ex.ver); ex.cold && d > 0 {
			if s.clock.Sleep(ex.ctx, d) != nil {
				return // aborted while starting; whoever aborted set the outcome
			}
		}
		s.mu.Lock()
		if ex.finished {
			s.mu.Unlock()
			return
		}
		s.startLocked(ex, s.clock.Now())
		s.mu.Unlock()
	}
	result, err := callHandler(ex)
	s.finish(ex, outcomeOf(result, err))
}

// needsColdStart reports whether ex must wait for its instance's cold
// start before it runs.
func (s *Server) needsColdStart(ex *execution) bool {
	return ex.cold && s.model.coldStartOf(ex.ver) > 0
}

// startLocked starts ex's run at now (model time), with s.mu held: its
// start, its deadline and its time limit.
func (s *Server) startLocked(ex *execution, now time.Time) {
	ex.started = true
	ex.inv.srv = s
	ex.start = now
	ex.inv.Deadline = ex.start.Add(ex.limit)
	ex.timer = s.clock.AfterFunc(ex.limit, func() {
		s.finish(ex, outcome{status: scf.StatusTimeLimitReached,
			message: fmt.Sprintf("Invoking task timed out after %d seconds", int64(math.Ceil(ex.limit.Seconds())))})
	})
}

func callHandler(ex *execution) (result string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Failure{Status: scf.StatusUserProcessExit, Message: fmt.Sprintf("User process exited when running: panic: %v", r)}
		}
	}()
	return ex.handler(ex.ctx, ex.inv)
}

func outcomeOf(result string, err error) outcome {
	if err == nil {
		return outcome{status: scf.StatusSuccess, result: result}
	}
	var f *Failure
	if errors.As(err, &f) && f.Status >= 400 && f.Status <= 599 {
		return outcome{status: f.Status, message: f.Message}
	}
	return outcome{status: scf.StatusUserCodeException, message: err.Error()}
}

func (s *Server) finish(ex *execution, o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.model.finish(ex, o)
}

// finish ends an execution once; later outcomes are ignored. An
// out-of-memory or a process exit recycles the instance and aborts every
// other request on it; a timeout aborts only its own request (and
// recycles a single-request instance).
func (m *model) finish(ex *execution, o outcome) {
	if ex.finished {
		return
	}
	now := m.now()
	ex.finished, ex.out, ex.end = true, o, now
	if ex.timer != nil {
		ex.timer.Stop()
	}
	ex.cancel()
	inst := ex.inst
	m.detach(ex)
	switch o.status {
	case scf.StatusMemoryLimitReached, scf.StatusUserProcessExit:
		inst.dying = true
		for _, other := range append([]*execution(nil), inst.execs...) {
			m.finish(other, outcome{status: o.status,
				message: fmt.Sprintf("%s; instance %s was recycled by request %s", o.message, inst.id, ex.id)})
		}
		m.removeInstance(inst, scf.StatusName(o.status)+" in "+ex.id, true)
	case scf.StatusTimeLimitReached:
		if inst.maxConc <= 1 {
			m.removeInstance(inst, "timed out in "+ex.id, true)
		}
	}
	m.idleAt(inst, now)
	m.count(o.status)
	if rec := ex.rec.live(); rec != nil {
		rec.update(ex)
	}
	m.record(Event{Time: now, Kind: "invoke", Action: "execution", Subject: ex.ver.key,
		Code: statusCode(o.status), Resource: inst.id, Detail: ex.id})
	close(ex.done)
	if ex.async != nil {
		m.asyncDone(ex)
	}
	m.dispatch(ex.fn)
}

func statusCode(status int) string {
	if status == scf.StatusSuccess {
		return ""
	}
	return strconv.Itoa(status) + " " + scf.StatusName(status)
}

func (m *model) count(status int) {
	switch status {
	case scf.StatusSuccess: // ByStatus[200] is Succeeded, filled in by Counters
		m.counters.Succeeded++
	case scf.StatusResourceLimit:
		m.counters.Throttled429++
		m.counters.Failed++
	case scf.StatusResourceLimitReached:
		m.counters.Throttled432++
		m.counters.Failed++
	default:
		m.counters.Failed++
	}
	if status != scf.StatusSuccess {
		m.counters.ByStatus[status]++
	}
}

// summary is what an execution reports when it has finished: its run
// time (ms, to the µs) and billed time (whole ms, at least 1) when it
// started, and its result or its error body.
func (ex *execution) summary() (duration float64, billed int64, result, errMsg string) {
	if !ex.start.IsZero() {
		d := ex.end.Sub(ex.start)
		duration = math.Round(float64(d)/1e3) / 1e3
		billed = max(int64(math.Ceil(float64(d)/float64(time.Millisecond))), 1)
	}
	if ex.out.status == scf.StatusSuccess {
		return duration, billed, ex.out.result, ""
	}
	return duration, billed, "", errorBody(ex.out.status, ex.out.message, ex.id)
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[len(s)-n:], "")
}

// errorBody is the JSON a failed execution reports, in ErrMsg (and in
// GetRequestStatus's RetMsg, and as the body of an HTTP function's
// failed response): {"errorCode":…,"errorMessage":…,"requestId":…,
// "statusCode":…}. errorCode is -1 for a timeout and 1 otherwise, as in
// the bodies users report.
func errorBody(status int, message, requestID string) string {
	code := 1
	if status == scf.StatusTimeLimitReached {
		code = -1
	}
	b, _ := json.Marshal(map[string]any{
		"errorCode": code, "errorMessage": message, "requestId": requestID, "statusCode": status,
	})
	return string(b)
}
