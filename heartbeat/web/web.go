// Package web serves the heartbeat's browser client: heartbeat.js (the
// client of the tcc.heartbeat protocol, one ES module without dependencies),
// tcgsdk.js (the glue that wires TCGSDK, the heartbeat and a
// car.SessionManager backend in a few lines) and their TypeScript
// declarations. The files are embedded in the binary; no build step.
//
// Mount the Handler under any prefix; it serves the files by their base
// name:
//
//	mux.Handle("/heartbeat/web/", web.Handler())
//
//	<script type="module">
//	  import { startCAR } from "/heartbeat/web/tcgsdk.js";
//	  startCAR({ init: { mount: "game" }, startURL: "/api/start", heartbeatURL: "/heartbeat" });
//	</script>
//
// Caching: every response carries a strong ETag (a hash of the content) and
// Cache-Control "no-cache", so browsers keep the file and revalidate it
// with If-None-Match on each load (a 304 without body while it is
// unchanged): a new SDK version reaches every page at once. Set
// [WithMaxAge] to let browsers use their copy without asking for a while.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed heartbeat.js heartbeat.d.ts tcgsdk.js tcgsdk.d.ts
var files embed.FS

// Names lists the files the Handler serves.
func Names() []string { return []string{"heartbeat.js", "heartbeat.d.ts", "tcgsdk.js", "tcgsdk.d.ts"} }

type file struct {
	body        []byte
	etag        string
	contentType string
}

// Option configures the Handler.
type Option func(*config) error

type config struct {
	maxAge time.Duration
}

// WithMaxAge lets browsers use their copy for d without revalidating
// (Cache-Control "public, max-age=…"; default 0: "no-cache", always
// revalidate). d must be between 0 and a year.
func WithMaxAge(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || d > 365*24*time.Hour {
			return fmt.Errorf("web: WithMaxAge: must be between 0 and 8760h, got %v", d)
		}
		c.maxAge = d
		return nil
	}
}

// Handler returns the http.Handler that serves the client files with the
// default caching (ETag, "no-cache"). GET and HEAD only; an unknown name is
// 404.
func Handler() http.Handler {
	h, err := NewHandler()
	if err != nil {
		panic(err) // the files are embedded: unreachable
	}
	return h
}

// NewHandler is Handler with options.
func NewHandler(opts ...Option) (http.Handler, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("web: nil Option")
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	names := Names()
	h := &handler{files: make(map[string]file, len(names)), cacheControl: "no-cache"}
	if c.maxAge > 0 {
		h.cacheControl = "public, max-age=" + strconv.FormatInt(int64(c.maxAge/time.Second), 10)
	}
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("web: embedded %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		ct := "text/javascript; charset=utf-8"
		if strings.HasSuffix(name, ".d.ts") {
			ct = "application/typescript; charset=utf-8"
		}
		h.files[name] = file{body: b, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`, contentType: ct}
	}
	return h, nil
}

type handler struct {
	files        map[string]file
	cacheControl string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "web: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f, ok := h.files[path.Base(r.URL.Path)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("ETag", f.etag)
	hd.Set("Cache-Control", h.cacheControl)
	hd.Set("Content-Type", f.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(f.body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(f.body)
}

// etagMatches implements If-None-Match's weak comparison: a list of tags,
// or "*".
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
