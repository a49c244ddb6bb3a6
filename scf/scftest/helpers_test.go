package scftest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// start serves a reference server on an in-memory network (so it can run
// inside a testing/synctest bubble) and returns a client with retries off.
func start(t *testing.T, opts ...scftest.Option) (*scftest.Server, *scf.Client) {
	t.Helper()
	srv := scftest.Start(t, append([]scftest.Option{scftest.WithListener(memnet.Listen("scf.test"))}, opts...)...)
	c := srv.Client(scf.WithRetry(scf.RetryPolicy{MaxAttempts: 1}))
	t.Cleanup(c.CloseIdleConnections)
	return srv, c
}

func addFunction(t *testing.T, srv *scftest.Server, fc scftest.FunctionConfig) {
	t.Helper()
	if err := srv.AddFunction(fc); err != nil {
		t.Fatal(err)
	}
}

// gate is a handler that blocks every execution until released, and
// remembers the invocations it saw.
type gate struct {
	mu      sync.Mutex
	seen    []*scftest.Invocation
	started []time.Time
	release chan struct{}
}

func newGate() *gate { return &gate{release: make(chan struct{})} }

func (g *gate) handler(ctx context.Context, inv *scftest.Invocation) (string, error) {
	g.mu.Lock()
	g.seen = append(g.seen, inv)
	g.started = append(g.started, inv.Now())
	g.mu.Unlock()
	select {
	case <-g.release:
		return "ok", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (g *gate) invocations() []*scftest.Invocation {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*scftest.Invocation(nil), g.seen...)
}

// status returns the function status of an invocation's error (200 for
// none).
func status(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return scf.StatusSuccess
	}
	var fe *scf.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("want a *scf.FunctionError, got %T: %v", err, err)
	}
	return fe.StatusCode
}

func apiCode(err error) string {
	var e *scf.APIError
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

type httpResult struct {
	status int
	id     string
	body   string
}

func post(t *testing.T, hc *http.Client, url, body string) httpResult {
	t.Helper()
	resp, err := hc.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return httpResult{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, id: resp.Header.Get("X-Scf-Request-Id"), body: string(b)}
}
