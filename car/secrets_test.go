package car_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// TestNoSecretInOutput formats a client, its options, its credentials and
// its errors every way fmt and slog can, and logs every call at debug
// level, client and server side: the SecretKey, the token and the
// ServerSession's token never show.
func TestNoSecretInOutput(t *testing.T) {
	const (
		id    = "AKIDnoSecretShown0001"
		key   = "sk-never-printed-6f1d2c9a"
		token = "tok-never-printed-0b7e41"
	)
	var clientLog, serverLog bytes.Buffer
	debug := &slog.HandlerOptions{Level: slog.LevelDebug}
	srv := cartest.Start(t, cartest.WithManualClock(t0), cartest.WithTemporaryCredentials(id, key, token),
		cartest.WithLogger(slog.New(slog.NewTextHandler(&serverLog, debug))))
	logger := slog.New(slog.NewJSONHandler(&clientLog, debug))
	provider := car.TokenCredentials(id, key, token)
	opts := []car.Option{
		car.WithEndpoint(srv.URL), car.WithCredentials(provider), car.WithLogger(logger),
		car.WithRetry(car.RetryPolicy{MaxAttempts: 2, MinWait: time.Millisecond, MaxWait: time.Millisecond}),
	}
	c, err := car.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := t.Context()

	var errs []error
	keep := func(_ any, err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	// A success, a retried throttle, an API error, a validation error,
	// failed authentication and a broken credential.
	keep(c.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "u", UserIp: userIP, ProjectId: cartest.DefaultProjectId}))
	srv.InjectFault("CreateSession", cartest.Fault{Code: car.CodeRequestLimitExceeded, Times: 1})
	created, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "u", UserIp: userIP})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := cartest.ParseServerSession(created.ServerSession)
	if err != nil {
		t.Fatal(err)
	}
	st, err := srv.DialStream(ctx, created.ServerSession)
	if err != nil {
		t.Fatal(err)
	}
	st.Drop()
	keep(c.CreateSession(ctx, &car.CreateSessionInput{UserId: "nobody", UserIp: userIP}))
	keep(c.DestroySession(ctx, &car.DestroySessionInput{}))
	wrongToken, _ := car.NewClient(car.WithEndpoint(srv.URL), car.WithLogger(logger), car.WithCredentials(car.TokenCredentials(id, key, "other-"+token)))
	keep(wrongToken.DescribeConcurrentCount(ctx, nil))
	noKey, _ := car.NewClient(car.WithEndpoint(srv.URL), car.WithLogger(logger), car.WithCredentials(car.TokenCredentials(id, "", token)))
	keep(noKey.DescribeConcurrentCount(ctx, nil))
	if len(errs) != 4 {
		t.Fatalf("want 4 errors, got %v", errs)
	}
	if !car.IsAuth(errs[2]) {
		t.Fatalf("the wrong token gave %v", errs[2])
	}

	var printed bytes.Buffer
	values := []any{c, provider, opts, srv, srv.Credentials(), ss, created}
	for _, e := range errs {
		values = append(values, e)
	}
	for _, v := range values {
		fmt.Fprintf(&printed, "%v %+v %#v %s %q\n", v, v, v, v, v)
		logger.Info("value", "v", v)
	}
	logger.Info("all", "client", c, "credentials", provider, "session", ss, "errors", errs)

	for name, out := range map[string]string{"fmt": printed.String(), "client log": clientLog.String(), "server log": serverLog.String()} {
		for secret, what := range map[string]string{key: "SecretKey", token: "token", ss.Token: "ServerSession token", created.ServerSession: "ServerSession"} {
			if strings.Contains(out, secret) {
				t.Errorf("the %s shows in the %s:\n%s", what, name, out)
			}
		}
	}
	// The logs did log the calls.
	if !strings.Contains(clientLog.String(), `"action":"CreateSession"`) || !strings.Contains(clientLog.String(), "retrying") {
		t.Errorf("the client log lacks the calls:\n%s", clientLog.String())
	}
	if !strings.Contains(serverLog.String(), "kind=created") {
		t.Errorf("the server log lacks the events:\n%s", serverLog.String())
	}
}
