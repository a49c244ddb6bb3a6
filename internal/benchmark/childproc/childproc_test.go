package childproc

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The test binary is its own child: with childEnv set it serves a control
// API of one call and exits when its stdin closes.
const childEnv = "CHILDPROC_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /ctl/echo", func(w http.ResponseWriter, r *http.Request) {
			var in struct{ N int }
			err := DecodeBody(r, &in)
			Reply(w, struct{ Twice int }{2 * in.N}, err)
		})
		if err := Serve(context.Background(), mux, os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func self(t *testing.T) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	return cmd
}

func TestStartCallStop(t *testing.T) {
	p, err := Start(t.Context(), "child", self(t))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Twice int }
	if err := p.Call(t.Context(), http.MethodPost, "/ctl/echo", struct{ N int }{21}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Twice != 42 {
		t.Errorf("echo of 21 answered %d, want 42", out.Twice)
	}
	err = p.Call(t.Context(), http.MethodGet, "/ctl/none", nil, &out)
	if err == nil || !strings.Contains(err.Error(), "child /ctl/none: 404") {
		t.Errorf("call of an unknown path: %v, want an error naming the child, the path and the status", err)
	}
	// Closing stdin is how the child is told to go: it exits cleanly.
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestStartRefusesAChildThatSaysSomethingElse(t *testing.T) {
	_, err := Start(t.Context(), "talker", exec.Command("sh", "-c", "echo hello; exec cat"))
	if err == nil || !strings.Contains(err.Error(), `talker said "hello\n", not its address`) {
		t.Fatalf("Start: %v, want the child's first line quoted", err)
	}
}

func TestParseRSS(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   uint64
		err    string
	}{
		{"Name:\tx\nVmRSS:\t  1234 kB\nThreads: 4\n", 1234 << 10, ""},
		{"VmRSS:\t12 MB\n", 0, "unexpected VmRSS line"},
		{"VmRSS:\tlots kB\n", 0, "VmRSS: "},
		{"Name:\tx\n", 0, "no VmRSS"},
	} {
		got, err := parseRSS(strings.NewReader(tc.status))
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("parseRSS(%q) = %d, %v; want %d", tc.status, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseRSS(%q) error %v, want one containing %q", tc.status, err, tc.err)
		}
	}
	if rss, err := RSS(); err != nil || rss == 0 {
		t.Errorf("RSS of this process: %d, %v", rss, err)
	}
}
