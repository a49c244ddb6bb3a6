package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/internal/credential"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/internal/transport"
)

const id, key = "AKIDapiserver", "apiserver-key"

type echoIn struct {
	Name  string `json:"Name"`
	Count int    `json:"Count"`
}

type echoOut struct {
	Greeting  string `json:"Greeting"`
	RequestId string `json:"RequestId"`
}

// setup serves a "demo" service with an Echo action on memnet and returns a
// client for it.
func setup(t *testing.T, rate int) (*Server, *transport.Client) {
	t.Helper()
	s := New(Config{Service: "demo", Version: "2020-01-01", Clock: clock.New()})
	t.Cleanup(s.Clock().Close)
	s.AddCredential(id, key, "")
	s.Register(Action{Name: "Echo", RatePerSecond: rate, Handle: func(_ context.Context, r *Request) (any, error) {
		var in echoIn
		if err := r.Decode(&in); err != nil {
			return nil, err
		}
		if err := Require("Name", in.Name); err != nil {
			return nil, err
		}
		if in.Name == "boom" {
			return nil, errors.New("a bug")
		}
		return map[string]string{"Greeting": "hello " + in.Name}, nil
	}})
	l := memnet.Listen("demo")
	hs := &http.Server{Handler: s}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	c, err := transport.New(transport.Config{Service: "demo", Version: "2020-01-01", Endpoint: "http://demo.test"},
		transport.WithCredentials(credential.NewStatic(id, key)),
		transport.WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: l.DialContext}}),
		transport.WithRetry(transport.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return s, c
}

func code(err error) string {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.Code + ": " + e.Message
	}
	if err != nil {
		return "untyped: " + err.Error()
	}
	return ""
}

func TestServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := setup(t, 0)
		ctx := t.Context()
		var out echoOut
		if err := c.Call(ctx, "Echo", echoIn{Name: "ann"}, &out); err != nil {
			t.Fatal(err)
		}
		if out.Greeting != "hello ann" || len(out.RequestId) != 36 {
			t.Fatalf("got %+v", out)
		}
		cases := []struct {
			action string
			in     any
			want   string
		}{
			{"Echo", map[string]any{"Name": "a", "Extra": 1}, "UnknownParameter: the parameter `Extra` is not recognized"},
			{"Echo", map[string]any{"name": "a"}, "UnknownParameter: the parameter `name` is not recognized (names are case-sensitive: did you mean `Name`?)"},
			{"Echo", map[string]any{"Name": 5}, "InvalidParameterValue: the parameter `Name` must be of type String"},
			{"Echo", map[string]any{}, "MissingParameter: the parameter `Name` is required"},
			{"Nope", nil, "InvalidAction: the action Nope does not exist"},
			{"Echo", map[string]any{"Name": "boom"}, "InternalError: internal error"},
		}
		for _, tc := range cases {
			if got := code(c.Call(ctx, tc.action, tc.in, nil)); !strings.HasPrefix(got, tc.want) {
				t.Errorf("%s %v: got %q, want %q", tc.action, tc.in, got, tc.want)
			}
		}
		events := s.Events()
		if len(events) != 7 || events[0].Code != "" || events[1].Code != "UnknownParameter" || events[0].Kind != "call" {
			t.Fatalf("event log %+v", events)
		}
	})
}

func TestWrongVersionAndService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := setup(t, 0)
		l := memnet.Listen("v")
		hs := &http.Server{Handler: s}
		go hs.Serve(l)
		defer hs.Close()
		hc := &http.Client{Transport: &http.Transport{DialContext: l.DialContext}}
		defer hc.CloseIdleConnections()
		for _, tc := range []struct{ service, version, want string }{
			{"demo", "1999-01-01", "NoSuchVersion"},
			{"other", "2020-01-01", "AuthFailure.SignatureFailure"},
		} {
			c, _ := transport.New(transport.Config{Service: tc.service, Version: tc.version, Endpoint: "http://demo.test"},
				transport.WithCredentials(credential.NewStatic(id, key)), transport.WithHTTPClient(hc))
			if got := code(c.Call(t.Context(), "Echo", echoIn{Name: "x"}, nil)); !strings.HasPrefix(got, tc.want) {
				t.Errorf("service %s version %s: got %q, want %s", tc.service, tc.version, got, tc.want)
			}
		}
	})
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := setup(t, 3)
		var throttled int
		for range 5 {
			if err := c.Call(t.Context(), "Echo", echoIn{Name: "x"}, nil); apierr.IsThrottled(err) {
				throttled++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if throttled != 2 {
			t.Fatalf("%d of 5 calls throttled at 3/s, want 2", throttled)
		}
		time.Sleep(time.Second)
		if err := c.Call(t.Context(), "Echo", echoIn{Name: "x"}, nil); err != nil {
			t.Fatalf("next second: %v", err)
		}
	})
}

func TestFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := setup(t, 0)
		ctx := t.Context()
		if err := s.InjectFault("Nope", Fault{Code: "X"}); err == nil {
			t.Fatal("a fault for an unknown action was accepted")
		}
		s.InjectFault("Echo", Fault{Code: "ResourceUnavailable.Initialization", Message: "warming up", Times: 2})
		s.InjectFault("Echo", Fault{Latency: 3 * time.Second})
		s.InjectFault("Echo", Fault{Drop: true})
		s.InjectFault("Echo", Fault{Code: "InternalError", HTTPStatus: 503})
		for range 2 {
			if got := code(c.Call(ctx, "Echo", echoIn{Name: "x"}, nil)); got != "ResourceUnavailable.Initialization: warming up" {
				t.Fatalf("got %q", got)
			}
		}
		start := time.Now()
		if err := c.Call(ctx, "Echo", echoIn{Name: "x"}, nil); err != nil || time.Since(start) != 3*time.Second {
			t.Fatalf("latency fault: %v after %v", err, time.Since(start))
		}
		if err := c.Call(ctx, "Echo", echoIn{Name: "x"}, nil); err == nil || errors.As(err, new(*apierr.Error)) {
			t.Fatalf("drop fault: err = %v, want a network error", err)
		}
		var e *apierr.Error
		if err := c.Call(ctx, "Echo", echoIn{Name: "x"}, nil); !errors.As(err, &e) || e.HTTPStatus != 503 {
			t.Fatalf("status fault: %v", err)
		}
		if err := c.Call(ctx, "Echo", echoIn{Name: "x"}, nil); err != nil {
			t.Fatalf("faults should be used up: %v", err)
		}
	})
}

func TestEnvelopeShape(t *testing.T) {
	b, err := envelope(map[string]int{"Total": 1}, "rid")
	if err != nil || string(b) != `{"Response":{"Total":1,"RequestId":"rid"}}` {
		t.Fatalf("%s %v", b, err)
	}
	b, _ = envelope(struct{}{}, "rid")
	if string(b) != `{"Response":{"RequestId":"rid"}}` {
		t.Fatalf("%s", b)
	}
	var env struct {
		Response struct {
			Error     struct{ Code, Message string }
			RequestId string
		}
	}
	if err := json.Unmarshal(errorEnvelope(Errorf("A.B", "m \"q\""), "rid"), &env); err != nil || env.Response.Error.Code != "A.B" || env.Response.Error.Message != `m "q"` {
		t.Fatalf("%+v %v", env, err)
	}
}

func TestMux(t *testing.T) {
	s, c := setup(t, 0)
	_ = c
	m := NewMux()
	m.Handle("demo", s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "stream at "+r.URL.Path) }))
	srv := httptest.NewServer(m)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/demo/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "stream at /stream" {
		t.Fatalf("sub-path: %s", b)
	}
	dc, _ := transport.New(transport.Config{Service: "demo", Version: "2020-01-01", Endpoint: srv.URL},
		transport.WithCredentials(credential.NewStatic(id, key)))
	if err := dc.Call(t.Context(), "Echo", echoIn{Name: "x"}, nil); err != nil {
		t.Fatalf("routed by scope: %v", err)
	}
	oc, _ := transport.New(transport.Config{Service: "nosuch", Version: "2020-01-01", Endpoint: srv.URL},
		transport.WithCredentials(credential.NewStatic(id, key)))
	if got := code(oc.Call(t.Context(), "Echo", nil, nil)); !strings.HasPrefix(got, "NoSuchProduct") {
		t.Fatalf("unknown service: %s", got)
	}
	// A malformed Authorization still goes to the service its Credential
	// names, which says what is wrong.
	r, _ := http.NewRequest("POST", srv.URL, strings.NewReader("{}"))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", "Echo")
	r.Header.Set("Authorization", "TC3-HMAC-SHA256 Credential="+id+"/2020-01-01/demo/tc3_request, SignedHeaders=content-type;host;x-a;x-a, Signature="+strings.Repeat("0", 64))
	resp, err = http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "AuthFailure.InvalidAuthorization") || !strings.Contains(string(b), `\"x-a\" twice`) {
		t.Fatalf("malformed Authorization: %s", b)
	}
}

func TestNewRequestID(t *testing.T) {
	a, b := NewRequestID(), NewRequestID()
	if a == b || len(a) != 36 || a[14] != '4' || strings.Count(a, "-") != 4 {
		t.Fatalf("%s %s", a, b)
	}
}

// FuzzDecode: any body decodes or yields one of the documented codes.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"Name":"a","Count":1}`))
	f.Add([]byte(`{"Name":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"Name":"a"} {}`))
	f.Add([]byte(`{"X":`))
	f.Add([]byte(`{"N\u0061me":"a","Count":{"Name":[1,"}"]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in echoIn
		err := (&Request{Body: body}).Decode(&in)
		if err == nil {
			// Accepted: every top-level key is exactly a field name.
			var keys map[string]json.RawMessage
			if json.Unmarshal(body, &keys) == nil {
				for k := range keys {
					if k != "Name" && k != "Count" {
						t.Fatalf("accepted key %q in %q", k, body)
					}
				}
			}
			return
		}
		switch err.Code {
		case "InvalidParameter.JsonParseError", "UnknownParameter", "InvalidParameterValue":
		default:
			t.Fatalf("code %s for %q", err.Code, body)
		}
	})
}

func TestEventLogIsBounded(t *testing.T) {
	s := New(Config{Service: "demo", Clock: clock.NewManual(time.Unix(0, 0)), MaxEvents: 10})
	for i := range 35 {
		s.Record(Event{Kind: "x", Detail: strconv.Itoa(i)})
	}
	ev := s.Events()
	if len(ev) != 10 || ev[0].Detail != "25" || ev[9].Detail != "34" {
		t.Fatalf("kept %d events, first %q last %q; want the latest 10", len(ev), ev[0].Detail, ev[len(ev)-1].Detail)
	}
}

// An injected latency is waited out in full, and cut short when the
// client goes away or the server starts closing.
func TestDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		closing := make(chan struct{})
		r := &Request{Latency: time.Hour, closing: closing}
		start := time.Now()
		if !r.Delay(t.Context()) || time.Since(start) != time.Hour {
			t.Fatalf("a full wait reported cut short, or took %v", time.Since(start))
		}

		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start = time.Now()
		if r.Delay(ctx) || time.Since(start) != time.Second {
			t.Fatalf("the client went away after 1s; Delay waited %v", time.Since(start))
		}

		time.AfterFunc(2*time.Second, func() { close(closing) })
		start = time.Now()
		if r.Delay(t.Context()) || time.Since(start) != 2*time.Second {
			t.Fatalf("the server closed after 2s; Delay waited %v", time.Since(start))
		}
	})
}
