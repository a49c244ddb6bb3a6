// Package apiserver is the frame the reference servers (car/cartest,
// scf/scftest) share: it speaks Tencent Cloud API 3.0 the way the real
// endpoints do, so the official SDKs and ours cannot tell the difference.
//
// For every request, in this order:
//
//  1. only POST is modelled (UnsupportedProtocol for GET and the v1
//     signature); a Content-Length over 10 MB is refused before anything
//     is read (RequestSizeLimitExceeded);
//  2. X-TC-Action must be present (MissingParameter);
//  3. everything about the signature that needs no body is checked
//     (tc3.Verifier.Authenticate): the Authorization header, with at most
//     32 SignedHeaders in 1 KB, none twice, each of a header the request
//     carries (AuthFailure.InvalidAuthorization); the timestamp within
//     300 s of the host clock either way, in whole seconds (301 s is
//     AuthFailure.SignatureExpire), the host clock being the one the
//     client signs with, whatever the model clock says; the SecretId, the
//     token and the scope date;
//  4. only then is the body read (at most 10 MB; see the body budget
//     below) and the signature checked over it, the canonical request
//     hashed as a stream (AuthFailure.SignatureFailure);
//  5. the credential scope must name this service, X-TC-Version must be
//     this version (NoSuchVersion), the action must exist (InvalidAction);
//  6. the action's rate limit applies (RequestLimitExceeded), per second of
//     host time;
//  7. an injected fault, if one is queued for the action, replaces or
//     delays the answer;
//  8. the handler runs and its answer is wrapped in the envelope with a
//     fresh RequestId. Errors are HTTP 200 error envelopes, as on the real
//     service. [Request.Decode] refuses JSON that is not strict: invalid
//     UTF-8, a lone surrogate escape, or a key twice in one object at any
//     depth (InvalidParameter.JsonParseError).
//
// Every call is written to the event log with the model time. The log is
// a ring of fixed capacity (Config.MaxEvents, 100,000 by default) made of
// blocks of 1,024 events allocated as it first fills them: a small test
// server holds one block (about 80 KB), a busy one holds its capacity,
// and recording never grows or copies it. An event is kept without a
// pointer (its strings interned, request ids as their 16 bytes), so the
// log costs the garbage collector nothing to scan; the times it gives
// back carry no monotonic clock reading.
//
// # Limits
//
// One client must not be able to take a reference server down, so every
// resource a request can hold is bounded ([Limits]; [DefaultLimits]):
//
//   - the verifier's work: SignedHeaders capped as above, so a request
//     costs at most four hashes of its own headers, and headers are capped
//     at 64 KB (431 beyond);
//   - body memory: a body of at most 16 KB ([SmallBody]) is read at once,
//     bounded by the connection cap; a larger one first takes its
//     Content-Length (10 MB when it has none) from a budget of 64 MB,
//     waiting in arrival order for at most 10 s, after which it is
//     refused unread with RequestLimitExceeded (which the SDKs retry).
//     Its buffer is reused by the next large body. Body memory stays
//     under 64 MB + 4,096 × 16 KB;
//   - time: 10 s to read the headers, 1 min to read a whole request, 5 min
//     to answer (an injected latency extends it by its own length), 1 min
//     for an idle keep-alive connection;
//   - connections: at most 4,096 open at once, each counted until it
//     closes, hijacked ones (the CAR client stream) included. At the cap
//     the connection idle the longest (between requests, or before its
//     first) is closed to make room for the new one; if none is idle, the
//     new one waits (unread) until one closes. Timeouts do not apply to a
//     hijacked connection: net/http clears its deadlines.
//
// [Limits.HTTPServer] and [Limits.Listener] build the http.Server and
// the listener; cartest, scftest and examples/refserver serve on them.
//
// # The shell
//
// [Host] is the one shell of the reference servers: cartest.Server and
// scftest.Server each hold one and add their model. It holds the API
// frame (a [Server]: credentials, rate limits, faults, the event log), the
// model clock, the listener and http.Server, one client transport, and a
// context that ends when Close begins. [HostConfig] is what the servers'
// shared options set (listener, logger, limits, manual clock,
// credentials, rate limits); each option calls one of its methods, so its
// rule and its error message are written once. Without a credential the
// Host makes a random pair, new for every server.
//
// The service around a Host serves the requests: its ServeHTTP calls
// [Host.Enter] and [Host.Leave] around each, and hands API calls to the
// frame. [Host.Close] takes the service's stop and drain steps and runs
// them in the one order both servers close in (stop, no more requests and
// the context ended, the http.Server closed, drain, the requests in
// progress waited for, the transport's connections closed, the clock
// stopped). [StartService] and [StartTest] are the bodies of the servers'
// NewServer and Start(tb). [Fault] and [Event] are declared here once;
// scftest re-exports both and cartest Fault, while cartest shows the log
// as its own Event with CAR's names.
package apiserver

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/internal/tc3"
)

// MaxRequestBytes is the documented size limit of a TC3 POST.
const MaxRequestBytes = 10 << 20

// Error is an API error a handler returns: it becomes the envelope's Error.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Request is what a handler receives.
type Request struct {
	Action    string
	RequestId string //nolint:revive // the API's spelling
	Region    string
	SecretId  string //nolint:revive
	// Body is the request body. It is valid until the handler returns: a
	// large body's buffer is then reused, so keep a copy, not Body.
	Body []byte
	HTTP *http.Request
	// Latency is an injected delay the handler applies itself, with
	// [Request.Delay], when its Action has HandlesLatency set.
	Latency time.Duration

	closing <-chan struct{} // Config.Closing
	names   *fieldCache     // the server's
}

// Delay waits out the request's injected latency (host time). It reports
// false when the wait was cut short: ctx ended or the server is closing.
func (r *Request) Delay(ctx context.Context) bool {
	if r.Latency <= 0 {
		return true
	}
	t := time.NewTimer(r.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-r.closing:
	}
	return false
}

// Handler answers one action: a value marshalled into the Response object,
// or an error (an *Error keeps its code; anything else is InternalError).
type Handler func(ctx context.Context, req *Request) (any, error)

// Action describes one API action.
type Action struct {
	Name string
	// RatePerSecond is the documented limit; 0 means unlimited.
	RatePerSecond int
	Handle        Handler
	// HandlesLatency makes the handler apply injected latency itself (see
	// Request.Delay), e.g. inside a per-user critical section, so that
	// overlapping calls can be observed.
	HandlesLatency bool
}

// Fault replaces or delays the answer to the next Times calls of an action.
type Fault struct {
	// Latency delays the answer (host time; it ends early if the client
	// goes away).
	Latency time.Duration
	// Code, when set, is returned as an API error instead of calling the
	// handler, with Message and, if set, HTTPStatus (default 200).
	Code       string
	Message    string
	HTTPStatus int
	// Drop closes the connection without an answer, after Latency.
	Drop bool
	// DropAnswer carries the action out, then closes the connection
	// without an answer: a response lost after the server acted.
	DropAnswer bool
	// Times is how many calls the fault applies to; 0 means 1.
	Times int
}

// EventKind names an entry of the event log: [EventCall] for an API call;
// each service adds the kinds of its model (cartest.EventLocked…, and
// scftest's "instance", "invoke", "async", "provisioned", "config").
type EventKind string

// EventCall is the kind of an API call's entry.
const EventCall EventKind = "call"

// Event is one entry of the event log of a reference server: an API call,
// or a change in the service's model. It is the one event type of both
// reference servers (cartest.Event and scftest.Event are this type).
type Event struct {
	// Time is the model time.
	Time time.Time
	Kind EventKind
	// Action and RequestId name the call, or for a model event the call
	// that caused it (empty when time or a client stream caused it). For
	// some of scftest's model events Action says what happened instead
	// ("start", "stop", "queued"…).
	Action    string
	RequestId string //nolint:revive // the API's spelling
	// Code is the error code a call answered, "" on success, "(dropped)"
	// for a connection an injected fault dropped. For an SCF execution it
	// is the function's status.
	Code string
	// Subject is who or what a model event is about: in CAR the UserId of
	// the user, in SCF the function version
	// ("namespace/name:qualifier"). Empty for calls.
	Subject string
	// Resource is the unit of concurrency a model event is about: in CAR
	// the ConcurrencyId, in SCF the instance id.
	Resource string
	// Detail says more, in words.
	Detail string
}

// String formats the event on one line, e.g.
// "00:01:30.000 reconnect-wait-expired subject=u1 resource=pack-cartest1-1".
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Time.UTC().Format("15:04:05.000 "))
	b.WriteString(string(e.Kind))
	if e.Action != "" {
		b.WriteString(" " + e.Action)
	}
	if e.Code != "" {
		b.WriteString(" code=" + e.Code)
	}
	if e.Subject != "" {
		b.WriteString(" subject=" + e.Subject)
	}
	if e.Resource != "" {
		b.WriteString(" resource=" + e.Resource)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// DefaultMaxEvents is how many events the log keeps by default; older ones
// are dropped first.
const DefaultMaxEvents = 100_000

// Config describes a service.
type Config struct {
	Service string // "car"
	Version string // "2022-01-10"
	Clock   *clock.Clock
	Logger  *slog.Logger
	// MaxEvents is the capacity of the event log (default
	// DefaultMaxEvents): the oldest events are overwritten first. The log
	// is allocated in blocks of 1,024 events as it fills, so a server that
	// records little costs little.
	MaxEvents int
	// Limits bound request bodies (BodyBytesInFlight, BodyWait); the
	// rest of Limits is for the http.Server the service is served by.
	Limits Limits
	// Closing, when closed, cuts every injected delay short: the service
	// is shutting down. Nil means never.
	Closing <-chan struct{}
}

// Server is one service's API endpoint.
type Server struct {
	service, version string
	clock            *clock.Clock
	logger           *slog.Logger
	verifier         tc3.Verifier

	mu      sync.Mutex
	secrets map[string]tc3.Secret
	actions map[string]*action
	faults  map[string][]Fault
	events  eventRing
	closing <-chan struct{}
	names   fieldCache
	limits  Limits  // WithDefaults applied
	budget  *budget // nil when Limits.BodyBytesInFlight is off

	jsonType    []string  // the Content-Type of every answer; never written to
	smallBodies sync.Pool // *[]byte: buffers of small request bodies, reused once answered
	answers     sync.Pool // *answerBuffer
}

type action struct {
	Action
	window     int64 // host Unix second of the current window
	windowUsed int
}

// New returns a server with no actions and no credentials.
func New(cfg Config) *Server {
	s := &Server{
		service: cfg.Service, version: cfg.Version, clock: cfg.Clock, logger: cfg.Logger,
		secrets: make(map[string]tc3.Secret),
		actions: make(map[string]*action),
		faults:  make(map[string][]Fault),
		closing: cfg.Closing,
		limits:  cfg.Limits.WithDefaults(),

		jsonType: []string{"application/json"},
	}
	maxEv := cfg.MaxEvents
	if maxEv <= 0 {
		maxEv = DefaultMaxEvents
	}
	s.events = newEventRing(maxEv)
	if s.limits.BodyBytesInFlight > 0 {
		s.budget = &budget{size: max(s.limits.BodyBytesInFlight, MaxRequestBytes)}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.verifier.Lookup = func(id string) (tc3.Secret, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		sec, ok := s.secrets[id]
		return sec, ok
	}
	return s
}

// Register adds an action.
func (s *Server) Register(a Action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions[a.Name] = &action{Action: a}
}

// SetRateLimit changes an action's limit per second; 0 removes it.
func (s *Server) SetRateLimit(name string, perSecond int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.actions[name]
	if !ok {
		return fmt.Errorf("%s has no action %q", s.service, name)
	}
	if perSecond < 0 {
		return fmt.Errorf("rate limit of %s must not be negative", name)
	}
	a.RatePerSecond = perSecond
	return nil
}

// AddCredential lets a SecretId in; a non-empty token makes it a temporary
// credential that must send X-TC-Token.
func (s *Server) AddCredential(secretID, secretKey, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[secretID] = tc3.Secret{Key: secretKey, Token: token}
}

// InjectFault queues a fault for the next calls of an action.
func (s *Server) InjectFault(name string, f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.actions[name]; !ok {
		return fmt.Errorf("%s has no action %q", s.service, name)
	}
	if f.Times < 0 {
		return errors.New("Fault.Times must not be negative")
	}
	if f.Times == 0 {
		f.Times = 1
	}
	s.faults[name] = append(s.faults[name], f)
	return nil
}

// Record appends a service event to the log, stamped with the model time
// unless e.Time is set.
func (s *Server) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = s.clock.Now()
	}
	s.mu.Lock()
	s.events.add(e)
	s.mu.Unlock()
	if s.logger.Enabled(context.Background(), slog.LevelDebug) {
		s.logger.Debug("event", "kind", e.Kind, "action", e.Action, "code", e.Code, "subject", e.Subject, "resource", e.Resource, "detail", e.Detail)
	}
}

// Events returns a copy of the event log: the latest MaxEvents events.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events.appendTo(make([]Event, 0, s.events.len()))
}

// Clock returns the model clock.
func (s *Server) Clock() *clock.Clock { return s.clock }

// Service returns the service name.
func (s *Server) Service() string { return s.service }

// ServeHTTP answers API calls.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := NewRequestID()
	name := tc3.HeaderValue(r, "X-Tc-Action")
	result, apiErr := s.serve(w, r, name, requestID)
	if apiErr == errDropped {
		return
	}
	status := http.StatusOK
	code := ""
	out := s.answer()
	defer s.answers.Put(out)
	if apiErr != nil {
		var e *Error
		e, status = s.apiError(name, apiErr)
		code = e.Code
		out.b = append(out.b[:0], errorEnvelope(e, requestID)...)
	} else if err := out.envelope(result, requestID); err != nil {
		s.logger.Error("encoding a response", "action", name, "error", err)
		code = "InternalError"
		out.b = append(out.b[:0], errorEnvelope(&Error{Code: code, Message: "internal error"}, requestID)...)
	}
	s.Record(Event{Kind: "call", Action: name, RequestId: requestID, Code: code})
	body := out.b
	// The header values are set without Header.Set, which would make a
	// slice for each on every answer; net/http only reads them.
	h := w.Header()
	h["Content-Type"] = s.jsonType
	if status != http.StatusOK || len(body) > implicitLengthMax {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.WriteHeader(status)
	}
	// Otherwise net/http sends the same Content-Length: an answer of 200
	// whose body fits its buffer, written before the handler returns, is
	// sent whole with its length (TestAnswerHasContentLength).
	w.Write(body)
}

// implicitLengthMax is the largest body net/http buffers whole before it
// writes the header (its bufferBeforeChunkingSize), and so sends with a
// Content-Length it computes without allocating.
const implicitLengthMax = 2048

// apiError is the Error and HTTP status an error of serve is answered
// with.
func (s *Server) apiError(name string, apiErr error) (*Error, int) {
	status := http.StatusOK
	var f *faultError
	if errors.As(apiErr, &f) && f.status != 0 {
		status = f.status
	}
	var e *Error
	if !errors.As(apiErr, &e) {
		s.logger.Error("handler failed", "action", name, "error", apiErr)
		e = &Error{Code: "InternalError", Message: "internal error"}
	}
	return e, status
}

// answerBuffer is a response body being built; ServeHTTP reuses it once
// the body is written (net/http has copied it by then).
type answerBuffer struct{ b []byte }

// maxPooledAnswer is the largest answer buffer kept for reuse: a large
// function result is not held for ever.
const maxPooledAnswer = 64 << 10

func (s *Server) answer() *answerBuffer {
	if a, ok := s.answers.Get().(*answerBuffer); ok {
		if cap(a.b) <= maxPooledAnswer {
			a.b = a.b[:0]
			return a
		}
	}
	return &answerBuffer{b: make([]byte, 0, 512)}
}

// Write appends p: a json.Encoder writes into the buffer.
func (a *answerBuffer) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// envelope writes {"Response":{…,"RequestId":"…"}}, the result's fields
// encoded as json.Marshal encodes them, into a.b.
func (a *answerBuffer) envelope(result any, requestID string) error {
	a.b = append(a.b[:0], `{"Response":`...)
	if result == nil {
		a.b = append(a.b, '{')
	} else {
		start := len(a.b)
		if ap, ok := result.(JSONAppender); ok {
			b, err := ap.AppendJSON(a.b)
			if err != nil {
				a.b = b[:start]
				return err
			}
			a.b = append(b, '\n') // as Encode ends
		} else if err := json.NewEncoder(a).Encode(result); err != nil {
			// Encode writes what Marshal returns, and a newline, without
			// copying it out of its own buffer.
			return err
		}
		inner := a.b[start:]
		if len(inner) < 3 || inner[0] != '{' || inner[len(inner)-2] != '}' {
			return fmt.Errorf("response of type %T is not a JSON object", result)
		}
		a.b = a.b[:len(a.b)-2] // the object's "}" and the newline
		if len(inner) > 3 {
			a.b = append(a.b, ',')
		}
	}
	a.b = append(a.b, `"RequestId":"`...)
	a.b = append(a.b, requestID...)
	a.b = append(a.b, `"}}`...)
	return nil
}

var errDropped = errors.New("connection dropped by an injected fault")

// faultError is an injected error with its HTTP status.
type faultError struct {
	err    *Error
	status int
}

func (f *faultError) Error() string { return f.err.Error() }
func (f *faultError) Unwrap() error { return f.err }

func (s *Server) serve(w http.ResponseWriter, r *http.Request, name, requestID string) (any, error) {
	if r.Method != http.MethodPost {
		return nil, Errorf("UnsupportedProtocol", "the reference server accepts POST with a JSON body and a TC3 signature; %s is not modelled", r.Method)
	}
	if r.ContentLength > MaxRequestBytes { // refused unread
		return nil, errTooLarge
	}
	if name == "" {
		return nil, Errorf(apierr.CodeMissingParameter, "the X-TC-Action header is missing")
	}
	// Everything that does not need the body first: an anonymous client
	// cannot make the server read one.
	pending, err := s.verifier.Authenticate(r)
	if err != nil {
		return nil, verifyError(err)
	}
	body, held, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	defer held.release()
	id, err := pending.Check(body)
	if err != nil {
		return nil, verifyError(err)
	}
	if id.Service != s.service {
		return nil, Errorf(apierr.CodeSignatureFailure, "the credential scope names service %q; this endpoint is %q", id.Service, s.service)
	}
	switch v := tc3.HeaderValue(r, "X-Tc-Version"); {
	case v == "":
		return nil, Errorf(apierr.CodeMissingParameter, "the X-TC-Version header is missing")
	case v != s.version:
		return nil, Errorf(apierr.CodeNoSuchVersion, "version %q of %s does not exist; use %s", v, s.service, s.version)
	}
	a, fault, err := s.admit(name)
	if err != nil {
		return nil, err
	}
	req := &Request{
		Action: name, RequestId: requestID, Region: tc3.HeaderValue(r, "X-Tc-Region"),
		SecretId: id.SecretID, Body: body, HTTP: r, closing: s.closing, names: &s.names,
	}
	if fault != nil {
		req.Latency = fault.Latency
		if fault.Latency > 0 && s.limits.WriteTimeout > 0 {
			// An injected delay is the test's choice: the write timeout
			// counts from its end.
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(fault.Latency + s.limits.WriteTimeout))
		}
		if !a.HandlesLatency || fault.Drop || fault.Code != "" {
			req.Delay(r.Context())
			req.Latency = 0
		}
		if fault.Drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					// Recorded first: a client that sees the drop finds it
					// in the log.
					s.Record(Event{Kind: "call", Action: name, RequestId: requestID, Code: "(dropped)"})
					conn.Close()
					return nil, errDropped
				}
			}
		}
		if fault.Code != "" {
			return nil, &faultError{err: &Error{Code: fault.Code, Message: fault.Message}, status: fault.HTTPStatus}
		}
		if fault.DropAnswer {
			a.Handle(r.Context(), req)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					s.Record(Event{Kind: "call", Action: name, RequestId: requestID, Code: "(answer dropped)"})
					conn.Close()
					return nil, errDropped
				}
			}
		}
	}
	return a.Handle(r.Context(), req)
}

func verifyError(err error) error {
	var ve *tc3.Error
	if errors.As(err, &ve) {
		return &Error{Code: ve.Code, Message: ve.Message}
	}
	return err
}

var errTooLarge = &Error{Code: "RequestSizeLimitExceeded", Message: "the request body exceeds 10 MB"}

// readBody reads the whole body, at most MaxRequestBytes. A body over
// SmallBody first takes its Content-Length (MaxRequestBytes without one)
// from the body budget, which it gives back when the heldBody is
// released: the caller releases it once the request is answered, as the
// body lives that long. A small body with a Content-Length is read into a
// buffer of the server's, reused once it is released.
func (s *Server) readBody(r *http.Request) (body []byte, held heldBody, err error) {
	held.s = s
	weight := r.ContentLength
	if weight < 0 {
		weight = MaxRequestBytes
	}
	if weight > SmallBody && s.budget != nil {
		if !s.budget.acquire(r.Context(), s.closing, weight, s.limits.BodyWait) {
			return nil, heldBody{}, Errorf(apierr.CodeRequestLimitExceeded, "the server is reading too many large request bodies; retry later")
		}
		held.weight = weight
		if r.ContentLength >= 0 {
			body = s.budget.buffer(r.ContentLength)
			held.large = body
		}
	}
	if r.ContentLength >= 0 {
		if body == nil && r.ContentLength <= SmallBody {
			held.small = s.smallBody(int(r.ContentLength))
			body = *held.small
		} else if body == nil {
			body = make([]byte, r.ContentLength)
		}
		if _, err := io.ReadFull(r.Body, body); err != nil {
			held.release()
			return nil, heldBody{}, Errorf("InvalidRequest", "reading the request body: %v", err)
		}
		return body, held, nil
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err == nil && len(body) > MaxRequestBytes {
		err = errTooLarge
	} else if err != nil {
		err = Errorf("InvalidRequest", "reading the request body: %v", err)
	}
	if err != nil {
		held.release()
		return nil, heldBody{}, err
	}
	return body, held, nil
}

// heldBody is what a body read by readBody holds until it is released: a
// small body's buffer, or a large body's place in the budget and its
// buffer.
type heldBody struct {
	s      *Server
	small  *[]byte
	large  []byte
	weight int64
}

func (h heldBody) release() {
	switch {
	case h.small != nil:
		h.s.smallBodies.Put(h.small)
	case h.weight > 0:
		if h.large != nil {
			h.s.budget.recycle(h.large)
		}
		h.s.budget.release(h.weight)
	}
}

// smallBody returns a buffer of n bytes, at most SmallBody, from the
// server's pool, or a new one with room for bodies up to the next power
// of two.
func (s *Server) smallBody(n int) *[]byte {
	if p, ok := s.smallBodies.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	size := 512
	for size < n {
		size *= 2
	}
	b := make([]byte, n, size)
	return &b
}

// admit finds the action, applies its rate limit and takes a queued fault.
func (s *Server) admit(name string) (*action, *Fault, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.actions[name]
	if !ok {
		return nil, nil, Errorf(apierr.CodeInvalidAction, "the action %s does not exist in %s %s", name, s.service, s.version)
	}
	if a.RatePerSecond > 0 {
		now := time.Now().Unix()
		if now != a.window {
			a.window, a.windowUsed = now, 0
		}
		if a.windowUsed >= a.RatePerSecond {
			return nil, nil, Errorf(apierr.CodeRequestLimitExceeded, "%s allows %d requests per second", name, a.RatePerSecond)
		}
		a.windowUsed++
	}
	queue := s.faults[name]
	if len(queue) == 0 {
		return a, nil, nil
	}
	f := queue[0]
	if queue[0].Times--; queue[0].Times == 0 {
		s.faults[name] = queue[1:]
	}
	return a, &f, nil
}

// NewRequestID returns a random UUID v4, the format of Tencent Cloud's
// RequestId. Request ids need to be unique, not secret: math/rand/v2's
// per-thread generator is ample and several times cheaper than
// crypto/rand.
func NewRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return FormatRequestID(b)
}

// envelope wraps a result as {"Response":{…,"RequestId":"…"}}.
func envelope(result any, requestID string) ([]byte, error) {
	var a answerBuffer
	if err := a.envelope(result, requestID); err != nil {
		return nil, err
	}
	return a.b, nil
}

func errorEnvelope(e *Error, requestID string) []byte {
	b, _ := json.Marshal(map[string]any{"Response": map[string]any{
		"Error":     map[string]string{"Code": e.Code, "Message": e.Message},
		"RequestId": requestID,
	}})
	return b
}
