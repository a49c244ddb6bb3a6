package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
	"github.com/tcconcurrency/sdk-go/internal/credential"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/internal/tc3"
)

const (
	secretID  = "AKIDtransporttest"
	secretKey = "transport-secret-key"
	token     = "transport-token"
)

// recorded is one request as the server saw it.
type recorded struct {
	at     time.Time
	header http.Header
	body   string
	err    error // signature verification result
}

// fakeAPI is a scripted API server on an in-memory network. Each request
// takes the next reply; the last one repeats.
type fakeAPI struct {
	t       *testing.T
	mu      sync.Mutex
	replies []func(w http.ResponseWriter)
	calls   []recorded
	conns   atomic.Int32
	l       *memnet.Listener
}

func newFakeAPI(t *testing.T, replies ...func(w http.ResponseWriter)) *fakeAPI {
	f := &fakeAPI{t: t, replies: replies, l: memnet.Listen("api")}
	v := &tc3.Verifier{Lookup: func(id string) (tc3.Secret, bool) {
		return tc3.Secret{Key: secretKey, Token: token}, id == secretID
	}}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			_, verr := v.Verify(r, body)
			f.mu.Lock()
			f.calls = append(f.calls, recorded{at: time.Now(), header: r.Header.Clone(), body: string(body), err: verr})
			reply := f.replies[min(len(f.calls), len(f.replies))-1]
			f.mu.Unlock()
			reply(w)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				f.conns.Add(1)
			}
		},
	}
	go srv.Serve(f.l)
	t.Cleanup(func() { srv.Close() })
	return f
}

func (f *fakeAPI) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.calls...)
}

func (f *fakeAPI) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	httpClient := &http.Client{Transport: &http.Transport{DialContext: f.l.DialContext}}
	all := append([]Option{
		WithEndpoint("http://car.test:8080"),
		WithCredentials(credential.NewStaticToken(secretID, secretKey, token)),
		WithHTTPClient(httpClient),
	}, opts...)
	c, err := New(Config{Service: "car", Version: "2022-01-10", Language: "en-US"}, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func ok(body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

func status(code int, retryAfter string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		io.WriteString(w, "busy")
	}
}

// hangUp closes the connection without answering: the request reached the
// server, so it may have acted.
func hangUp(w http.ResponseWriter) {
	c, _, _ := w.(http.Hijacker).Hijack()
	c.Close()
}

const (
	countOK   = `{"Response":{"Total":10,"Running":6,"RequestId":"r-ok"}}`
	throttled = `{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"slow down"},"RequestId":"r-limit"}}`
	noIdle    = `{"Response":{"Error":{"Code":"ResourceNotFound.NoIdle","Message":"no idle concurrency"},"RequestId":"r-noidle"}}`
)

type countOut struct {
	Total, Running uint64
	RequestId      string
}

func TestCallSignsAndDecodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI(t, ok(countOK))
		c := f.client(t, WithRegion("ap-guangzhou"))
		var out countOut
		if err := c.Call(t.Context(), "DescribeConcurrentCount", map[string]string{"ProjectId": "cap-1"}, &out); err != nil {
			t.Fatal(err)
		}
		if out.Total != 10 || out.Running != 6 || out.RequestId != "r-ok" {
			t.Fatalf("decoded %+v", out)
		}
		got := f.recorded()[0]
		if got.err != nil {
			t.Fatalf("server rejected the signature: %v", got.err)
		}
		for k, want := range map[string]string{
			"X-TC-Action": "DescribeConcurrentCount", "X-TC-Version": "2022-01-10", "X-TC-Region": "ap-guangzhou",
			"X-TC-Token": token, "Content-Type": "application/json", "X-TC-Language": "en-US",
		} {
			if v := got.header.Get(k); v != want {
				t.Errorf("%s = %q, want %q", k, v, want)
			}
		}
		if got.body != `{"ProjectId":"cap-1"}` {
			t.Errorf("body = %s", got.body)
		}
	})
}

func TestRetryThrottledResignsEachAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI(t, ok(throttled), ok(throttled), ok(countOK))
		// Waits of 2 s then 4 s (±50 %) put every attempt in its own second.
		c := f.client(t, WithRetry(RetryPolicy{MinWait: 2 * time.Second}))
		var out countOut
		if err := c.Call(t.Context(), "DescribeConcurrentCount", nil, &out); err != nil {
			t.Fatal(err)
		}
		calls := f.recorded()
		if len(calls) != 3 {
			t.Fatalf("%d attempts, want 3", len(calls))
		}
		for i, call := range calls {
			if call.err != nil {
				t.Fatalf("attempt %d: bad signature: %v", i+1, call.err)
			}
			if ts := call.header.Get("X-TC-Timestamp"); ts != strconv.FormatInt(call.at.Unix(), 10) {
				t.Errorf("attempt %d carries timestamp %s, sent at %d: not signed afresh", i+1, ts, call.at.Unix())
			}
			if i > 0 {
				wait := call.at.Sub(calls[i-1].at)
				lo, hi := time.Second<<(i-1), 3*time.Second<<(i-1)
				if wait < lo || wait > hi {
					t.Errorf("wait before attempt %d = %v, want within [%v, %v]", i+1, wait, lo, hi)
				}
			}
		}
		if f.conns.Load() != 1 {
			t.Errorf("%d connections for 3 attempts, want 1 reused", f.conns.Load())
		}
	})
}

func TestRetryOutcomes(t *testing.T) {
	cases := []struct {
		name        string
		reply       func(http.ResponseWriter)
		opts        []CallOption
		wantAttempt int
		wantCode    string
	}{
		{"throttling is retried until attempts run out", ok(throttled), nil, 3, "RequestLimitExceeded"},
		{"throttling is retried for unsafe calls too", ok(throttled), []CallOption{NotIdempotent()}, 3, "RequestLimitExceeded"},
		{"HTTP 429 is retried", status(429, ""), nil, 3, apierr.CodeHTTPStatus},
		{"HTTP 503 is retried for safe calls", status(503, ""), nil, 3, apierr.CodeHTTPStatus},
		{"HTTP 503 is not retried for unsafe calls", status(503, ""), []CallOption{NotIdempotent()}, 1, apierr.CodeHTTPStatus},
		{"HTTP 501 is not retried", status(501, ""), nil, 1, apierr.CodeHTTPStatus},
		{"HTTP 408 is retried for safe calls", status(408, ""), nil, 3, apierr.CodeHTTPStatus},
		{"HTTP 404 is not retried", status(404, ""), nil, 1, apierr.CodeHTTPStatus},
		{"a business error is not retried", ok(noIdle), nil, 1, "ResourceNotFound.NoIdle"},
		{"per-call attempts", ok(throttled), []CallOption{WithCallRetry(RetryPolicy{MaxAttempts: 5})}, 5, "RequestLimitExceeded"},
		{"per-call no retry", ok(throttled), []CallOption{WithCallRetry(RetryPolicy{MaxAttempts: 1})}, 1, "RequestLimitExceeded"},
		{"non-JSON 200", ok("<html>"), nil, 1, apierr.CodeParseJSON},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeAPI(t, tc.reply)
				err := f.client(t).Call(t.Context(), "ApplyConcurrent", nil, nil, tc.opts...)
				var e *apierr.Error
				if !errors.As(err, &e) {
					t.Fatalf("err = %v, want *apierr.Error", err)
				}
				if e.Code != tc.wantCode || e.Attempts != tc.wantAttempt || len(f.recorded()) != tc.wantAttempt {
					t.Fatalf("code %s after %d attempts (server saw %d), want %s after %d", e.Code, e.Attempts, len(f.recorded()), tc.wantCode, tc.wantAttempt)
				}
				if e.Service != "car" || e.Action != "ApplyConcurrent" {
					t.Errorf("error names %s %s", e.Service, e.Action)
				}
			})
		})
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Run("a dropped connection is retried for safe calls", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeAPI(t, hangUp, ok(countOK))
			if err := f.client(t).Call(t.Context(), "DestroySession", nil, nil); err != nil {
				t.Fatal(err)
			}
			if n := len(f.recorded()); n != 2 {
				t.Fatalf("%d attempts, want 2", n)
			}
		})
	})
	t.Run("a dropped connection is not retried for unsafe calls", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeAPI(t, hangUp, ok(countOK))
			err := f.client(t).Call(t.Context(), "Invoke", nil, nil, NotIdempotent())
			if err == nil || len(f.recorded()) != 1 {
				t.Fatalf("err = %v after %d attempts, want one failed attempt", err, len(f.recorded()))
			}
		})
	})
	t.Run("a failed dial is retried for unsafe calls", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var dials atomic.Int32
			f := newFakeAPI(t, ok(countOK))
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				if dials.Add(1) == 1 {
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
				}
				return f.l.DialContext(ctx, network, addr)
			}
			c := f.client(t, WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: dial}}))
			if err := c.Call(t.Context(), "Invoke", nil, nil, NotIdempotent()); err != nil {
				t.Fatal(err)
			}
			if dials.Load() != 2 || len(f.recorded()) != 1 {
				t.Fatalf("%d dials, %d requests", dials.Load(), len(f.recorded()))
			}
		})
	})
}

func TestRetryAfterIsHonouredAndClamped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI(t, status(429, "7"), status(429, "3600"), ok(countOK))
		c := f.client(t, WithRetry(RetryPolicy{MaxWait: 10 * time.Second}))
		start := time.Now()
		if err := c.Call(t.Context(), "DescribeConcurrentCount", nil, nil); err != nil {
			t.Fatal(err)
		}
		calls := f.recorded()
		if w := calls[1].at.Sub(calls[0].at); w != 7*time.Second {
			t.Errorf("first wait %v, want the server's 7s", w)
		}
		if w := calls[2].at.Sub(calls[1].at); w != 10*time.Second {
			t.Errorf("second wait %v, want Retry-After 3600s clamped to MaxWait 10s", w)
		}
		if time.Since(start) != 17*time.Second {
			t.Errorf("call took %v", time.Since(start))
		}
	})
}

func TestContextEndsWaits(t *testing.T) {
	t.Run("cancel during a wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeAPI(t, ok(throttled))
			c := f.client(t, WithRetry(RetryPolicy{MinWait: time.Minute, MaxWait: time.Minute}))
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(10*time.Second, cancel)
			start := time.Now()
			err := c.Call(ctx, "ApplyConcurrent", nil, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code != "RequestLimitExceeded" {
				t.Fatalf("err = %v, want the last API error wrapped too", err)
			}
			if time.Since(start) != 10*time.Second {
				t.Fatalf("returned after %v, want at the cancel (10s)", time.Since(start))
			}
		})
	})
	t.Run("a wait that would outlast the deadline is not started", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeAPI(t, ok(throttled))
			c := f.client(t, WithRetry(RetryPolicy{MinWait: time.Minute, MaxWait: time.Minute}))
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := c.Call(ctx, "ApplyConcurrent", nil, nil)
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code != "RequestLimitExceeded" || e.Attempts != 1 {
				t.Fatalf("err = %v", err)
			}
			if time.Since(start) != 0 {
				t.Fatalf("returned after %v, want at once", time.Since(start))
			}
		})
	})
}

func TestConnectionsSurviveFailedCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI(t, ok(throttled), ok(throttled), ok(throttled), ok(countOK))
		c := f.client(t)
		if err := c.Call(t.Context(), "A", nil, nil); !apierr.IsThrottled(err) {
			t.Fatalf("err = %v", err)
		}
		for range 5 {
			if err := c.Call(t.Context(), "A", nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.conns.Load(); n != 1 {
			t.Fatalf("%d connections for 6 calls, want 1", n)
		}
	})
}

func TestCredentialFailureIsNotSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeAPI(t, ok(countOK))
		c := f.client(t, WithCredentials(&credential.Env{Getenv: func(string) string { return "" }}))
		err := c.Call(t.Context(), "A", nil, nil)
		if !errors.Is(err, credential.ErrNotFound) || len(f.recorded()) != 0 {
			t.Fatalf("err = %v, %d requests sent", err, len(f.recorded()))
		}
	})
}

func TestLogsCarryNoSecrets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		f := newFakeAPI(t, ok(throttled), ok(noIdle))
		c := f.client(t, WithLogger(logger))
		err := c.Call(t.Context(), "ApplyConcurrent", nil, nil)
		if !apierr.HasCode(err, "ResourceNotFound.NoIdle") {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{"retrying", "RequestLimitExceeded", "ResourceNotFound.NoIdle", "r-noidle"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		auth := f.recorded()[0].header.Get("Authorization")
		sig := auth[strings.LastIndex(auth, "=")+1:]
		for _, secret := range []string{secretKey, token, sig} {
			if strings.Contains(out, secret) || strings.Contains(err.Error(), secret) {
				t.Errorf("a secret reached the log or error:\n%s", out)
			}
		}
	})
}

func TestOptionValidation(t *testing.T) {
	cases := map[string]Option{
		"endpoint empty":     WithEndpoint(""),
		"endpoint scheme":    WithEndpoint("ftp://x"),
		"endpoint query":     WithEndpoint("http://x/?a=1"),
		"retry negative":     WithRetry(RetryPolicy{MaxAttempts: -1}),
		"retry min over max": WithRetry(RetryPolicy{MinWait: time.Minute, MaxWait: time.Second}),
		"nil credentials":    WithCredentials(nil),
		"language":           WithLanguage("fr-FR"),
		"nil logger":         WithLogger(nil),
		"nil http client":    WithHTTPClient(nil),
	}
	for name, opt := range cases {
		if _, err := New(Config{Service: "car", Endpoint: "https://car.tencentcloudapi.com"}, opt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, err := New(Config{Service: "car", Endpoint: "https://x"}, WithEndpoint("car.ap-guangzhou.tencentcloudapi.com:8443"))
	if err != nil || c.url.Scheme != "https" || c.host != "car.ap-guangzhou.tencentcloudapi.com:8443" {
		t.Fatalf("bare host endpoint: %v %v", c, err)
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"3": 3 * time.Second, " 0 ": 0, "Thu, 01 Jan 2026 00:00:09 GMT": 9 * time.Second,
		"Wed, 31 Dec 2025 00:00:00 GMT": 0, "999999999999": 24 * time.Hour,
	} {
		if got, ok := retryAfter(in, now); !ok || got != want {
			t.Errorf("retryAfter(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "soon"} {
		if _, ok := retryAfter(in, now); ok {
			t.Errorf("retryAfter(%q) accepted", in)
		}
	}
}

// FuzzDecode: whatever bytes a server sends, decoding ends in a value or a
// typed error, never a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(countOK), 200)
	f.Add([]byte(throttled), 200)
	f.Add([]byte(`{"Response":{"Error":null}}`), 200)
	f.Add([]byte(`{"Response":{"Error":{"Code":5}}}`), 500)
	f.Add([]byte("\xff"), 404)
	c := &Client{service: "car"}
	f.Fuzz(func(t *testing.T, body []byte, code int) {
		a := &attempt{client: c, action: "X", body: body, status: code}
		var out countOut
		err := a.decode(&out)
		if err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("untyped or code-less error %v", err)
			}
		}
	})
}

func TestDecodeShapes(t *testing.T) {
	c := &Client{service: "car"}
	for _, body := range []string{
		countOK,
		countOK + "\n",
		"{\n  \"Response\": {\n    \"Total\": 10, \"Running\": 6,\n    \"RequestId\": \"r-ok\"\n  }\n}",
		`{"Response":{"Total":10,"Running":6,"RequestId":"r-ok"},"Ignored":true}`,
	} {
		a := &attempt{client: c, action: "X", body: []byte(body), status: 200}
		var out countOut
		if err := a.decode(&out); err != nil || out.Total != 10 || out.Running != 6 || out.RequestId != "r-ok" {
			t.Errorf("%q: %+v, %v", body, out, err)
		}
	}
}

// A retry after a timed-out attempt costs the budget 10 tokens, one after
// any other failure 5; with 25 tokens, two timeouts leave too little for a
// third retry, but enough for one after an HTTP 503.
func TestRetryBudgetTimeoutCostsMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(w http.ResponseWriter) {
			time.Sleep(2 * time.Second) // past the client's 1 s timeout
			ok(countOK)(w)
		}
		f := newFakeAPI(t, slow, slow, slow, status(503, ""), ok(countOK))
		c := f.client(t,
			WithHTTPClient(&http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: f.l.DialContext}}),
			WithRetryBudget(RetryBudget{Capacity: 25}),
			WithRetry(RetryPolicy{MaxAttempts: 10}))
		err := c.Call(t.Context(), "DescribeConcurrentCount", nil, nil)
		if err == nil || !strings.Contains(err.Error(), "after 3 attempt(s)") || len(f.recorded()) != 3 {
			t.Fatalf("three timeouts with 25 tokens: %v, %d requests; want the third timeout returned", err, len(f.recorded()))
		}
		if got := c.budget.Tokens(); got != 5 {
			t.Fatalf("%d tokens left, want 25-10-10 = 5", got)
		}
		if err := c.Call(t.Context(), "DescribeConcurrentCount", nil, nil); err != nil || len(f.recorded()) != 5 {
			t.Fatalf("an HTTP 503 with 5 tokens left: %v after %d requests, want one retry and success", err, len(f.recorded()))
		}
		if got := c.budget.Tokens(); got != 5 {
			t.Fatalf("%d tokens after a success with one retry, want 5: the retry's cost given back", got)
		}
		time.Sleep(2 * time.Second) // the slow handlers end
	})
}

func TestRetryBudgetValidation(t *testing.T) {
	for _, b := range []RetryBudget{{Capacity: -1}, {RetryCost: -1}, {TimeoutCost: -1}, {SuccessRefund: -1}} {
		if _, err := New(Config{Service: "car", Endpoint: "https://x"}, WithRetryBudget(b)); err == nil || !strings.Contains(err.Error(), "RetryBudget.") {
			t.Errorf("%+v: err = %v, want the field named", b, err)
		}
	}
	c, err := New(Config{Service: "car", Endpoint: "https://x"}, WithRetryBudget(RetryBudget{Disabled: true}))
	if err != nil || c.budget != nil {
		t.Fatalf("disabled budget: %v, %v", c.budget, err)
	}
	c, _ = New(Config{Service: "car", Endpoint: "https://x"})
	if got := c.budget.Tokens(); got != DefaultBudgetCapacity {
		t.Fatalf("default budget starts with %d tokens, want %d", got, DefaultBudgetCapacity)
	}
}
