package replicascale

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/internal/onepunderrace"
)

var (
	full    = flag.Bool("replicascale.full", false, "run the full size (60,000 sessions) instead of the small mode")
	outJSON = flag.String("replicascale.out", "", "write each run's results (JSON) to this file; runs after the first add -2, -3… before .json")
	outMD   = flag.String("replicascale.md", "", "write the BENCHMARKS.md table of the runs to this file")
	command = flag.String("replicascale.command", "", "the command to name in the table (default: the go test command of the package doc)")
)

// TestMain lets the benchmark re-execute the test binary as its replica and
// client processes.
func TestMain(m *testing.M) {
	if ChildRole() {
		os.Exit(Child(context.Background()))
	}
	os.Exit(m.Run())
}

func skipUnlessLinux(tb testing.TB) {
	if runtime.GOOS != "linux" {
		tb.Skip("the benchmark reads /proc and dials from 127.0.3.x, as on Linux")
	}
}

// TestSmall runs the small mode end to end (redis-server, 4 replica
// processes, 4 client processes, 400 sessions, every phase) and checks
// that every figure was taken: each hello accepted on a replica that did
// not mint its token, every idle callback, every silenced client detected
// by ping timeout. It checks no target: that is the benchmark's job.
func TestSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts redis-server and 8 processes for about 20 s")
	}
	if onepunderrace.Enabled {
		t.Skip("a real-time harness: the race detector slows its processes past its own timings; the plain test run covers it")
	}
	skipUnlessLinux(t)
	srv := redistest.Start(t)
	cfg := Small()
	res, err := Run(t.Context(), cfg, srv.Addr, os.Stderr, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", Markdown([]*Results{res}, "TestSmall"))
	if !res.Complete || len(res.Replicas) != cfg.Replicas {
		t.Fatalf("complete %v, %d replicas", res.Complete, len(res.Replicas))
	}
	for _, x := range res.Replicas {
		if x.Sessions != cfg.Sessions/cfg.Replicas || !(x.GoBytesPerSession > 0) || !(x.RSSBytesPerSession > 0) {
			t.Errorf("%s: %d sessions, %.0f Go B/session, %.0f RSS B/session", x.Name, x.Sessions, x.GoBytesPerSession, x.RSSBytesPerSession)
		}
		if g := x.GoroutinesPerSession; g < 0.9 || g > 3 {
			t.Errorf("%s: %.2f goroutines per session", x.Name, g)
		}
	}
	if !(res.RedisBytesPerSession > 0) || res.RedisKeys < int64(cfg.Sessions) {
		t.Errorf("Redis: %.0f B/session, %d keys for %d sessions", res.RedisBytesPerSession, res.RedisKeys, cfg.Sessions)
	}
	if res.IdleErrorMs.N != cfg.Sessions || res.IdleMissing != 0 || res.IdleErrorMs.Min < -50 {
		t.Errorf("idle callbacks: %+v, %d missing", res.IdleErrorMs, res.IdleMissing)
	}
	if res.DisconnectMs.N != res.Silenced || res.DisconnectReasons["ping timeout"] != res.Silenced {
		t.Errorf("%d silenced, detections %+v, reasons %v", res.Silenced, res.DisconnectMs, res.DisconnectReasons)
	}
	// Detected a ping timeout after the last frame, never before it.
	if min := float64(cfg.PingTimeout.Milliseconds()) - 50; res.DisconnectMs.Min < min {
		t.Errorf("a silenced client detected %.0f ms after its last frame, before the ping timeout (%s)", res.DisconnectMs.Min, cfg.PingTimeout)
	}
	if md := Markdown([]*Results{res}, "x"); !strings.Contains(md, "Redis used_memory, B/session") {
		t.Errorf("table lacks the Redis row:\n%s", md)
	}
}

// BenchmarkReplicaScale is one run per iteration: the small mode by
// default (seconds: .ci/run's one-iteration pass), 60,000 sessions with
// -replicascale.full (.ci/bench). See the package doc for the commands.
func BenchmarkReplicaScale(b *testing.B) {
	skipUnlessLinux(b)
	cfg := Small()
	if *full {
		cfg = Full()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var runs []*Results
	for b.Loop() {
		b.StopTimer()
		srv := redistest.Start(b) // a fresh, empty redis-server per run
		b.StartTimer()
		res, err := Run(b.Context(), cfg, srv.Addr, os.Stderr, log)
		if err != nil {
			if res != nil && *outJSON != "" {
				_ = res.WriteJSON(*outJSON)
			}
			b.Fatal(err)
		}
		b.StopTimer()
		srv.Kill()
		b.StartTimer()
		runs = append(runs, res)
	}
	last := runs[len(runs)-1]
	b.ReportMetric(last.Median(func(x replicaResult) float64 { return x.RSSBytesPerSession }), "replica-rss-B/session")
	b.ReportMetric(last.Median(func(x replicaResult) float64 { return x.GoBytesPerSession }), "replica-go-B/session")
	b.ReportMetric(last.RedisBytesPerSession, "redis-B/session")
	b.ReportMetric(last.DisconnectMs.P99, "disconnect-p99-ms")
	b.ReportMetric(last.IdleErrorMs.P99, "idle-error-p99-ms")
	for i, r := range runs {
		if *outJSON == "" {
			break
		}
		f := *outJSON
		if i > 0 {
			f = strings.TrimSuffix(f, ".json") + "-" + string(rune('1'+i)) + ".json"
		}
		if err := r.WriteJSON(f); err != nil {
			b.Fatal(err)
		}
	}
	if *outMD != "" {
		cmd := *command
		if cmd == "" {
			cmd = "cd car/redisstore && go test -run '^$' -bench '^BenchmarkReplicaScale$' -benchtime 1x ./internal/replicascale"
			if *full {
				cmd = "cd car/redisstore && go test -run '^$' -bench '^BenchmarkReplicaScale$' -benchtime 1x -timeout 30m ./internal/replicascale -args -replicascale.full"
			}
		}
		if err := os.WriteFile(*outMD, []byte(Markdown(runs, cmd)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
