// Command webdemo serves a web page that runs a CAR session the way a
// real page does: TCGSDK (here a stand-in whose cloud stream is the
// embedded reference server's client stream), the heartbeat's browser
// client and its TCGSDK glue (package heartbeat/web), against a
// car.SessionManager and the CAR reference server (package car/cartest),
// all in this process on 127.0.0.1.
//
//	go run ./examples/webdemo                 # prints the address; serves until interrupted
//	go run ./examples/webdemo -concurrencies 1 -idle 5s
//	go run ./examples/webdemo -check          # a self-check without a browser, then exit
//
// The page shows the stream, the queue position, an idle warning with a
// countdown to release, the reconnect state and the release reason, next
// to what CAR and the manager see. Open several tabs (each is a new user
// unless ?user=NAME says otherwise) to see the queue at work; open the same
// user twice to see the older tab replaced; go offline in the browser's
// developer tools for less or more than the grace window.
//
// CI (.ci/examples) builds it and runs it with -check; the browser tests
// (heartbeat/web/browsertest) drive the page in Chromium.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/examples/webdemo/app"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (loopback)")
	n := flag.Int("concurrencies", 3, "concurrencies in the project's pack")
	idle := flag.Duration("idle", 20*time.Second, "idle threshold (released at the second notice)")
	grace := flag.Duration("grace", 8*time.Second, "reconnect wait: how long a vanished page keeps its concurrency")
	lost := flag.String("stream-lost", "release", "when the page reports its stream lost for good: release, or restart (a new ServerSession)")
	check := flag.Bool("check", false, "run a self-check without a browser and exit")
	flag.Parse()
	action := car.StreamLostRelease
	switch *lost {
	case "release":
	case "restart":
		action = car.StreamLostRestart
	default:
		fmt.Fprintln(os.Stderr, "webdemo: -stream-lost must be release or restart")
		os.Exit(2)
	}
	cfg := app.Config{Addr: *addr, Concurrencies: *n, IdleThreshold: *idle, ReconnectWait: *grace, Manager: []car.ManagerOption{car.WithStreamLost(action)}}
	var err error
	if *check {
		err = selfCheck(cfg)
	} else {
		err = serve(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "webdemo:", err)
		os.Exit(1)
	}
}

func serve(cfg app.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Printf("webdemo: open %s (several tabs show the queue; Ctrl-C stops)\n", a.URL)
	<-ctx.Done()
	fmt.Println("webdemo: stopping: releasing every concurrency")
	return nil
}

// selfCheck does what the page does, from Go: start, heartbeat, ready,
// the stream; then leaves and checks CAR freed the concurrency.
func selfCheck(cfg app.Config) error {
	a, err := app.New(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Println("webdemo: self-check on", a.URL)
	for _, path := range []string{"", "static/demo.js", "static/fake-tcgsdk.js", "heartbeat/web/heartbeat.js", "heartbeat/web/tcgsdk.js"} {
		res, err := http.Get(a.URL + path)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("GET /%s: %s", path, res.Status)
		}
	}
	body, _ := json.Marshal(map[string]string{"User": "check", "ClientSession": "Y2xpZW50"})
	res, err := http.Post(a.URL+"api/start", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var lease car.Lease
	err = json.NewDecoder(res.Body).Decode(&lease)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		return fmt.Errorf("start: %s, %v", res.Status, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hbURL := "ws" + strings.TrimPrefix(a.URL, "http") + "heartbeat"
	sess, err := hbclient.Connect(ctx, hbURL, lease.HeartbeatSession, lease.HeartbeatToken)
	if err != nil {
		return err
	}
	defer sess.Close()
	ss, err := cartest.ParseServerSession(lease.ServerSession)
	if err != nil {
		return err
	}
	st, err := a.CAR.DialStream(ctx, lease.ServerSession)
	if err != nil {
		return err
	}
	defer st.Close()
	c, ok := a.CAR.User("check")
	if !ok || c.State != cartest.StateConnected || c.ConcurrencyId != ss.ConcurrencyId {
		return fmt.Errorf("CAR: %v, want %s connected", c, ss.ConcurrencyId)
	}
	fmt.Println("webdemo: heartbeat connected, stream connected to", c.ConcurrencyId)
	if err := a.Manager.Stop(ctx, "check"); err != nil {
		return err
	}
	<-sess.Done()
	var rel *heartbeat.ReleasedError
	if !errors.As(sess.Err(), &rel) {
		return fmt.Errorf("heartbeat ended with %v, want a release", sess.Err())
	}
	if c, ok := a.CAR.User("check"); ok && c.State != cartest.StateCleanup {
		return fmt.Errorf("CAR after Stop: %v", c)
	}
	fmt.Println("webdemo: released:", rel.Reason, "- ok")
	return nil
}
