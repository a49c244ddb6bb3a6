package browsertest

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/examples/webdemo/app"
)

// docSnippet is the minimal page of package heartbeat's doc ("A minimal
// page by hand"), as printed there.
func docSnippet(t *testing.T) string {
	b, err := os.ReadFile("../../doc.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var code []string
	for i, l := range lines {
		if !strings.Contains(l, "A minimal page by hand") {
			continue
		}
		for _, l := range lines[i:] {
			if strings.HasPrefix(l, "//\t") {
				code = append(code, strings.TrimPrefix(l, "//\t"))
			} else if len(code) > 0 {
				break
			}
		}
		break
	}
	if len(code) < 10 {
		t.Fatalf("no minimal page found in heartbeat/doc.go (%d lines)", len(code))
	}
	return strings.Join(code, "\n")
}

// The minimal page of the heartbeat's doc works as printed: it connects,
// starts the stream with the lease's ServerSession, and resumes after a
// reload with the token it stored.
func TestDocMinimalPageWorks(t *testing.T) {
	snippet := docSnippet(t)
	page := `<!doctype html><meta charset="utf-8"><title>doc page</title><script type="module">
import { createFakeTCGSDK } from "/static/fake-tcgsdk.js";
const TCGSDK = createFakeTCGSDK();
TCGSDK.init({ mount: "x" });
const lease = await (await fetch("/api/start", { method: "POST", body: JSON.stringify({ User: "doc", ClientSession: "Y3M=" }) })).json();
const url = "ws://" + location.host + "/heartbeat", session = lease.HeartbeatSession, joinToken = lease.HeartbeatToken;
` + snippet + `
window.snippet = { get ws() { return ws; }, get started() { return started; }, fake: TCGSDK.__fake, session };
</script>`
	e := newEnv(t, app.Config{Routes: func(mux *http.ServeMux) {
		mux.HandleFunc("GET /doc-page", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(page))
		})
	}})
	p := e.openPath("doc", "/doc-page")
	p.waitJS(`window.snippet && window.snippet.ws.readyState === 1 && sessionStorage.getItem("tcc.heartbeat:" + window.snippet.session)`, 10*time.Second)
	if proto := eval[string](p, `window.snippet.ws.protocol`); proto != "tcc.heartbeat.v2" {
		t.Errorf("negotiated %q", proto)
	}
	p.waitJS(`window.snippet.fake.state === "connected"`, 10*time.Second)
	before := e.waitCAR("doc", cartest.StateConnected, 5*time.Second)
	if snap := userSnap(e, "doc"); !snap.Connected {
		t.Errorf("manager: %+v, want connected", snap)
	}
	stored := eval[string](p, `sessionStorage.getItem("tcc.heartbeat:" + window.snippet.session)`)

	if err := chromedpReload(p); err != nil {
		t.Fatal(err)
	}
	p.waitJS(`window.snippet && window.snippet.ws.readyState === 1 && sessionStorage.getItem("tcc.heartbeat:" + window.snippet.session) !== `+jsString(stored), 10*time.Second)
	p.waitJS(`window.snippet.fake.state === "connected"`, 10*time.Second)
	after := e.waitCAR("doc", cartest.StateConnected, 5*time.Second)
	if after.ConcurrencyId != before.ConcurrencyId {
		t.Errorf("concurrency %s after the reload, want %s", after.ConcurrencyId, before.ConcurrencyId)
	}
	e.noRelease("doc")
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
