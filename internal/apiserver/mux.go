package apiserver

import (
	"net/http"
	"strings"

	"github.com/tcconcurrency/sdk-go/internal/tc3"
)

// Mux serves several services on one address, as examples/refserver does.
//
// API calls go to the service their signature names: the credential scope
// of the Authorization header (the Go SDK signs the service it calls), or
// else the first label of the Host (the Node SDK signs with that, so it is
// pointed at car.localhost:PORT). Requests under /<service>/ go to that
// service's own handler with the prefix removed: the CAR stream lives at
// /car/stream.
type Mux struct {
	apis   map[string]http.Handler
	others map[string]http.Handler
}

// NewMux returns an empty mux.
func NewMux() *Mux {
	return &Mux{apis: make(map[string]http.Handler), others: make(map[string]http.Handler)}
}

// Handle mounts a service: api answers its API calls, other (may be nil)
// its paths under /<service>/.
func (m *Mux) Handle(service string, api, other http.Handler) {
	m.apis[service] = api
	if other != nil {
		m.others[service] = http.StripPrefix("/"+service, other)
	}
}

func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if first, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); ok {
		if h := m.others[first]; h != nil {
			h.ServeHTTP(w, r)
			return
		}
	}
	service := ""
	if a, err := tc3.ParseAuthorization(r.Header.Get("Authorization")); err == nil {
		service = a.Service
	} else if s, ok := credentialService(r.Header.Get("Authorization")); ok && m.apis[s] != nil {
		service = s // malformed otherwise: the service says why
	} else {
		service, _, _ = strings.Cut(r.Host, ".")
	}
	if h := m.apis[service]; h != nil {
		h.ServeHTTP(w, r)
		return
	}
	body := errorEnvelope(Errorf("NoSuchProduct", "no service %q here; this server has %s", service, strings.Join(m.names(), ", ")), NewRequestID())
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (m *Mux) names() []string {
	var names []string
	for n := range m.apis {
		names = append(names, n)
	}
	return names
}

// credentialService reads the service of the Credential of an
// Authorization header that may be malformed elsewhere.
func credentialService(auth string) (string, bool) {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return "", false
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.SplitN(cred, "/", 4)
	if len(parts) < 4 {
		return "", false
	}
	return parts[2], true
}
