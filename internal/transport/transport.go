// Package transport sends signed Tencent Cloud API 3.0 calls for the car and
// scf clients.
//
// Each call is a POST of a JSON body with the X-TC-* headers and a
// TC3-HMAC-SHA256 signature. Its attempts follow the SDK's one retry model,
// described in package internal/retry: what is retried, the wait before
// retry n, and the client's retry budget all come from there. Here:
//
//   - every attempt is signed afresh, with a new timestamp and the
//     credential the provider returns at that moment;
//   - the body is read once per attempt, and the attempt's failure (HTTP
//     status first, then an error envelope in a 200 reply, or the network
//     error) is classified by retry.Classify: throttling and failed dials
//     are retried for every call, HTTP 5xx (but 501), 408 and network errors
//     only for calls that are safe to repeat (not NotIdempotent);
//   - waits follow retry.Exponential(MinWait, MaxWait), raised to a
//     server's Retry-After and clamped to MaxWait, and end when the context
//     ends; a wait that would outlast the context's deadline is not started;
//   - every retry draws on the client's [RetryBudget]; when it is empty the
//     call returns its last error;
//   - the SDK's HTTP client keeps connections alive (100 idle per host),
//     and no failure closes them.
//
// The attempt loop is our own, not go-retryablehttp's: with every one of
// its hooks replaced (the retry check, the backoff, the error handler, the
// re-signing), what it added was a request copy per call and the closing
// of every idle connection after a failed call, which we had to hide.
package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
	"github.com/tcconcurrency/sdk-go/internal/credential"
	"github.com/tcconcurrency/sdk-go/internal/retry"
	"github.com/tcconcurrency/sdk-go/internal/tc3"
)

// MaxResponseBytes bounds the body read from a response.
const MaxResponseBytes = 16 << 20

// Client sends calls for one service. It is safe for concurrent use.
type Client struct {
	service string
	creds   credential.Provider
	http    *http.Client
	logger  *slog.Logger
	retry   RetryPolicy
	budget  *retry.Budget // nil: no budget
	signer  *tc3.Signer
	url     *url.URL
	host    string
	// template is every request's fixed part (method, URL, host, proto);
	// each attempt takes a copy of it with its context. Never modified.
	template *http.Request

	// Header values shared by every request; net/http only reads them.
	// hdrNone is an empty User-Agent, which net/http then leaves out: the
	// API does not use it, and every header costs both ends a parse.
	hdrContentType, hdrVersion, hdrRegion, hdrLanguage, hdrNone []string

	bufs sync.Pool // *bytes.Buffer for response bodies
	flat flatPlans // output types' plans for decodeFlat
}

// New builds a client from the service's defaults and the user's options.
func New(cfg Config, opts ...Option) (*Client, error) {
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Service, err)
		}
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: endpoint: %w", cfg.Service, err)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	c := &Client{
		service: cfg.Service,
		creds:   cfg.Credentials,
		logger:  cfg.Logger,
		retry:   cfg.Retry.over(defaultRetry),
		signer:  tc3.NewSigner(cfg.Service),
		url:     u,
		host:    u.Host,

		hdrContentType: []string{"application/json"},
		hdrVersion:     []string{cfg.Version},
		hdrNone:        []string{""},
	}
	c.template = &http.Request{
		Method:     http.MethodPost,
		URL:        c.url,
		Host:       c.host,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
	}
	if cfg.Language != "" {
		c.hdrLanguage = []string{cfg.Language}
	}
	if cfg.Region != "" {
		c.hdrRegion = []string{cfg.Region}
	}
	if c.creds == nil {
		c.creds = credential.Default()
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.http = httpClient(cfg.HTTPClient)
	if b := cfg.RetryBudget.over(defaultBudget); !b.Disabled {
		c.budget = retry.NewBudget(b.Capacity, b.RetryCost, b.TimeoutCost, b.SuccessRefund)
	}
	return c, nil
}

// httpClient returns the user's client, or the SDK's.
//
// The SDK's own client has no per-attempt timeout: the context bounds every
// call (dials and TLS handshakes keep net/http's own timeouts), as in
// aws-sdk-go-v2. A timer per attempt, as http.Client.Timeout or the
// transport's ResponseHeaderTimeout set, made a loopback call 10–50 %
// slower and far more variable (BenchmarkClientCall, internal/conformance).
// A user who wants one passes an *http.Client with a Timeout.
func httpClient(user *http.Client) *http.Client {
	if user != nil {
		return user
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 100
	t.IdleConnTimeout = 90 * time.Second
	// Replies are small JSON: no Accept-Encoding header to send and
	// parse, no gzip reader to make.
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

// CloseIdleConnections closes the idle connections of the client's transport.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Budget returns the client's retry budget (nil when it is disabled), for
// the loops above the transport that retry whole calls: they charge their
// retries to the same bucket as the transport's own.
func (c *Client) Budget() *retry.Budget { return c.budget }

// Service returns the service name ("car", "scf").
func (c *Client) Service() string { return c.service }

// Call sends action with in as its JSON parameters and decodes the
// "Response" object of the reply into out (a pointer, or nil). An API error
// is an *apierr.Error; a cancelled context wraps ctx.Err().
func (c *Client) Call(ctx context.Context, action string, in, out any, opts ...CallOption) error {
	// The settings live in the attempt, which is on the heap anyway: a
	// local of their own would escape to the options, one more allocation.
	a := &attempt{client: c, ctx: ctx, action: action, settings: callSettings{retry: c.retry, idempotent: true}}
	for _, opt := range opts {
		opt(&a.settings)
	}
	a.payload = []byte("{}")
	if in != nil {
		var err error
		if a.payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s %s: encoding the request: %w", c.service, action, err)
		}
	}
	sig, err := a.signature()
	if err != nil {
		return err
	}
	a.first = sig
	start := time.Now()
	err = a.run()
	defer a.release()
	if err == nil && a.readErr != nil {
		err = a.readErr
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if a.lastAPIErr != nil {
				return fmt.Errorf("%s %s: %w (after %d attempts; last: %w)", c.service, action, ctxErr, a.attempts, a.lastAPIErr)
			}
			return fmt.Errorf("%s %s: %w", c.service, action, ctxErr)
		}
		var ve *credentialError
		if errors.As(err, &ve) {
			return err
		}
		return fmt.Errorf("%s %s: after %d attempt(s): %w", c.service, action, a.attempts, err)
	}
	apiErr := a.decode(out)
	c.logResult(ctx, a, start, apiErr)
	if apiErr != nil {
		return apiErr
	}
	c.budget.Succeeded(a.spent)
	return nil
}

func (c *Client) logResult(ctx context.Context, a *attempt, start time.Time, err error) {
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelInfo
	}
	if !c.logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("service", c.service), slog.String("action", a.action),
		slog.Int("attempts", a.attempts), slog.Int("status", a.status),
		slog.Duration("elapsed", time.Since(start)),
	}
	var apiErr *apierr.Error
	if errors.As(err, &apiErr) {
		attrs = append(attrs, slog.String("code", apiErr.Code), slog.String("request_id", apiErr.RequestId))
	}
	c.logger.LogAttrs(ctx, level, "tencentcloud call", attrs...)
}

// credentialError is a provider failure; it is not retried.
type credentialError struct {
	service, action string
	err             error
}

func (e *credentialError) Error() string {
	return e.service + " " + e.action + ": credentials: " + e.err.Error()
}
func (e *credentialError) Unwrap() error { return e.err }

// attempt is the state of one call across its attempts.
type attempt struct {
	client   *Client
	ctx      context.Context
	action   string
	payload  []byte
	settings callSettings
	first    signature

	attempts   int
	status     int
	body       []byte
	buf        *bytes.Buffer
	limited    io.LimitedReader // readBody's bound on the response body
	readErr    error
	lastAPIErr error
	scanned    bool          // body was scanned for an error envelope
	bodyErr    *apierr.Error // what the scan found
	spent      int           // retry budget tokens the retries took
}

func (a *attempt) release() {
	if a.buf != nil && a.buf.Cap() <= 64<<10 {
		a.buf.Reset()
		a.client.bufs.Put(a.buf)
	}
	a.buf, a.body = nil, nil
}

// run makes the call's attempts. It returns nil once an attempt got a
// response the retry check does not retry (its body read), else the error
// that ended the call: the last network error, the context's, or a
// credential failure while re-signing.
func (a *attempt) run() error {
	c := a.client
	sig := a.first
	for {
		resp, err := c.http.Do(a.request(sig))
		wait, again, stop := a.checkRetry(a.ctx, resp, err)
		switch {
		case stop != nil:
			return stop
		case !again:
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-a.ctx.Done():
			t.Stop()
			return a.ctx.Err()
		case <-t.C:
		}
		if sig, err = a.signature(); err != nil {
			return err
		}
	}
}

// request builds one attempt's request, signed with sig. The body is
// replayable (GetBody), as net/http wants for its own retries.
func (a *attempt) request(sig signature) *http.Request {
	// WithContext copies the client's template: one request made, not
	// a literal and then its copy with the context.
	req := a.client.template.WithContext(a.ctx)
	req.Header = a.headers(sig)
	req.Body = newPayloadBody(a.payload)
	req.GetBody = a.body0
	req.ContentLength = int64(len(a.payload))
	return req
}

func (a *attempt) body0() (io.ReadCloser, error) {
	return newPayloadBody(a.payload), nil
}

// newPayloadBody is a request body over the payload. It stays
// io.NopCloser(bytes.NewReader(…)), two allocations: net/http recognises
// that pair and writes the payload from it directly, where a type of our
// own (one allocation) cost a failed sendfile and a 32 KiB copy buffer per
// request.
func newPayloadBody(p []byte) io.ReadCloser {
	return io.NopCloser(bytes.NewReader(p))
}

// headers builds an attempt's headers.
func (a *attempt) headers(sig signature) http.Header {
	c := a.client
	h := make(http.Header, 8)
	h["Content-Type"] = c.hdrContentType
	// The values that change with each call share one array.
	vals := make([]string, 4)
	vals[0] = a.action
	h["X-Tc-Action"] = vals[0:1:1]
	h["X-Tc-Version"] = c.hdrVersion
	h["User-Agent"] = c.hdrNone
	if c.hdrLanguage != nil {
		h["X-Tc-Language"] = c.hdrLanguage
	}
	if c.hdrRegion != nil {
		h["X-Tc-Region"] = c.hdrRegion
	}
	sig.set(h, vals[1:])
	return h
}

// Do sends a typed call for the service packages. field and rule are the
// first documented rule the input breaks (field "" when it breaks none):
// such a call is refused with an *apierr.ValidationError before anything
// is sent. Otherwise the reply's Response object is decoded into a new Out.
func Do[Out any](ctx context.Context, c *Client, action string, in any, field, rule string, opts []CallOption) (*Out, error) {
	if field != "" {
		return nil, &apierr.ValidationError{Service: c.service, Action: action, Field: field, Rule: rule}
	}
	out := new(Out)
	if err := c.Call(ctx, action, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}
