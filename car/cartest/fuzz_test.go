package cartest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/tc3"
)

func FuzzParseServerSession(f *testing.F) {
	f.Add(cartest.ServerSession{Version: 1, StreamURL: "ws://127.0.0.1:1/stream", Token: "t", ConcurrencyId: "c"}.Encode())
	f.Add("e30=")
	f.Add("eyJ2IjoxLCJ1cmwiOiJ3czovL2gvcyIsInRva2VuIjoieCIsImNvbmN1cnJlbmN5IjoiYyJ9")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		ss, err := cartest.ParseServerSession(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cartest: ServerSession") {
				t.Fatalf("the error does not say what it is about: %v", err)
			}
			return
		}
		// What parses encodes to something that parses to the same.
		again, err := cartest.ParseServerSession(ss.Encode())
		if err != nil || again != ss {
			t.Fatalf("round trip: %v %v", again, err)
		}
		if !strings.Contains(ss.String(), "Token: [redacted]") {
			t.Fatalf("the token is not redacted in %s", ss)
		}
	})
}

// FuzzAPI sends arbitrary bodies to every action, signed, straight to the
// handler: every answer is an HTTP 200 envelope with a code of the API (no
// InternalError), and the server goes on answering good calls.
func FuzzAPI(f *testing.F) {
	srv := cartest.Start(f, cartest.WithManualClock(t0), cartest.WithoutRateLimits(), cartest.WithPack(cartest.Pack{PackId: "p", Size: 2, Projects: []string{cartest.DefaultProjectId}}))
	actions := []string{"ApplyConcurrent", "CreateSession", "DestroySession", "DescribeConcurrentCount", "StartPublishStream", "StartPublishStreamWithURL", "StopPublishStream"}
	seeds := []string{
		`{"UserId":"u","UserIp":"203.0.113.7","ProjectId":"cap-cartest1"}`,
		`{"UserId":"u","UserIp":"203.0.113.7","RunMode":"RunWithoutClient","Role":"Player","HostUserId":"u"}`,
		`{"UserId":"u","PublishStreamURL":"rtmp://h/live"}`, `{"UserId":"u","PublishStreamArgs":"a=1"}`,
		`{"ProjectId":"cap-cartest1","ApplicationCategory":"MOBILE"}`, `{"UserId":null}`, `{"UserId":"\u0000"}`,
		`{"UserId":"u","UserId":"v"}`, `{`, `[]`, `null`, ``, `{"UserIp":"::1","UserId":"` + strings.Repeat("x", 300) + `"}`,
	}
	for i := range actions {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	cred := srv.Credentials()
	signer := tc3.NewSigner("car")
	call := func(t *testing.T, action, body string) (int, string, string) {
		req := httptest.NewRequest(http.MethodPost, "http://car.test/", strings.NewReader(body))
		ts := time.Now().Unix()
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", action)
		req.Header.Set("X-TC-Version", car.Version)
		req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("Authorization", signer.Sign(cred.SecretId, cred.SecretKey, ts, "application/json", "car.test", []byte(body)))
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var env struct {
			Response struct {
				Error     *struct{ Code, Message string }
				RequestId string
			}
		}
		if err := json.NewDecoder(bytes.NewReader(rec.Body.Bytes())).Decode(&env); err != nil {
			t.Fatalf("%s %q: the answer is not JSON: %v: %s", action, body, err, rec.Body)
		}
		if env.Response.Error == nil {
			return rec.Code, "", ""
		}
		return rec.Code, env.Response.Error.Code, env.Response.Error.Message
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		action := actions[int(which)%len(actions)]
		status, code, msg := call(t, action, body)
		if status != 200 {
			t.Fatalf("%s %q: HTTP %d", action, body, status)
		}
		if code == car.CodeInternalError || strings.HasPrefix(code, "AuthFailure") {
			t.Fatalf("%s %q: %s: %s", action, body, code, msg)
		}
		if code != "" && msg == "" {
			t.Fatalf("%s %q: %s without a message", action, body, code)
		}
		if status, code, msg := call(t, "DescribeConcurrentCount", `{}`); status != 200 || code != "" {
			t.Fatalf("after %s %q the server answers %d %s %s", action, body, status, code, msg)
		}
		// Keep the model from filling up: release everyone.
		srv.Advance(time.Hour)
	})
}

// FuzzStreamRequest sends arbitrary queries to the stream path: they are
// refused with 400 or 403, never accepted or crashing.
func FuzzStreamRequest(f *testing.F) {
	srv := cartest.Start(f, cartest.WithManualClock(t0))
	f.Add("concurrency=pack-cartest1-1&token=00")
	f.Add("token=&concurrency=")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "http://car.test/stream", nil)
		req.URL.RawQuery = query
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusForbidden {
			t.Fatalf("query %q: HTTP %d %s", query, rec.Code, rec.Body)
		}
	})
}
