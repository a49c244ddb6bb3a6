package scftest

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tcconcurrency/sdk-go/scf"
)

// triggerPrefix is the path under which the default region's HTTP
// functions are reached: /http/<namespace>/<function>[/<path>]; another
// region's are under regionsPrefix: /regions/<region>/http/….
const (
	triggerPrefix = "/http/"
	regionsPrefix = "/regions/"
)

// serveFunction runs an HTTP function for one HTTP request, through its
// $DEFAULT alias. The response is the function's result with status 200,
// or, when it failed, the JSON error body with the status code as the
// HTTP status (432, 433, 434…). Either way X-Scf-Request-Id names the
// execution, and the function receives it in its request header.
func (s *Server) serveFunction(w http.ResponseWriter, r *http.Request) {
	region, rest := s.cfg.region, strings.TrimPrefix(r.URL.Path, triggerPrefix)
	if tail, ok := strings.CutPrefix(r.URL.Path, regionsPrefix); ok {
		var found bool
		region, rest, _ = strings.Cut(tail, "/")
		if rest, found = strings.CutPrefix("/"+rest, triggerPrefix); !found {
			writeFailure(w, scf.StatusFunctionNotFound, "no HTTP function at "+r.URL.Path+": want /regions/<region>/http/<namespace>/<function>", "")
			return
		}
	}
	acct := s.model.accounts[region]
	if acct == nil {
		writeFailure(w, scf.StatusFunctionNotFound, "SCF does not serve region ["+region+"]", "")
		return
	}
	ns, rest, _ := strings.Cut(rest, "/")
	name, path, _ := strings.Cut(rest, "/")
	body, err := io.ReadAll(io.LimitReader(r.Body, scf.MaxSyncEventBytes+1))
	if err != nil {
		writeFailure(w, scf.StatusInvalidParameterValue, "reading the request body: "+err.Error(), "")
		return
	}
	if len(body) > scf.MaxSyncEventBytes {
		writeFailure(w, scf.StatusRequestTooLarge, "the request body exceeds 6 MB", "")
		return
	}
	s.mu.Lock()
	fn := acct.fns[ns+"/"+name]
	if fn == nil || fn.versions[scf.QualifierLatest].cfg.typ != scf.FunctionTypeHTTP {
		s.mu.Unlock()
		writeFailure(w, scf.StatusFunctionNotFound, "no HTTP function ["+name+"] in namespace ["+ns+"]", "")
		return
	}
	header := r.Header.Clone()
	ex, rej, id := s.syncCall(fn, scf.AliasDefault, "", execParams{
		event: string(body), header: header, method: r.Method, path: "/" + path,
	})
	w.Header().Set("X-Scf-Request-Id", id)
	if rej != nil {
		writeFailure(w, rej.status, rej.message, id)
		return
	}
	res := s.resultOf(ex, false)
	if res.ErrMsg != "" {
		s.mu.Lock()
		status := ex.out.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(res.ErrMsg)))
		w.WriteHeader(status)
		io.WriteString(w, res.ErrMsg)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(res.RetMsg)))
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, res.RetMsg)
}

func writeFailure(w http.ResponseWriter, status int, message, id string) {
	body := errorBody(status, message, id)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	io.WriteString(w, body)
}
