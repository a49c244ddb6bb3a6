//go:build unix

package heartbeat_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

const (
	envFloodAddr  = "HEARTBEAT_FLOOD_ADDR" // set: this process is the flooding client
	envFloodToken = "HEARTBEAT_FLOOD_TOKEN"
	floodWindow   = 3 * time.Second
)

// BenchmarkFloodCPU measures what one client flooding activity frames as
// fast as loopback TCP carries them costs the server: the server's CPU
// (cores, user + system, the Go runtime's share included) over a 3 s window,
// and how many frames the client got in before it was cut. The client runs
// in a child process (this test binary again), so only the server is
// counted; it reconnects with its latest resume token whenever it is cut,
// as an attacker would.
//
//	go test -run '^$' -bench FloodCPU -benchtime 1x ./heartbeat/
func BenchmarkFloodCPU(b *testing.B) {
	for range b.N {
		srv, err := heartbeat.NewServer()
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: srv}
		go hs.Serve(ln)
		token, err := srv.Open(context.Background(), "flood")
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envFloodAddr+"="+ln.Addr().String(), envFloodToken+"="+token)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		var r0, r1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		cmd.Wait()
		wall := time.Since(t0)
		syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		hs.Close()
		var frames, conns int
		fmt.Sscan(line, &frames, &conns)
		cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) * time.Nanosecond
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "server-cores")
		b.ReportMetric(float64(frames), "frames-sent")
		b.ReportMetric(float64(conns), "connections")
	}
}

// runFlood is the flooding client: for floodWindow it writes activity
// frames as fast as it can, reconnecting with its latest resume token when
// cut. It prints the frames it wrote and the connections it made.
func runFlood(addr string) int {
	token := os.Getenv(envFloodToken)
	frame := append([]byte{0x81, 0x80 | 19, 0, 0, 0, 0}, `{"type":"activity"}`...) // masked with key 0
	buf := bytes.Repeat(frame, 4096)
	d := websocket.Dialer{Subprotocols: []string{heartbeat.Subprotocol}}
	end := time.Now().Add(floodWindow)
	frames, conns := 0, 0
	for time.Now().Before(end) {
		ws, _, err := d.Dial("ws://"+addr+"/", nil)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		conns++
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","v":1,"session":"flood","token":"`+token+`"}`))
		_, data, err := ws.ReadMessage()
		if err != nil || !strings.Contains(string(data), "welcome") {
			ws.Close()
			time.Sleep(10 * time.Millisecond) // refused: try again, as an attacker would
			continue
		}
		if i := strings.Index(string(data), `"token":"`); i >= 0 {
			token = string(data[i+9 : i+9+43])
		}
		nc := ws.NetConn()
		for time.Now().Before(end) {
			nc.SetWriteDeadline(end)
			n, err := nc.Write(buf)
			frames += n / len(frame)
			if err != nil {
				break
			}
		}
		nc.Close()
	}
	fmt.Println(frames, conns)
	return 0
}
