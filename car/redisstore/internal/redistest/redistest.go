// Package redistest gives tests a Redis: a real redis-server on a free
// loopback port ([Start]), or a miniredis ([Mini], and [Pipe] for a
// testing/synctest bubble).
//
// Start needs the redis-server binary (Debian package redis-server, which
// .ci/run installs). Without it the test is skipped with the reason, unless
// the environment variable CI is set: in CI a missing binary fails the test.
//
// Every address is an IP literal (127.0.0.1), never "localhost": a go-redis
// client that resolves a name inside a synctest bubble breaks later name
// lookups of the whole test binary.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process started for one test. It is stopped in
// the test's cleanup.
type Server struct {
	// Addr is the server's address, "127.0.0.1:PORT".
	Addr string

	t    testing.TB
	bin  string
	pre  []string // arguments before the defaults (a sentinel's config file)
	args []string // more flags, after the defaults (a cluster node's)
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// Start runs a real redis-server on a free loopback port, with persistence
// off (--save "" --appendonly no), and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, lookPath(t, "redis-server"), nil)
}

// lookPath finds a Redis binary, or skips the test (fails it in CI).
func lookPath(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redistest: %s is not installed, and CI is set: .ci/run must install it (apt-get install -y redis-server): %v", name, err)
		}
		t.Skipf("redistest: skipped: %s is not installed (apt-get install -y redis-server): %v", name, err)
	}
	return bin
}

// startServer starts bin on a free port; extra(port) gives the arguments
// before the defaults and the flags after them.
func startServer(t testing.TB, bin string, extra func(port int) (pre, post []string, err error)) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin}
	var last error
	for range 5 { // a free port may be taken between our probe and redis-server's bind
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if extra != nil {
			if s.pre, s.args, err = extra(port); err != nil {
				t.Fatalf("redistest: %v", err)
			}
		}
		if last = s.start(); last == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("redistest: starting %s: %v", bin, last)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	dir := s.t.TempDir()
	args := append(append(s.pre[:len(s.pre):len(s.pre)],
		"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--logfile", ""), s.args...)
	cmd := exec.Command(s.bin, args...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	// Wait until it answers PING, or exits.
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited: %s", out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server did not answer PING within 10s: %v; output: %s", err, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.out, s.done = cmd, out, done
	s.mu.Unlock()
	return nil
}

// Kill stops the server at once (SIGKILL): clients see it unreachable until
// Restart. It is called again, harmlessly, in the test's cleanup.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart kills the server if it runs and starts it again on the same
// address, empty: every key is lost, as when a Redis without persistence
// restarts. Not for a node of a [Cluster]: its nodes.conf is lost too, so
// it would come back as a new node with no slots.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr, err)
	}
}

// Client returns a go-redis client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Mini returns a started miniredis listening on 127.0.0.1 (an IP-literal
// address), closed when the test ends. Its TTLs move only with FastForward.
func Mini(t testing.TB) *miniredis.Miniredis {
	t.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatalf("redistest: starting miniredis: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// MiniClient returns a go-redis client of a miniredis started by Mini,
// closed when the test ends.
func MiniClient(t testing.TB, m *miniredis.Miniredis) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Pipe returns a miniredis that serves in-memory connections (net.Pipe, no
// socket) and a go-redis client dialling it, for a testing/synctest bubble:
// call it inside the bubble. TTLs follow the clock (ClockTTL), which inside
// a bubble is the bubble's fake clock, so a time.Sleep there expires keys.
// Both are closed when the test ends.
func Pipe(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	t.Cleanup(m.Close)
	return m, PipeClient(t, m)
}

// PipeClient returns one more go-redis client of a miniredis made by Pipe,
// closed when the test ends.
func PipeClient(t testing.TB, m *miniredis.Miniredis) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:0", // never dialled: the Dialer below is
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			return m.Dial()
		},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
