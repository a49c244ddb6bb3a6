package car_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// t0 is where the manual clock of the tests starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const userIP = "198.51.100.20"

// newServer starts a reference server on a manual clock, and a client
// that does not retry.
func newServer(t *testing.T, opts ...cartest.Option) (*cartest.Server, *car.Client) {
	t.Helper()
	srv := cartest.Start(t, append([]cartest.Option{cartest.WithManualClock(t0)}, opts...)...)
	return srv, srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
}

// backend is what a business backend does with the client, failing the
// test on an error.
type backend struct {
	t   *testing.T
	c   *car.Client
	srv *cartest.Server
}

func (b backend) apply(user, project string) {
	b.t.Helper()
	if _, err := b.c.ApplyConcurrent(b.t.Context(), &car.ApplyConcurrentInput{UserId: user, UserIp: userIP, ProjectId: project}); err != nil {
		b.t.Fatalf("ApplyConcurrent(%s, %s): %v", user, project, err)
	}
}

func (b backend) create(user string) string {
	b.t.Helper()
	out, err := b.c.CreateSession(b.t.Context(), &car.CreateSessionInput{UserId: user, UserIp: userIP})
	if err != nil {
		b.t.Fatalf("CreateSession(%s): %v", user, err)
	}
	return out.ServerSession
}

func (b backend) destroy(user string) {
	b.t.Helper()
	if _, err := b.c.DestroySession(b.t.Context(), &car.DestroySessionInput{UserId: user}); err != nil {
		b.t.Fatalf("DestroySession(%s): %v", user, err)
	}
}

// start is StartProject of the official demo plus the client connecting:
// ApplyConcurrent, CreateSession, stream.
func (b backend) start(user string) *cartest.Stream {
	b.t.Helper()
	b.apply(user, cartest.DefaultProjectId)
	st, err := b.srv.DialStream(b.t.Context(), b.create(user))
	if err != nil {
		b.t.Fatalf("DialStream(%s): %v", user, err)
	}
	b.t.Cleanup(st.Close)
	return st
}

// counts returns DescribeConcurrentCount's Total and Running of a project
// ("" for the account).
func (b backend) counts(project string) (uint64, uint64) {
	b.t.Helper()
	out, err := b.c.DescribeConcurrentCount(b.t.Context(), &car.DescribeConcurrentCountInput{ProjectId: project})
	if err != nil {
		b.t.Fatalf("DescribeConcurrentCount(%q): %v", project, err)
	}
	return out.Total, out.Running
}

func (b backend) wantCounts(project string, total, running uint64) {
	b.t.Helper()
	if gt, gr := b.counts(project); gt != total || gr != running {
		b.t.Fatalf("DescribeConcurrentCount(%q): Total %d Running %d, want %d %d", project, gt, gr, total, running)
	}
}

// code returns the API error code of err ("" for nil).
func code(err error) string {
	var e *car.APIError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	}
	return "not an APIError: " + err.Error()
}

// calls returns the API calls in the server's event log.
func calls(srv *cartest.Server) []cartest.Event {
	var out []cartest.Event
	for _, e := range srv.Events() {
		if e.Kind == cartest.EventCall {
			out = append(out, e)
		}
	}
	return out
}

// model returns the model events of the log as "kind user concurrency".
func model(srv *cartest.Server) []string {
	var out []string
	for _, e := range srv.Events() {
		if e.Kind != cartest.EventCall {
			out = append(out, string(e.Kind)+" "+e.Subject+" "+e.Resource)
		}
	}
	return out
}
