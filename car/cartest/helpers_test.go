package cartest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/tc3"
)

// t0 is where the manual clock of the tests starts.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const ip = "203.0.113.7"

// setup starts a server on a manual clock and a client that does not
// retry.
func setup(t *testing.T, opts ...cartest.Option) (*cartest.Server, *car.Client) {
	t.Helper()
	srv := cartest.Start(t, append([]cartest.Option{cartest.WithManualClock(t0)}, opts...)...)
	return srv, srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
}

func apply(t *testing.T, c *car.Client, user, project string) {
	t.Helper()
	if _, err := c.ApplyConcurrent(t.Context(), &car.ApplyConcurrentInput{UserId: user, UserIp: ip, ProjectId: project}); err != nil {
		t.Fatalf("ApplyConcurrent(%s): %v", user, err)
	}
}

func create(t *testing.T, c *car.Client, user string) string {
	t.Helper()
	out, err := c.CreateSession(t.Context(), &car.CreateSessionInput{UserId: user, UserIp: ip})
	if err != nil {
		t.Fatalf("CreateSession(%s): %v", user, err)
	}
	return out.ServerSession
}

// connect applies, creates and opens the stream for user.
func connect(t *testing.T, srv *cartest.Server, c *car.Client, user string) *cartest.Stream {
	t.Helper()
	apply(t, c, user, cartest.DefaultProjectId)
	st, err := srv.DialStream(t.Context(), create(t, c, user))
	if err != nil {
		t.Fatalf("DialStream(%s): %v", user, err)
	}
	t.Cleanup(st.Close)
	return st
}

func destroy(t *testing.T, c *car.Client, user string) {
	t.Helper()
	if _, err := c.DestroySession(t.Context(), &car.DestroySessionInput{UserId: user}); err != nil {
		t.Fatalf("DestroySession(%s): %v", user, err)
	}
}

// code returns the API error code of err, "" for nil.
func code(err error) string {
	var e *car.APIError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return "untyped: " + err.Error()
}

func state(t *testing.T, srv *cartest.Server, user string) cartest.State {
	t.Helper()
	c, ok := srv.User(user)
	if !ok {
		return cartest.StateIdle
	}
	return c.State
}

func counts(t *testing.T, c *car.Client, project string) (total, running uint64) {
	t.Helper()
	out, err := c.DescribeConcurrentCount(t.Context(), &car.DescribeConcurrentCountInput{ProjectId: project})
	if err != nil {
		t.Fatalf("DescribeConcurrentCount(%q): %v", project, err)
	}
	return out.Total, out.Running
}

// kinds lists the model events (not calls) of the log, as "kind user concurrency".
func kinds(events []cartest.Event) []string {
	var out []string
	for _, e := range events {
		if e.Kind != cartest.EventCall {
			out = append(out, string(e.Kind)+" "+e.Subject+" "+e.Resource)
		}
	}
	return out
}

// envelope is a raw API answer.
type envelope struct {
	Status    int
	Code      string
	Message   string
	RequestID string
	Body      string
}

// rawCall sends a request signed as the official Go SDK signs it (Host
// with its port), or with signHost when it is not empty (the Node SDK signs
// the host without the port), with any action, version and body.
func rawCall(t *testing.T, srv *cartest.Server, action, version, body, signHost string) envelope {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	if signHost == "" {
		signHost = u.Host
	}
	cred := srv.Credentials()
	ts := time.Now().Unix()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", version)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	if cred.Token != "" {
		req.Header.Set("X-TC-Token", cred.Token)
	}
	req.Header.Set("Authorization", tc3.NewSigner("car").Sign(cred.SecretId, cred.SecretKey, ts, "application/json", signHost, []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Response struct {
			Error     *struct{ Code, Message string }
			RequestId string
		}
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s: the answer is not a JSON envelope: %v: %s", action, err, b)
	}
	out := envelope{Status: resp.StatusCode, RequestID: env.Response.RequestId, Body: string(b)}
	if env.Response.Error != nil {
		out.Code, out.Message = env.Response.Error.Code, env.Response.Error.Message
	}
	return out
}

// waitDone waits for a stream to end, failing the test after a while.
func waitDone(t *testing.T, st *cartest.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case <-st.Done():
	case <-ctx.Done():
		t.Fatal("the stream did not end")
	}
}
