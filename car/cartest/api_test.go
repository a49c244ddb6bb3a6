package cartest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

func TestOptionsRejected(t *testing.T) {
	cases := []struct {
		opt  cartest.Option
		want string
	}{
		{cartest.WithProject(cartest.Project{ProjectId: "cap-a", ReconnectWait: 39 * time.Second}), "ReconnectWait 39s is outside 40s–1h0m0s"},
		{cartest.WithProject(cartest.Project{ProjectId: "cap-a", ReconnectWait: time.Hour + time.Second}), "ReconnectWait 1h0m1s is outside"},
		{cartest.WithProject(cartest.Project{}), "Project.ProjectId is required"},
		{cartest.WithPack(cartest.Pack{PackId: "p", Size: 0}), "pack p: Size 0 is outside 1–100000"},
		{cartest.WithPack(cartest.Pack{PackId: "p q", Size: 1}), "PackId may hold only letters"},
		{cartest.WithPack(cartest.Pack{PackId: "p", Size: 1, Projects: []string{"cap-nope"}}), `pack p is bound to project "cap-nope", which no WithProject declares`},
		{cartest.WithStreamPath("stream"), "must start with '/'"},
		{cartest.WithLockTime(0), "the lock time must be positive"},
		{cartest.WithCleanupDelay(-time.Second), "must not be negative"},
		{cartest.WithRateLimit("Nope", 1), `CAR has no action "Nope"`},
		{cartest.WithRateLimit("ApplyConcurrent", -1), "must not be negative"},
		{cartest.WithCredentials("", "k"), "SecretId must not be empty"},
		{cartest.WithTemporaryCredentials("id", "", "tok"), "SecretKey must not be empty"},
		{cartest.WithListener(nil), "listener must not be nil"},
		{cartest.WithLogger(nil), "logger must not be nil"},
		{cartest.WithLimits(cartest.Limits{BodyBytesInFlight: 1 << 20}), "BodyBytesInFlight must be at least MaxRequestBytes"},
	}
	for _, tc := range cases {
		srv, err := cartest.NewServer(tc.opt)
		if err == nil {
			srv.Close()
			t.Errorf("want an error containing %q, got none", tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %q, want it to contain %q", err, tc.want)
		}
	}
	_, err := cartest.NewServer(cartest.WithProject(cartest.Project{ProjectId: "cap-a"}), cartest.WithProject(cartest.Project{ProjectId: "cap-a"}))
	if err == nil || !strings.Contains(err.Error(), "project cap-a is declared twice") {
		t.Errorf("duplicate project: %v", err)
	}
	_, err = cartest.NewServer(cartest.WithCredentials("id", "a"), cartest.WithCredentials("id", "b"))
	if err == nil || !strings.Contains(err.Error(), "a SecretId is given twice") {
		t.Errorf("duplicate SecretId: %v", err)
	}
}

func TestReconnectWaitBoundsAccepted(t *testing.T) {
	for _, d := range []time.Duration{cartest.MinReconnectWait, cartest.MaxReconnectWait} {
		srv, c := setup(t, cartest.WithProject(cartest.Project{ProjectId: "cap-w", ReconnectWait: d}))
		apply(t, c, "u", "cap-w")
		create(t, c, "u")
		got, _ := srv.User("u")
		if want := t0.Add(d); !got.Until.Equal(want) {
			t.Errorf("ReconnectWait %v: the created session waits until %v, want %v", d, got.Until, want)
		}
	}
}

// TestRequestErrors sends what the car client would refuse to send, and
// checks the code, that the message names the field, and that the server
// goes on serving.
func TestRequestErrors(t *testing.T) {
	_, c := setup(t)
	ctx := t.Context()
	userOK := map[string]any{"UserId": "u", "UserIp": ip}
	with := func(base map[string]any, kv ...any) map[string]any {
		m := make(map[string]any)
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	applyOK := with(userOK, "ProjectId", cartest.DefaultProjectId)
	cases := []struct {
		action string
		params map[string]any
		code   string
		field  string
	}{
		{"ApplyConcurrent", with(applyOK, "UserId", nil), car.CodeMissingParameter, "`UserId`"},
		{"ApplyConcurrent", with(applyOK, "UserIp", nil), car.CodeMissingParameter, "`UserIp`"},
		{"ApplyConcurrent", with(applyOK, "ProjectId", nil), car.CodeMissingParameter, "`ProjectId`"},
		{"ApplyConcurrent", with(applyOK, "UserIp", "not-an-ip"), car.CodeInvalidParameterValue, "`UserIp`"},
		{"ApplyConcurrent", with(applyOK, "ProjectId", "cap-nope"), car.CodeInvalidParameterValue, "`ProjectId`"},
		{"ApplyConcurrent", with(applyOK, "UserId", 42), car.CodeInvalidParameterValue, "`UserId` must be of type String"},
		{"ApplyConcurrent", with(applyOK, "Extra", "x"), car.CodeUnknownParameter, "`Extra`"},
		{"CreateSession", with(userOK, "RunMode", "Forever"), car.CodeInvalidParameterValue, "`RunMode`"},
		{"CreateSession", with(userOK, "Role", "Admin", "HostUserId", "u"), car.CodeInvalidParameterValue, "`Role`"},
		{"CreateSession", with(userOK, "Role", "Player"), car.CodeMissingParameter, "`HostUserId`"},
		{"CreateSession", with(userOK, "HostUserId", "owner"), "UnsupportedOperation", "`HostUserId`"},
		{"CreateSession", with(userOK, "ProjectId", "cap-x"), car.CodeUnknownParameter, "`ProjectId`"},
		{"DestroySession", map[string]any{}, car.CodeMissingParameter, "`UserId`"},
		{"DescribeConcurrentCount", map[string]any{"ProjectId": "cap-nope"}, car.CodeInvalidParameterValue, "`ProjectId`"},
		{"DescribeConcurrentCount", map[string]any{"ApplicationCategory": "TV"}, car.CodeInvalidParameterValue, "`ApplicationCategory`"},
		{"StartPublishStream", map[string]any{"UserId": "u", "PublishStreamArgs": "a=%zz"}, car.CodeInvalidParameterValue, "`PublishStreamArgs`"},
		{"StartPublishStreamWithURL", map[string]any{"UserId": "u"}, car.CodeMissingParameter, "`PublishStreamURL`"},
		{"StartPublishStreamWithURL", map[string]any{"UserId": "u", "PublishStreamURL": "https://x/live"}, car.CodeInvalidParameterValue, "`PublishStreamURL`"},
		{"StopPublishStream", map[string]any{"UserId": ""}, car.CodeMissingParameter, "`UserId`"},
		{"StopPublishStream", map[string]any{"UserId": []string{"u"}}, car.CodeInvalidParameterValue, "`UserId`"},
	}
	seen := make(map[string]bool)
	for _, tc := range cases {
		err := c.Call(ctx, tc.action, tc.params, nil)
		var apiErr *car.APIError
		if !errors.As(err, &apiErr) {
			t.Errorf("%s %v: want an *APIError, got %v", tc.action, tc.params, err)
			continue
		}
		if apiErr.Code != tc.code || !strings.Contains(apiErr.Message, tc.field) {
			t.Errorf("%s %v: got %s: %s; want %s naming %s", tc.action, tc.params, apiErr.Code, apiErr.Message, tc.code, tc.field)
		}
		if apiErr.HTTPStatus != 200 || len(apiErr.RequestId) != 36 || seen[apiErr.RequestId] {
			t.Errorf("%s: status %d, RequestId %q: want 200 and a fresh UUID", tc.action, apiErr.HTTPStatus, apiErr.RequestId)
		}
		seen[apiErr.RequestId] = true
	}
	// The server goes on serving, and nothing was locked by the bad calls.
	if total, running := counts(t, c, ""); total != cartest.DefaultPackSize || running != 0 {
		t.Errorf("after bad requests: Total %d Running %d, want %d 0", total, running, cartest.DefaultPackSize)
	}
}

func TestEnvelopeErrors(t *testing.T) {
	srv, _ := setup(t)
	cases := []struct {
		action, version, body string
		code, says            string
	}{
		{"ApplyConcurrent", car.Version, `{"UserId":`, car.CodeJSONParseError, "not valid JSON"},
		{"ApplyConcurrent", car.Version, `[1,2]`, car.CodeJSONParseError, "JSON object"},
		{"ApplyConcurrent", car.Version, `{"UserId":"u"} {}`, car.CodeJSONParseError, "single JSON object"},
		{"ApplyConcurrent", "2019-01-01", `{}`, car.CodeNoSuchVersion, "2019-01-01"},
		{"DescribeInstances", car.Version, `{}`, car.CodeInvalidAction, "DescribeInstances"},
		{"ResetConcurrentPackages", car.Version, `{}`, car.CodeInvalidAction, "ResetConcurrentPackages"},
	}
	for _, tc := range cases {
		got := rawCall(t, srv, tc.action, tc.version, tc.body, "")
		if got.Status != 200 || got.Code != tc.code || !strings.Contains(got.Message, tc.says) || len(got.RequestID) != 36 {
			t.Errorf("%s %s %s: got %+v, want HTTP 200 %s saying %q", tc.action, tc.version, tc.body, got, tc.code, tc.says)
		}
	}
	// A good answer is the same envelope, without Error.
	got := rawCall(t, srv, "DescribeConcurrentCount", car.Version, `{}`, "")
	if got.Code != "" || !strings.Contains(got.Body, `"Total":3,"Running":0,"RequestId":"`) {
		t.Errorf("DescribeConcurrentCount: %s", got.Body)
	}
}

// TestNodeSDKSignature: the Node SDK signs the host without its port.
func TestNodeSDKSignature(t *testing.T) {
	srv, _ := setup(t)
	got := rawCall(t, srv, "DescribeConcurrentCount", car.Version, `{"ProjectId":"cap-cartest1"}`, "127.0.0.1")
	if got.Code != "" {
		t.Fatalf("signed without the port: %+v", got)
	}
	got = rawCall(t, srv, "DescribeConcurrentCount", car.Version, `{}`, "example.com")
	if got.Code != car.CodeSignatureFailure {
		t.Fatalf("signed for another host: %+v", got)
	}
}

func TestCredentials(t *testing.T) {
	ctx := t.Context()
	t.Run("random by default, redacted", func(t *testing.T) {
		a, b := cartest.Start(t), cartest.Start(t)
		ca, cb := a.Credentials(), b.Credentials()
		if ca.SecretId == cb.SecretId || ca.SecretKey == cb.SecretKey || len(ca.SecretKey) < 32 || !strings.HasPrefix(ca.SecretId, "AKID") {
			t.Fatalf("credentials are not random: %v %v", ca, cb)
		}
		for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", ca, ca, ca, ca)} {
			if strings.Contains(s, ca.SecretKey) {
				t.Fatalf("the SecretKey shows in %s", s)
			}
		}
		if _, err := a.Client().DescribeConcurrentCount(ctx, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithCredentials("AKIDtest0000000001", "right-key"))
		c := srv.Client(car.WithCredentials(car.StaticCredentials("AKIDtest0000000001", "wrong-key")), car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		_, err := c.DescribeConcurrentCount(ctx, nil)
		if code(err) != car.CodeSignatureFailure || !car.IsAuth(err) {
			t.Fatalf("got %v", err)
		}
		c = srv.Client(car.WithCredentials(car.StaticCredentials("AKIDunknown0000001", "right-key")), car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		if _, err := c.DescribeConcurrentCount(ctx, nil); code(err) != car.CodeSecretIDNotFound {
			t.Fatalf("unknown SecretId: got %v", err)
		}
	})
	t.Run("temporary", func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithTemporaryCredentials("AKIDtemp0000000001", "temp-key", "temp-token"))
		if _, err := srv.Client().DescribeConcurrentCount(ctx, nil); err != nil {
			t.Fatalf("with the token: %v", err)
		}
		noToken := srv.Client(car.WithCredentials(car.StaticCredentials("AKIDtemp0000000001", "temp-key")), car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		if _, err := noToken.DescribeConcurrentCount(ctx, nil); code(err) != car.CodeTokenFailure {
			t.Fatalf("without the token: got %v", err)
		}
		wrong := srv.Client(car.WithCredentials(car.TokenCredentials("AKIDtemp0000000001", "temp-key", "other")), car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		if _, err := wrong.DescribeConcurrentCount(ctx, nil); code(err) != car.CodeTokenFailure {
			t.Fatalf("wrong token: got %v", err)
		}
	})
	t.Run("several", func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithCredentials("AKIDfirst000000001", "k1"), cartest.WithCredentials("AKIDsecond00000001", "k2"))
		if srv.Credentials().SecretId != "AKIDfirst000000001" {
			t.Fatalf("Credentials is %v, want the first one", srv.Credentials())
		}
		second := srv.Client(car.WithCredentials(car.StaticCredentials("AKIDsecond00000001", "k2")))
		if _, err := second.DescribeConcurrentCount(ctx, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRateLimits(t *testing.T) {
	ctx := t.Context()
	// Three calls within a second cross at most one window boundary, so
	// one of them meets a used-up window of 1.
	_, c := setup(t, cartest.WithRateLimit("DescribeConcurrentCount", 1))
	throttled := 0
	for range 3 {
		if _, err := c.DescribeConcurrentCount(ctx, nil); car.IsThrottled(err) {
			throttled++
			if !strings.Contains(err.Error(), "DescribeConcurrentCount allows 1 requests per second") {
				t.Errorf("message: %v", err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if throttled == 0 {
		t.Error("3 calls at a limit of 1/s: none was throttled")
	}
	// The limit is per action.
	apply(t, c, "u", cartest.DefaultProjectId)

	// Load tests turn the limits off.
	_, c = setup(t, cartest.WithoutRateLimits())
	for i := range 150 {
		if _, err := c.DescribeConcurrentCount(ctx, nil); err != nil {
			t.Fatalf("call %d without limits: %v", i, err)
		}
	}
}

// The documented limits, per action and second: 100 for ApplyConcurrent,
// CreateSession and DestroySession, 20 for the others. The fake clock of a
// synctest bubble keeps every call of a burst in one second.
func TestDefaultRateLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithListener(memnet.Listen("car")))
		c := srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		defer c.CloseIdleConnections()
		ctx := t.Context()
		calls := map[string]func() error{
			"ApplyConcurrent": func() error {
				_, err := c.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "u", UserIp: ip, ProjectId: cartest.DefaultProjectId})
				return err
			},
			"CreateSession": func() error {
				_, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "u", UserIp: ip})
				return err
			},
			"DestroySession": func() error {
				_, err := c.DestroySession(ctx, &car.DestroySessionInput{UserId: "nobody"})
				return err
			},
			"DescribeConcurrentCount": func() error {
				_, err := c.DescribeConcurrentCount(ctx, nil)
				return err
			},
			"StopPublishStream": func() error {
				_, err := c.StopPublishStream(ctx, &car.StopPublishStreamInput{UserId: "nobody"})
				return err
			},
		}
		limits := map[string]int{"ApplyConcurrent": 100, "CreateSession": 100, "DestroySession": 100, "DescribeConcurrentCount": 20, "StopPublishStream": 20}
		for _, action := range []string{"ApplyConcurrent", "CreateSession", "DestroySession", "DescribeConcurrentCount", "StopPublishStream"} {
			time.Sleep(time.Second) // a fresh window
			call, limit := calls[action], limits[action]
			for i := range limit {
				if err := call(); car.IsThrottled(err) {
					t.Fatalf("%s call %d of the %d allowed in a second: %v", action, i+1, limit, err)
				}
			}
			if err := call(); !car.HasCode(err, car.CodeRequestLimitExceeded) {
				t.Fatalf("%s call %d in a second: %v, want RequestLimitExceeded", action, limit+1, err)
			}
			time.Sleep(time.Second)
			if err := call(); car.IsThrottled(err) {
				t.Fatalf("%s in the next second: %v", action, err)
			}
		}
	})
}

func TestInjectFault(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()
	if err := srv.InjectFault("Nope", cartest.Fault{Code: "InternalError"}); err == nil {
		t.Error("a fault for an unknown action was accepted")
	}
	if err := srv.InjectFault("ApplyConcurrent", cartest.Fault{Code: car.CodeInitialization, Message: "warming up", Times: 2}); err != nil {
		t.Fatal(err)
	}
	in := &car.ApplyConcurrentInput{UserId: "u", UserIp: ip, ProjectId: cartest.DefaultProjectId}
	for range 2 {
		if _, err := c.ApplyConcurrent(ctx, in); code(err) != car.CodeInitialization || !strings.Contains(err.Error(), "warming up") {
			t.Fatalf("got %v", err)
		}
	}
	if _, err := c.ApplyConcurrent(ctx, in); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
	// A dropped connection and an HTTP status.
	srv.InjectFault("DescribeConcurrentCount", cartest.Fault{Drop: true})
	if _, err := c.DescribeConcurrentCount(ctx, nil); err == nil {
		t.Fatal("a dropped call succeeded")
	}
	srv.InjectFault("DescribeConcurrentCount", cartest.Fault{Code: "InternalError", HTTPStatus: 503})
	var apiErr *car.APIError
	if _, err := c.DescribeConcurrentCount(ctx, nil); !errors.As(err, &apiErr) || apiErr.HTTPStatus != 503 {
		t.Fatalf("got %v", err)
	}
	// apiserver records a dropped call after it closed the connection:
	// Close waits for every handler, so the log is complete after it.
	srv.Close()
	var dropped int
	for _, e := range srv.Events() {
		if e.Kind == cartest.EventCall && e.Code == "(dropped)" {
			dropped++
		}
	}
	if dropped != 1 {
		t.Errorf("the log has %d dropped calls, want 1", dropped)
	}
}
