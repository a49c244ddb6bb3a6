package heartbeat_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Environment of the memory benchmark's client process.
const (
	envClientsAddr = "HEARTBEAT_IDLE_CLIENTS_ADDR" // set: this process is the client side
	envSessions    = "HEARTBEAT_MEM_SESSIONS"      // number of sessions (default 15000)
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(envClientsAddr); addr != "" {
		os.Exit(runIdleClients(addr))
	}
	if addr := os.Getenv(envFloodAddr); addr != "" {
		os.Exit(runFlood(addr))
	}
	os.Exit(m.Run())
}

// BenchmarkIdleSessionMemory measures the server's memory per idle connected
// session: N sessions over loopback TCP, each with a client that did its
// hello and then only answers pings. The clients run in a child process (this
// test binary again) so that only the server's memory is counted.
//
//	go test -run '^$' -bench IdleSessionMemory -benchtime 1x ./heartbeat/
//
// It needs about 2N file descriptors in all (ulimit -n); set
// HEARTBEAT_MEM_SESSIONS to use fewer sessions.
func BenchmarkIdleSessionMemory(b *testing.B) {
	n := 15000
	if v := os.Getenv(envSessions); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number", envSessions, v)
		}
	}
	for range b.N {
		measureIdleSessions(b, n)
	}
}

func measureIdleSessions(b *testing.B, n int) {
	var connected atomic.Int64
	all := make(chan struct{})
	srv, err := heartbeat.NewServer(heartbeat.OnConnect(func(heartbeat.Event) {
		if connected.Add(1) == int64(n) {
			close(all)
		}
	}))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	defer hs.Close()

	before := memSnapshot()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envClientsAddr+"="+ln.Addr().String(), envSessions+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(stdin)
	for i := range n {
		id := "user-" + strconv.Itoa(i)
		token, err := srv.Open(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintln(w, id, token)
	}
	w.Flush()

	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("client process: %s", line)
		}
		ready <- err
	}()
	if err := <-ready; err != nil {
		stdin.Close()
		cmd.Wait()
		b.Fatalf("client process failed (raise ulimit -n or set %s lower): %v", envSessions, err)
	}
	<-all

	after := memSnapshot()
	heap := float64(after.heap-before.heap) / float64(n)
	stack := float64(after.stack-before.stack) / float64(n)
	b.ReportMetric(heap+stack, "B/session")
	b.ReportMetric(heap, "heap-B/session")
	b.ReportMetric(stack, "stack-B/session")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/session")
	b.ReportMetric(float64(after.sys-before.sys)/float64(n), "sys-B/session")
	b.ReportMetric(float64(n), "sessions")

	stdin.Close() // the client process closes its connections and exits
	if err := cmd.Wait(); err != nil {
		b.Errorf("client process: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		b.Errorf("Shutdown: %v", err)
	}
}

type memStats struct {
	heap, stack, sys uint64
	goroutines       int
}

func memSnapshot() memStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memStats{heap: m.HeapAlloc, stack: m.StackInuse, sys: m.Sys, goroutines: runtime.NumGoroutine()}
}

// runIdleClients is the benchmark's client process: it reads "id token"
// lines, connects each session, prints "ready" once all are welcomed, then
// answers pings until stdin closes.
func runIdleClients(addr string) int {
	n, err := strconv.Atoi(os.Getenv(envSessions))
	if err != nil {
		fmt.Println("bad", envSessions, err)
		return 1
	}
	in := bufio.NewReader(os.Stdin)
	lines := make([][2]string, n)
	for i := range lines {
		if _, err := fmt.Fscanln(in, &lines[i][0], &lines[i][1]); err != nil {
			fmt.Println("bad line:", err)
			return 1
		}
	}
	d := websocket.Dialer{Subprotocols: []string{heartbeat.Subprotocol}, ReadBufferSize: 256, WriteBufferSize: 256}
	conns := make([]*websocket.Conn, len(lines))
	var wg sync.WaitGroup
	var failed atomic.Value
	work := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range work {
				ws, _, err := d.Dial("ws://"+addr+"/", nil)
				if err == nil {
					err = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","v":1,"session":"`+lines[i][0]+`","token":"`+lines[i][1]+`"}`))
				}
				if err == nil {
					_, _, err = ws.ReadMessage() // welcome
				}
				if err != nil {
					failed.Store(err.Error())
					continue
				}
				conns[i] = ws
			}
		})
	}
	for i := range lines {
		work <- i
	}
	close(work)
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		fmt.Println("connect failed:", msg)
		return 1
	}
	for _, ws := range conns {
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, in)
	for _, ws := range conns {
		ws.Close()
	}
	return 0
}
