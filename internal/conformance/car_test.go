package conformance

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// officialCAR is the official Go SDK's generic client, set up for a local
// server as the official-SDK reference (§3.2) says: the endpoint is host:port
// without a scheme, and the scheme is HTTP.
type officialCAR struct {
	t      *testing.T
	client *common.Client
}

func newOfficialCAR(t *testing.T, srv *cartest.Server, cred common.CredentialIface, tune func(*profile.ClientProfile)) officialCAR {
	t.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqTimeout = 10
	if tune != nil {
		tune(cpf)
	}
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	c := common.NewCommonClient(cred, "ap-guangzhou", cpf).WithHttpTransport(transport)
	return officialCAR{t, c}
}

// send calls action with params and returns the Response object, or the
// SDK's error.
func (o officialCAR) send(action string, params map[string]any) (map[string]any, error) {
	o.t.Helper()
	req := tchttp.NewCommonRequest("car", "2022-01-10", action)
	if err := req.SetActionParameters(params); err != nil {
		o.t.Fatalf("%s: SetActionParameters: %v", action, err)
	}
	resp := tchttp.NewCommonResponse()
	if err := o.client.Send(req, resp); err != nil {
		return nil, err
	}
	var body struct{ Response map[string]any }
	if err := json.Unmarshal(resp.GetBody(), &body); err != nil {
		o.t.Fatalf("%s: the body does not parse: %v: %s", action, err, resp.GetBody())
	}
	if id, _ := body.Response["RequestId"].(string); len(id) != 36 {
		o.t.Fatalf("%s: no RequestId in %s", action, resp.GetBody())
	}
	return body.Response, nil
}

func (o officialCAR) must(action string, params map[string]any) map[string]any {
	o.t.Helper()
	out, err := o.send(action, params)
	if err != nil {
		o.t.Fatalf("%s %v: %v", action, params, err)
	}
	return out
}

// sdkError returns the official SDK's typed error, failing if err is not one.
func sdkError(t *testing.T, err error) *tcerr.TencentCloudSDKError {
	t.Helper()
	var e *tcerr.TencentCloudSDKError
	if !errors.As(err, &e) {
		t.Fatalf("want a *TencentCloudSDKError, got %T %v", err, err)
	}
	return e
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, code)
	}
	e := sdkError(t, err)
	if e.Code != code || e.Message == "" || len(e.RequestId) != 36 {
		t.Fatalf("%s: got %v, want %s with a message and a RequestId", what, err, code)
	}
}

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestOfficialSDKEveryAction drives the CAR lifecycle and the other four
// actions through the official SDK, checking each parsed answer and the
// model behind it.
func TestOfficialSDKEveryAction(t *testing.T) {
	srv := cartest.Start(t, cartest.WithManualClock(start))
	cred := srv.Credentials()
	o := newOfficialCAR(t, srv, common.NewCredential(cred.SecretId, cred.SecretKey), nil)
	user := map[string]any{"UserId": "sdk-user", "UserIp": "203.0.113.7"}

	o.must("ApplyConcurrent", map[string]any{"UserId": "sdk-user", "UserIp": "203.0.113.7", "ProjectId": cartest.DefaultProjectId})
	created := o.must("CreateSession", user)
	serverSession, _ := created["ServerSession"].(string)
	ss, err := cartest.ParseServerSession(serverSession)
	if err != nil {
		t.Fatalf("CreateSession's ServerSession: %v", err)
	}
	// The ServerSession the official SDK got opens the client stream.
	stream, err := srv.DialStream(t.Context(), serverSession)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if stream.ConcurrencyId() != ss.ConcurrencyId {
		t.Fatalf("stream on %s, session for %s", stream.ConcurrencyId(), ss.ConcurrencyId)
	}

	count := o.must("DescribeConcurrentCount", map[string]any{"ProjectId": cartest.DefaultProjectId})
	if count["Total"] != 3.0 || count["Running"] != 1.0 {
		t.Fatalf("DescribeConcurrentCount: %v", count)
	}
	if all := o.must("DescribeConcurrentCount", map[string]any{}); all["Total"] != 3.0 || all["Running"] != 1.0 {
		t.Fatalf("DescribeConcurrentCount of the account: %v", all)
	}

	o.must("StartPublishStream", map[string]any{"UserId": "sdk-user", "PublishStreamArgs": "bar=1&foo=2"})
	if got, _ := srv.User("sdk-user"); got.Push == nil || !strings.HasSuffix(got.Push.URL, "/live/sdk-user?bar=1&foo=2") {
		t.Fatalf("after StartPublishStream: %v", got)
	}
	o.must("StartPublishStreamWithURL", map[string]any{"UserId": "sdk-user", "PublishStreamURL": "rtmp://192.0.2.1:1935/live/my_live"})
	if got, _ := srv.User("sdk-user"); got.Push == nil || got.Push.URL != "rtmp://192.0.2.1:1935/live/my_live" {
		t.Fatalf("after StartPublishStreamWithURL: %v", got)
	}
	o.must("StopPublishStream", map[string]any{"UserId": "sdk-user"})
	if got, _ := srv.User("sdk-user"); got.Push != nil {
		t.Fatalf("after StopPublishStream: %v", got)
	}

	o.must("DestroySession", map[string]any{"UserId": "sdk-user"})
	<-stream.Done()
	if got, _ := srv.User("sdk-user"); got.State != cartest.StateCleanup {
		t.Fatalf("after DestroySession: %v", got)
	}
	srv.Advance(cartest.DefaultCleanupDelay)
	if count := o.must("DescribeConcurrentCount", map[string]any{"ProjectId": cartest.DefaultProjectId}); count["Running"] != 0.0 {
		t.Fatalf("after the cleanup: %v", count)
	}
	var calls int
	for _, e := range srv.Events() {
		if e.Kind == cartest.EventCall {
			calls++
			if e.Code != "" {
				t.Errorf("the server answered the official SDK with an error: %v", e)
			}
		}
	}
	if calls != 9 {
		t.Errorf("the server saw %d calls, want 9", calls)
	}
}

// TestOfficialSDKErrors: every error arrives as the official typed error
// with CAR's code.
func TestOfficialSDKErrors(t *testing.T) {
	srv := cartest.Start(t, cartest.WithManualClock(start),
		cartest.WithPack(cartest.Pack{PackId: "one", Size: 1, Projects: []string{cartest.DefaultProjectId}}),
		cartest.WithRateLimit("DescribeConcurrentCount", 1))
	cred := srv.Credentials()
	o := newOfficialCAR(t, srv, common.NewCredential(cred.SecretId, cred.SecretKey), nil)
	apply := func(user string) error {
		_, err := o.send("ApplyConcurrent", map[string]any{"UserId": user, "UserIp": "203.0.113.7", "ProjectId": cartest.DefaultProjectId})
		return err
	}
	if err := apply("first"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "a second user", apply("second"), "ResourceNotFound.NoIdle")
	if _, err := o.send("CreateSession", map[string]any{"UserId": "first", "UserIp": "203.0.113.7"}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.send("DestroySession", map[string]any{"UserId": "first"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "a user whose session is being destroyed", apply("first"), "UnsupportedOperation.Stopping")
	_, err := o.send("CreateSession", map[string]any{"UserId": "second", "UserIp": "203.0.113.7"})
	wantCode(t, "CreateSession without a lock", err, "FailedOperation.LockTimeout")
	_, err = o.send("ApplyConcurrent", map[string]any{"UserId": "x", "UserIp": "203.0.113.7"})
	wantCode(t, "no ProjectId", err, "MissingParameter")
	if e := sdkError(t, err); !strings.Contains(e.Message, "ProjectId") {
		t.Fatalf("the message does not name the field: %v", e)
	}
	_, err = o.send("DestroySession", map[string]any{"UserId": "x", "Force": true})
	wantCode(t, "an unknown field", err, "UnknownParameter")
	_, err = o.send("StopPublishStream", map[string]any{"UserId": "nobody"})
	wantCode(t, "a push without a session", err, "ResourceNotFound.SessionNotFound")
	_, err = o.send("DescribeConcurrentPackages", map[string]any{})
	wantCode(t, "an action of the international site only", err, "InvalidAction")

	// Three calls within a second at 1/s: at least one is throttled.
	throttled := 0
	for range 3 {
		if _, err := o.send("DescribeConcurrentCount", map[string]any{}); err != nil {
			wantCode(t, "over the rate limit", err, "RequestLimitExceeded")
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("no call was throttled")
	}

	wrong := newOfficialCAR(t, srv, common.NewCredential(cred.SecretId, "not-the-key"), nil)
	_, err = wrong.send("ApplyConcurrent", map[string]any{"UserId": "x", "UserIp": "203.0.113.7", "ProjectId": cartest.DefaultProjectId})
	wantCode(t, "a wrong SecretKey", err, "AuthFailure.SignatureFailure")
}

// TestOfficialSDKTokenCredential: temporary credentials send X-TC-Token.
func TestOfficialSDKTokenCredential(t *testing.T) {
	srv := cartest.Start(t, cartest.WithManualClock(start), cartest.WithTemporaryCredentials("AKIDconformanceTemp1", "temp-key", "temp-session-token"))
	o := newOfficialCAR(t, srv, common.NewTokenCredential("AKIDconformanceTemp1", "temp-key", "temp-session-token"), nil)
	count := o.must("DescribeConcurrentCount", map[string]any{"ProjectId": cartest.DefaultProjectId})
	if count["Total"] != 3.0 {
		t.Fatalf("DescribeConcurrentCount: %v", count)
	}
	for name, cred := range map[string]*common.Credential{
		"no token":    common.NewCredential("AKIDconformanceTemp1", "temp-key"),
		"wrong token": common.NewTokenCredential("AKIDconformanceTemp1", "temp-key", "stale-token"),
	} {
		_, err := newOfficialCAR(t, srv, cred, nil).send("DescribeConcurrentCount", map[string]any{})
		wantCode(t, name, err, "AuthFailure.TokenFailure")
	}
}

// TestOfficialSDKRateLimitRetry: the official SDK's own retry of
// RequestLimitExceeded (opt-in) works against an injected throttle.
func TestOfficialSDKRateLimitRetry(t *testing.T) {
	srv := cartest.Start(t, cartest.WithManualClock(start))
	cred := srv.Credentials()
	o := newOfficialCAR(t, srv, common.NewCredential(cred.SecretId, cred.SecretKey), func(cpf *profile.ClientProfile) {
		cpf.RateLimitExceededMaxRetries = 1
		cpf.RateLimitExceededRetryDuration = profile.ConstantDurationFunc(time.Millisecond)
	})
	if err := srv.InjectFault("ApplyConcurrent", cartest.Fault{Code: "RequestLimitExceeded", Message: "slow down"}); err != nil {
		t.Fatal(err)
	}
	o.must("ApplyConcurrent", map[string]any{"UserId": "u", "UserIp": "203.0.113.7", "ProjectId": cartest.DefaultProjectId})
	var codes []string
	for _, e := range srv.Events() {
		if e.Kind == cartest.EventCall {
			codes = append(codes, e.Action+":"+e.Code)
		}
	}
	if strings.Join(codes, " ") != "ApplyConcurrent:RequestLimitExceeded ApplyConcurrent:" {
		t.Fatalf("the server saw %v", codes)
	}
	if got, ok := srv.User("u"); !ok || got.State != cartest.StateLocked {
		t.Fatalf("after the retried call: %v", got)
	}
}
