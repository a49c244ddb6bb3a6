package web_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat/web"
)

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestHandlerServesEmbeddedFilesWithCachingHeaders(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/sdk/", web.Handler())
	for _, name := range web.Names() {
		onDisk, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		res := get(t, mux, "GET", "/sdk/"+name, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || !bytes.Equal(body, onDisk) {
			t.Fatalf("GET %s: %d, %d bytes; want 200 and the file's %d bytes", name, res.StatusCode, len(body), len(onDisk))
		}
		etag, cc, ct := res.Header.Get("ETag"), res.Header.Get("Cache-Control"), res.Header.Get("Content-Type")
		if len(etag) < 10 || etag[0] != '"' || cc != "no-cache" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: ETag %q, Cache-Control %q", name, etag, cc)
		}
		wantCT := "text/javascript; charset=utf-8"
		if strings.HasSuffix(name, ".d.ts") {
			wantCT = "application/typescript; charset=utf-8"
		}
		if ct != wantCT {
			t.Errorf("GET %s: Content-Type %q, want %q", name, ct, wantCT)
		}
		// Revalidation: the same tag gets 304 with no body; another tag, the file.
		res = get(t, mux, "GET", "/sdk/"+name, http.Header{"If-None-Match": {`"old", ` + etag}})
		body, _ = io.ReadAll(res.Body)
		if res.StatusCode != http.StatusNotModified || len(body) != 0 || res.Header.Get("ETag") != etag {
			t.Errorf("revalidate %s: %d with %d bytes", name, res.StatusCode, len(body))
		}
		res = get(t, mux, "GET", "/sdk/"+name, http.Header{"If-None-Match": {`"old"`}})
		if res.StatusCode != 200 {
			t.Errorf("stale tag %s: %d, want 200", name, res.StatusCode)
		}
		res = get(t, mux, "HEAD", "/sdk/"+name, nil)
		body, _ = io.ReadAll(res.Body)
		if res.StatusCode != 200 || len(body) != 0 || res.Header.Get("Content-Length") != strconv.Itoa(len(onDisk)) {
			t.Errorf("HEAD %s: %d, %d bytes, Content-Length %q", name, res.StatusCode, len(body), res.Header.Get("Content-Length"))
		}
	}
	// Distinct files have distinct tags.
	a := get(t, mux, "GET", "/sdk/heartbeat.js", nil).Header.Get("ETag")
	b := get(t, mux, "GET", "/sdk/tcgsdk.js", nil).Header.Get("ETag")
	if a == b {
		t.Errorf("heartbeat.js and tcgsdk.js share the ETag %s", a)
	}
}

func TestHandlerRefusesOtherRequests(t *testing.T) {
	h := web.Handler()
	for _, c := range []struct {
		method, target string
		code           int
	}{
		{"GET", "/nothing.js", 404},
		{"GET", "/web.go", 404},
		{"GET", "/heartbeat.test.mjs", 404},
		{"POST", "/heartbeat.js", 405},
		{"DELETE", "/heartbeat.js", 405},
	} {
		if res := get(t, h, c.method, c.target, nil); res.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.target, res.StatusCode, c.code)
		}
	}
}

func TestWithMaxAge(t *testing.T) {
	h, err := web.NewHandler(web.WithMaxAge(10 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if cc := get(t, h, "GET", "/heartbeat.js", nil).Header.Get("Cache-Control"); cc != "public, max-age=600" {
		t.Errorf("Cache-Control %q", cc)
	}
	for _, d := range []time.Duration{-time.Second, 400 * 24 * time.Hour} {
		if _, err := web.NewHandler(web.WithMaxAge(d)); err == nil || !strings.Contains(err.Error(), "WithMaxAge") {
			t.Errorf("WithMaxAge(%v): %v, want an error naming the option", d, err)
		}
	}
	if _, err := web.NewHandler(nil); err == nil {
		t.Errorf("nil option accepted")
	}
}
