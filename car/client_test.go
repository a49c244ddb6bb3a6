package car_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

func isRequestID(s string) bool {
	return len(s) == 36 && s[8] == '-' && s[14] == '4'
}

// TestEveryAction calls the seven actions end to end and checks what each
// did to the model.
func TestEveryAction(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	b := backend{t, c, srv}

	applied, err := c.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "u1", UserIp: userIP, ProjectId: cartest.DefaultProjectId})
	if err != nil || !isRequestID(applied.RequestId) {
		t.Fatalf("ApplyConcurrent: %+v %v", applied, err)
	}
	if got, _ := srv.User("u1"); got.State != cartest.StateLocked {
		t.Fatalf("after ApplyConcurrent: %v", got)
	}

	created, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "u1", UserIp: userIP, ApplicationParameters: "StartFor=1"})
	if err != nil || created.ServerSession == "" || !isRequestID(created.RequestId) {
		t.Fatalf("CreateSession: %+v %v", created, err)
	}
	if got, _ := srv.User("u1"); got.State != cartest.StateCreated || got.ApplicationParameters != "StartFor=1" {
		t.Fatalf("after CreateSession: %v", got)
	}
	st, err := srv.DialStream(ctx, created.ServerSession)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	count, err := c.DescribeConcurrentCount(ctx, &car.DescribeConcurrentCountInput{ProjectId: cartest.DefaultProjectId, ApplicationCategory: car.ApplicationCategoryDesktop})
	if err != nil || count.Total != cartest.DefaultPackSize || count.Running != 1 || !isRequestID(count.RequestId) {
		t.Fatalf("DescribeConcurrentCount: %+v %v", count, err)
	}
	account, err := c.DescribeConcurrentCount(ctx, nil) // nil means the account
	if err != nil || account.Total != cartest.DefaultPackSize || account.Running != 1 {
		t.Fatalf("DescribeConcurrentCount(nil): %+v %v", account, err)
	}

	if out, err := c.StartPublishStream(ctx, &car.StartPublishStreamInput{UserId: "u1", PublishStreamArgs: "a=1"}); err != nil || !isRequestID(out.RequestId) {
		t.Fatalf("StartPublishStream: %+v %v", out, err)
	}
	if got, _ := srv.User("u1"); got.Push == nil || got.Push.URL != "rtmp://push.cartest.invalid/live/u1?a=1" {
		t.Fatalf("after StartPublishStream: %v", got)
	}
	if out, err := c.StartPublishStreamWithURL(ctx, &car.StartPublishStreamWithURLInput{UserId: "u1", PublishStreamURL: "rtmp://192.0.2.10:1935/live/room"}); err != nil || !isRequestID(out.RequestId) {
		t.Fatalf("StartPublishStreamWithURL: %+v %v", out, err)
	}
	if got, _ := srv.User("u1"); got.Push == nil || got.Push.URL != "rtmp://192.0.2.10:1935/live/room" {
		t.Fatalf("after StartPublishStreamWithURL: %v", got)
	}
	if out, err := c.StopPublishStream(ctx, &car.StopPublishStreamInput{UserId: "u1"}); err != nil || !isRequestID(out.RequestId) {
		t.Fatalf("StopPublishStream: %+v %v", out, err)
	}
	if got, _ := srv.User("u1"); got.Push != nil {
		t.Fatalf("after StopPublishStream: %v", got)
	}

	destroyed, err := c.DestroySession(ctx, &car.DestroySessionInput{UserId: "u1"})
	if err != nil || !isRequestID(destroyed.RequestId) {
		t.Fatalf("DestroySession: %+v %v", destroyed, err)
	}
	<-st.Done()
	var ce *cartest.CloseError
	if !errors.As(st.Err(), &ce) || ce.Code != cartest.CloseServerClosed {
		t.Fatalf("DestroySession left the client stream with %v", st.Err())
	}
	b.wantCounts(cartest.DefaultProjectId, 3, 1) // cleaning up
	srv.Advance(cartest.DefaultCleanupDelay)
	b.wantCounts(cartest.DefaultProjectId, 3, 0)

	// Call reaches any action with any parameters.
	var raw struct{ Total, Running uint64 }
	if err := c.Call(ctx, "DescribeConcurrentCount", map[string]string{"ProjectId": cartest.DefaultProjectId}, &raw); err != nil || raw.Total != 3 {
		t.Fatalf("Call: %+v %v", raw, err)
	}
	if err := c.Call(ctx, "ResetConcurrentPackages", nil, nil); code(err) != car.CodeInvalidAction {
		t.Fatalf("Call of an action CAR's China site lacks: %v", err)
	}
	if n := len(calls(srv)); n != 12 {
		t.Errorf("the server saw %d calls, want 12", n)
	}
}

// TestValidationSendsNothing: a request that breaks a rule is refused
// before it is sent, naming the field and the rule.
func TestValidationSendsNothing(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	user := car.ApplyConcurrentInput{UserId: "u", UserIp: userIP, ProjectId: cartest.DefaultProjectId}
	cases := []struct {
		name  string
		call  func() error
		field string
		rule  string
	}{
		{"nil input", func() error { _, err := c.ApplyConcurrent(ctx, nil); return err }, "input", "must not be nil"},
		{"apply no UserId", func() error {
			in := user
			in.UserId = ""
			_, err := c.ApplyConcurrent(ctx, &in)
			return err
		}, "UserId", "is required"},
		{"apply no UserIp", func() error {
			in := user
			in.UserIp = ""
			_, err := c.ApplyConcurrent(ctx, &in)
			return err
		}, "UserIp", "is required"},
		{"apply bad UserIp", func() error {
			in := user
			in.UserIp = "300.1.1.1"
			_, err := c.ApplyConcurrent(ctx, &in)
			return err
		}, "UserIp", "must be an IPv4 or IPv6 address"},
		{"apply no ProjectId", func() error {
			in := user
			in.ProjectId = ""
			_, err := c.ApplyConcurrent(ctx, &in)
			return err
		}, "ProjectId", "is required"},
		{"create bad RunMode", func() error {
			_, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "u", UserIp: userIP, RunMode: "Always"})
			return err
		}, "RunMode", "must be empty or RunWithoutClient"},
		{"create bad Role", func() error {
			_, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "u", UserIp: userIP, Role: "Owner", HostUserId: "u"})
			return err
		}, "Role", "must be Player or Viewer"},
		{"create Role without host", func() error {
			_, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "u", UserIp: userIP, Role: car.RoleViewer})
			return err
		}, "HostUserId", "is required when Role is set (multiplayer)"},
		{"destroy no UserId", func() error { _, err := c.DestroySession(ctx, &car.DestroySessionInput{}); return err }, "UserId", "is required"},
		{"count bad category", func() error {
			_, err := c.DescribeConcurrentCount(ctx, &car.DescribeConcurrentCountInput{ApplicationCategory: "TV"})
			return err
		}, "ApplicationCategory", "must be DESKTOP or MOBILE"},
		{"push no UserId", func() error { _, err := c.StartPublishStream(ctx, &car.StartPublishStreamInput{}); return err }, "UserId", "is required"},
		{"push URL missing", func() error {
			_, err := c.StartPublishStreamWithURL(ctx, &car.StartPublishStreamWithURLInput{UserId: "u"})
			return err
		}, "PublishStreamURL", "is required"},
		{"push URL not RTMP", func() error {
			_, err := c.StartPublishStreamWithURL(ctx, &car.StartPublishStreamWithURLInput{UserId: "u", PublishStreamURL: "srt://h/x"})
			return err
		}, "PublishStreamURL", "must be an rtmp:// URL (only RTMP is supported)"},
		{"stop no UserId", func() error { _, err := c.StopPublishStream(ctx, &car.StopPublishStreamInput{}); return err }, "UserId", "is required"},
	}
	for _, tc := range cases {
		err := tc.call()
		var ve *car.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || ve.Rule != tc.rule || ve.Service != "car" {
			t.Errorf("%s: got %v, want a ValidationError on %s %q", tc.name, err, tc.field, tc.rule)
			continue
		}
		if !car.IsInvalidInput(err) || !strings.Contains(err.Error(), tc.field+" "+tc.rule) {
			t.Errorf("%s: %q is not reported as invalid input naming the field and the rule", tc.name, err)
		}
	}
	if got := calls(srv); len(got) != 0 {
		t.Fatalf("rejected requests reached the server: %v", got)
	}
}

func TestAPIErrorIsTyped(t *testing.T) {
	srv, c := newServer(t, cartest.WithPack(cartest.Pack{PackId: "one", Size: 1, Projects: []string{cartest.DefaultProjectId}}))
	b := backend{t, c, srv}
	b.apply("u1", cartest.DefaultProjectId)
	_, err := c.ApplyConcurrent(t.Context(), &car.ApplyConcurrentInput{UserId: "u2", UserIp: userIP, ProjectId: cartest.DefaultProjectId})
	var apiErr *car.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %T %v, want an *APIError", err, err)
	}
	if apiErr.Code != car.CodeNoIdle || apiErr.Service != "car" || apiErr.Action != "ApplyConcurrent" ||
		!isRequestID(apiErr.RequestId) || apiErr.HTTPStatus != 200 || apiErr.Attempts != 1 || apiErr.Message == "" {
		t.Fatalf("APIError %+v", apiErr)
	}
	if !car.IsNotFound(err) || !car.HasCode(err, "ResourceNotFound") || car.IsThrottled(err) || car.IsAuth(err) || car.IsInvalidInput(err) {
		t.Fatalf("the helpers misclassify %v", err)
	}
	if want := "car ApplyConcurrent: ResourceNotFound.NoIdle: "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Error() = %q, want it to start with %q", err, want)
	}
	// The RequestId is the server's.
	last := calls(srv)[len(calls(srv))-1]
	if last.RequestId != apiErr.RequestId || last.Code != car.CodeNoIdle {
		t.Fatalf("the server logged %v for %v", last, apiErr)
	}
}

func TestThrottled(t *testing.T) {
	srv, c := newServer(t)
	srv.InjectFault("DescribeConcurrentCount", cartest.Fault{Code: car.CodeRequestLimitExceeded, Message: "slow down"})
	_, err := c.DescribeConcurrentCount(t.Context(), nil)
	var apiErr *car.APIError
	if !car.IsThrottled(err) || !errors.As(err, &apiErr) || apiErr.Attempts != 1 {
		t.Fatalf("with MaxAttempts 1: %v", err)
	}
	if n := len(calls(srv)); n != 1 {
		t.Fatalf("%d calls with MaxAttempts 1", n)
	}
}

// TestThrottlingRetry: a throttled call is retried, signed afresh, and
// succeeds; the backoff runs in a synctest bubble's time.
func TestThrottlingRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithListener(memnet.Listen("car")))
		c := srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 2}))
		srv.InjectFault("ApplyConcurrent", cartest.Fault{Code: car.CodeRequestLimitExceeded, Message: "too fast"})
		start := time.Now()
		out, err := c.ApplyConcurrent(t.Context(), &car.ApplyConcurrentInput{UserId: "u", UserIp: userIP, ProjectId: cartest.DefaultProjectId})
		if err != nil {
			t.Fatalf("the retry failed: %v", err)
		}
		if waited := time.Since(start); waited < 250*time.Millisecond || waited > 500*time.Millisecond {
			t.Errorf("waited %v before the retry, want the first backoff, between 250ms and 500ms", waited)
		}
		got := calls(srv)
		if len(got) != 2 || got[0].Code != car.CodeRequestLimitExceeded || got[1].Code != "" || got[1].RequestId != out.RequestId {
			t.Fatalf("the server saw %v", got)
		}
		if held, ok := srv.User("u"); !ok || held.State != cartest.StateLocked {
			t.Fatalf("after the retried call: %v", held)
		}

		// Throttled on every attempt: the last error, with the count.
		srv.InjectFault("ApplyConcurrent", cartest.Fault{Code: car.CodeRequestLimitExceeded, Times: 2})
		_, err = c.ApplyConcurrent(t.Context(), &car.ApplyConcurrentInput{UserId: "u", UserIp: userIP, ProjectId: cartest.DefaultProjectId})
		var apiErr *car.APIError
		if !car.IsThrottled(err) || !errors.As(err, &apiErr) || apiErr.Attempts != 2 {
			t.Fatalf("throttled twice with MaxAttempts 2: %v", err)
		}
		srv.Close()
	})
}

func TestContextEndsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithListener(memnet.Listen("car")))
		c := srv.Client()
		srv.InjectFault("DescribeConcurrentCount", cartest.Fault{Latency: time.Minute})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := c.DescribeConcurrentCount(ctx, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
		srv.Close()
	})
}
