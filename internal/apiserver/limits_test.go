package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/internal/tc3"
)

func TestStrictJSON(t *testing.T) {
	cases := []struct {
		body string
		want strictIssue
	}{
		{`{"Name":"ok","Count":1}`, strictOK},
		{`{"Name":"\u00e9\ud83d\ude00"}`, strictOK},
		{`{"a":{"b":1},"c":{"b":2},"d":[{"b":1},{"b":1}]}`, strictOK}, // the same key in different objects
		{"{\"Name\":\"\xff\"}", strictInvalidUTF8},
		{"{\"Name\":\"\xed\xa0\x80\"}", strictInvalidUTF8}, // a surrogate encoded in UTF-8
		{`{"Name":"\ud800"}`, strictLoneSurrogate},
		{`{"Name":"\udc00\ud800"}`, strictLoneSurrogate},
		{`{"Name":"\ud800\u0041"}`, strictLoneSurrogate},
		{`{"Name":"a","Name":"b"}`, strictDuplicateKey},
		{`{"Name":"a","N\u0061me":"b"}`, strictDuplicateKey},
		{`{"x":[{"k":1,"k":2}]}`, strictDuplicateKey}, // at any depth
		{`{"x":{"y":{"z":1,"z":1}}}`, strictDuplicateKey},
		{`{"a":"\"Name\"","Name":"x"}`, strictOK}, // keys inside strings are not keys
	}
	// a large object: sorted, not compared pairwise
	var big strings.Builder
	big.WriteString(`{`)
	for i := range 1000 {
		big.WriteString(`"k` + strconv.Itoa(i) + `":1,`)
	}
	cases = append(cases, struct {
		body string
		want strictIssue
	}{big.String() + `"k500":2}`, strictDuplicateKey}, struct {
		body string
		want strictIssue
	}{big.String() + `"k1000":2}`, strictOK})
	for _, c := range cases {
		if !json.Valid([]byte(c.body)) && c.want != strictInvalidUTF8 {
			t.Fatalf("case %q is not JSON", c.body)
		}
		if got, _ := checkStrict([]byte(c.body)); got != c.want {
			t.Errorf("%.60q: issue %d, want %d", c.body, got, c.want)
		}
	}
	// Through Decode, each is InvalidParameter.JsonParseError naming why.
	r := &Request{Body: []byte(`{"Name":"a","Name":"b"}`)}
	var in echoIn
	if e := r.Decode(&in); e == nil || e.Code != "InvalidParameter.JsonParseError" || !strings.Contains(e.Message, `"Name" appears twice`) {
		t.Fatalf("duplicate: %v", e)
	}
	r.Body = []byte("{\"Name\":\"\xc3\"}")
	if e := r.Decode(&in); e == nil || e.Code != "InvalidParameter.JsonParseError" || !strings.Contains(e.Message, "UTF-8") {
		t.Fatalf("invalid UTF-8: %v", e)
	}
}

// FuzzStrictJSON: on any body encoding/json accepts, checkStrict agrees
// with a reference built on json.Decoder's tokens: invalid UTF-8 exactly
// when utf8.Valid says so, a duplicate exactly when two keys of one object
// decode to the same string.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[{"a":1,"a":2}]}`, `{"\u0061":1,"a":2}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `[{"a":{}},{"a":{}}]`, `{"k":"\\\"","k\\":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		issue, key := checkStrict(body)
		if utf8.Valid(body) == (issue == strictInvalidUTF8) {
			t.Fatalf("issue %d, utf8.Valid %v", issue, utf8.Valid(body))
		}
		if issue == strictInvalidUTF8 || issue == strictLoneSurrogate {
			return
		}
		dup, dupKey := referenceDuplicate(t, body)
		if dup != (issue == strictDuplicateKey) {
			t.Fatalf("checkStrict says %d (%q), the reference says duplicate=%v (%q)", issue, key, dup, dupKey)
		}
	})
}

func referenceDuplicate(t *testing.T, body []byte) (bool, string) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber() // numbers out of float64 range are valid JSON
	type frame struct {
		keys     map[string]bool
		object   bool
		expectKy bool
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return false, ""
		}
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.expectKy
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.expectKy = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, object: v == '{', expectKy: v == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].expectKy = true
				}
			}
			continue
		case string:
			if isKey {
				if top.keys[v] {
					return true, v
				}
				top.keys[v] = true
				top.expectKy = false
				continue
			}
		}
		if top != nil && top.object {
			top.expectKy = true
		}
	}
}

func TestEventRing(t *testing.T) {
	s := New(Config{Service: "demo", Version: "v", Clock: clock.NewManual(time.Unix(0, 0)), MaxEvents: 2500})
	defer s.Clock().Close()
	if got := len(s.Events()); got != 0 {
		t.Fatalf("%d events in a new log", got)
	}
	for i := range 100 {
		s.Record(Event{Kind: "k", Detail: strconv.Itoa(i)})
	}
	if n := blocksAllocated(s); n != 1 {
		t.Fatalf("a log of 100 events holds %d blocks", n)
	}
	for i := 100; i < 7001; i++ {
		s.Record(Event{Kind: "k", Detail: strconv.Itoa(i)})
	}
	ev := s.Events()
	if len(ev) != 2500 || ev[0].Detail != "4501" || ev[2499].Detail != "7000" {
		t.Fatalf("%d events, from %s to %s; want 2500, 4501 to 7000", len(ev), ev[0].Detail, ev[len(ev)-1].Detail)
	}
	for i := 1; i < len(ev); i++ {
		if a, _ := strconv.Atoi(ev[i-1].Detail); strconv.Itoa(a+1) != ev[i].Detail {
			t.Fatalf("out of order at %d: %s then %s", i, ev[i-1].Detail, ev[i].Detail)
		}
	}
	e := Event{Kind: "k", Time: time.Unix(1, 0)}
	if a := testing.AllocsPerRun(1000, func() { s.Record(e) }); a != 0 {
		t.Fatalf("Record allocates %v times once the ring is full", a)
	}
}

func blocksAllocated(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.events.blocks {
		if b != nil {
			n++
		}
	}
	return n
}

// countingBody counts the bytes read from it.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *countingBody) Close() error { return nil }

func demoServer(t *testing.T, limits Limits) *Server {
	t.Helper()
	s := New(Config{Service: "car", Version: "2022-01-10", Clock: clock.New(), Limits: limits})
	t.Cleanup(s.Clock().Close)
	s.AddCredential(id, key, "")
	s.Register(Action{Name: "Ping", Handle: func(_ context.Context, r *Request) (any, error) {
		var in struct{}
		if err := r.Decode(&in); err != nil {
			return nil, err
		}
		return map[string]string{}, nil
	}})
	return s
}

func signedPing(host string, body []byte, secretKey string) *http.Request {
	r := httptest.NewRequest("POST", "http://"+host+"/", bytes.NewReader(body))
	ts := time.Now().Unix()
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", "Ping")
	r.Header.Set("X-TC-Version", "2022-01-10")
	r.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	r.Header.Set("Authorization", tc3.NewSigner("car").Sign(id, secretKey, ts, "application/json", host, body))
	return r
}

func answerCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var env struct {
		Response struct{ Error struct{ Code string } }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("answer %q: %v", rec.Body.String(), err)
	}
	return env.Response.Error.Code
}

// TestBodyReadAfterAuthentication: a body is not read when the request is
// too large by its Content-Length or fails any check that needs no body.
func TestBodyReadAfterAuthentication(t *testing.T) {
	s := demoServer(t, Limits{})
	for _, c := range []struct {
		name   string
		modify func(r *http.Request)
		code   string
	}{
		{"over the limit by Content-Length", func(r *http.Request) { r.ContentLength = MaxRequestBytes + 1 }, "RequestSizeLimitExceeded"},
		{"unknown SecretId", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), id, "AKIDnobody", 1))
		}, "AuthFailure.SecretIdNotFound"},
		{"old timestamp", func(r *http.Request) {
			r.Header.Set("X-TC-Timestamp", strconv.FormatInt(time.Now().Unix()-301, 10))
		}, "AuthFailure.SignatureExpire"},
		{"no Authorization", func(r *http.Request) { r.Header.Del("Authorization") }, "AuthFailure.InvalidAuthorization"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := signedPing("h", []byte("{}"), key)
			body := &countingBody{r: strings.NewReader(strings.Repeat(" ", 1<<20))}
			r.Body, r.ContentLength = body, 1<<20
			c.modify(r)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			if got := answerCode(t, rec); got != c.code {
				t.Fatalf("code %s, want %s", got, c.code)
			}
			if n := body.read.Load(); n != 0 {
				t.Fatalf("%d bytes of the body were read", n)
			}
		})
	}
	t.Run("chunked over the limit", func(t *testing.T) {
		r := signedPing("h", []byte("{}"), key)
		r.Body, r.ContentLength = io.NopCloser(strings.NewReader(strings.Repeat(" ", MaxRequestBytes+1))), -1
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if got := answerCode(t, rec); got != "RequestSizeLimitExceeded" {
			t.Fatalf("code %s", got)
		}
	})
}

// TestBodyBudget: large bodies past the budget wait in line and are
// refused with RequestLimitExceeded after BodyWait; small ones never wait.
func TestBodyBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := demoServer(t, Limits{BodyBytesInFlight: MaxRequestBytes, BodyWait: time.Second})
		// A large body that arrives slowly holds the whole budget.
		pr, pw := io.Pipe()
		big := signedPing("h", nil, key)
		big.Body, big.ContentLength = pr, MaxRequestBytes
		go s.ServeHTTP(httptest.NewRecorder(), big)
		synctest.Wait()

		second := signedPing("h", nil, key)
		second.Body, second.ContentLength = io.NopCloser(strings.NewReader(strings.Repeat(" ", SmallBody+1))), SmallBody+1
		rec := httptest.NewRecorder()
		start := time.Now()
		s.ServeHTTP(rec, second)
		if got := answerCode(t, rec); got != "RequestLimitExceeded" || time.Since(start) != time.Second {
			t.Fatalf("a large body past the budget: %s after %v, want RequestLimitExceeded after 1s", got, time.Since(start))
		}
		small := signedPing("h", []byte(`{}`), key)
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, small)
		if got := answerCode(t, rec); got != "" || time.Since(start) != time.Second {
			t.Fatalf("a small body: %q after %v", got, time.Since(start)-time.Second)
		}
		pw.CloseWithError(io.ErrUnexpectedEOF)
		synctest.Wait()
		rec = httptest.NewRecorder()
		second.Body = io.NopCloser(strings.NewReader(strings.Repeat(" ", SmallBody+1)))
		s.ServeHTTP(rec, second)
		if got := answerCode(t, rec); got != "AuthFailure.SignatureFailure" { // read at once this time
			t.Fatalf("after the budget came back: %s", got)
		}
	})
}

// TestTimeouts: on memnet in a bubble, the default timeouts cut a slow
// header, a slow body and an idle connection when they run out, not
// before, and never a hijacked connection.
func TestTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limits := Limits{}.WithDefaults()
		s := demoServer(t, limits)
		mux := http.NewServeMux()
		mux.Handle("/", s)
		hijacked := make(chan net.Conn, 1)
		defer func() {
			select {
			case c := <-hijacked:
				c.Close()
			default:
			}
		}()
		mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			go func() { io.Copy(c, c); c.Close() }() // echoes until the client closes
			hijacked <- c
		})
		l := memnet.Listen("t")
		ln := limits.Listener(l)
		hs := limits.HTTPServer(mux, nil, ln)
		go hs.Serve(ln)
		defer hs.Close()

		closedAfter := func(c net.Conn) time.Duration {
			start := time.Now()
			io.Copy(io.Discard, c)
			return time.Since(start)
		}
		dial := func() net.Conn {
			c, err := l.DialContext(context.Background(), "", "")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		// A header that never ends.
		c := dial()
		go c.Write([]byte("POST / HTTP/1.1\r\nHost: h\r\n"))
		if d := closedAfter(c); d != limits.ReadHeaderTimeout {
			t.Errorf("a slow header was cut after %v, want %v", d, limits.ReadHeaderTimeout)
		}
		// A body that never ends: authenticated, so it is read.
		c = dial()
		r := signedPing("h", []byte("{}"), key)
		r.ContentLength = 1000
		go func() {
			var b bytes.Buffer
			r.Header.Write(&b)
			c.Write([]byte("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n" + b.String() + "\r\n{"))
		}()
		if d := closedAfter(c); d != limits.ReadTimeout {
			t.Errorf("a slow body was cut after %v, want %v", d, limits.ReadTimeout)
		}
		// An idle keep-alive connection.
		c = dial()
		go func() {
			r := signedPing("h", []byte("{}"), key)
			r.Write(c)
		}()
		br := newResponseReader(c)
		if code := br.status(t); code != 200 {
			t.Fatalf("status %d", code)
		}
		start := time.Now()
		io.Copy(io.Discard, br.r)
		if d := time.Since(start); d != limits.IdleTimeout {
			t.Errorf("an idle connection was cut after %v, want %v", d, limits.IdleTimeout)
		}
		// A hijacked connection outlives every timeout.
		c = dial()
		go c.Write([]byte("GET /hijack HTTP/1.1\r\nHost: h\r\n\r\n"))
		synctest.Wait()
		time.Sleep(10 * limits.ReadTimeout)
		go c.Write([]byte("ping"))
		got := make([]byte, 4)
		hc := <-hijacked
		hijacked <- hc
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
			t.Fatalf("the hijacked connection after %v: %q, %v", 10*limits.ReadTimeout, got, err)
		}
		if n := ln.Open(); n != 1 {
			t.Fatalf("%d connections counted, want the hijacked one", n)
		}
		c.Close()
		synctest.Wait()
		if n := ln.Open(); n != 0 {
			t.Fatalf("%d connections counted after the last closed", n)
		}
	})
}

type responseReader struct{ r *bufioReader }

// newResponseReader reads answers off a raw connection.
func newResponseReader(c net.Conn) *responseReader { return &responseReader{r: newBufio(c)} }

func (rr *responseReader) status(t *testing.T) int {
	t.Helper()
	resp, err := http.ReadResponse(rr.r.Reader, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestListenerEvictsIdle: at the cap, the longest-idle connection makes
// room for a new one; an active one is never closed for it.
func TestListenerEvictsIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		limits := Limits{MaxConns: 3}
		s := demoServer(t, limits)
		l := memnet.Listen("t")
		ln := limits.Listener(l)
		hs := limits.HTTPServer(s, nil, ln)
		go hs.Serve(ln)
		defer hs.Close()
		var conns []net.Conn
		for range 3 { // three connections, each idle after one request
			c, _ := l.DialContext(context.Background(), "", "")
			go signedPing("h", []byte("{}"), key).Write(c)
			if code := newResponseReader(c).status(t); code != 200 {
				t.Fatalf("status %d", code)
			}
			conns = append(conns, c)
			time.Sleep(time.Second) // so that their idle times differ
		}
		// A fourth connection: the first, idle the longest, is closed.
		c, _ := l.DialContext(context.Background(), "", "")
		go signedPing("h", []byte("{}"), key).Write(c)
		if code := newResponseReader(c).status(t); code != 200 {
			t.Fatalf("status %d", code)
		}
		if n, err := conns[0].Read(make([]byte, 1)); err == nil {
			t.Fatalf("the longest-idle connection is still open (%d bytes)", n)
		}
		synctest.Wait()
		if n := ln.Open(); n != 3 {
			t.Fatalf("%d connections open, want 3", n)
		}
	})
}

type bufioReader struct{ *bufio.Reader }

func newBufio(c net.Conn) *bufioReader { return &bufioReader{bufio.NewReader(c)} }

// The shell's connection applies a read deadline when a Read starts, or
// at once while one is blocked, so that only the last of several set in
// a row reaches the socket: a Read still sees the deadline in force, a
// deadline set while it blocks ends it, and a cleared one lets it wait.
func TestConnReadDeadlineAsNetConn(t *testing.T) {
	inner, peer := net.Pipe()
	defer peer.Close()
	c := &limitedConn{Conn: inner, ln: &Listener{}}
	defer c.Close()
	buf := make([]byte, 4)

	c.SetReadDeadline(time.Now().Add(-time.Second)) // past, then cleared, then past again: the last counts
	c.SetReadDeadline(time.Time{})
	c.SetDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after a past deadline: %v, want a deadline error", err)
	}

	c.SetReadDeadline(time.Now().Add(-time.Second)) // past, then cleared: the Read waits for data
	c.SetReadDeadline(time.Time{})
	go peer.Write([]byte("ping"))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("Read after a cleared deadline: %q, %v", buf[:n], err)
	}

	done := make(chan error, 1)
	go func() { _, err := c.Read(buf); done <- err }()
	for { // wait until the Read is in progress
		c.dmu.Lock()
		r := c.reading
		c.dmu.Unlock()
		if r > 0 {
			break
		}
		runtime.Gosched()
	}
	c.SetReadDeadline(time.Now().Add(-time.Second)) // ends the Read in progress
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a blocked Read after a deadline set in the past: %v, want a deadline error", err)
	}
}
