package heartbeat_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// A backend opens a session for a user and hands the token to the user's
// client; the client connects; the backend tells it its queue position and
// finally releases it.
func Example() {
	connected := make(chan string, 1)
	srv, err := heartbeat.NewServer(
		heartbeat.OnConnect(func(ev heartbeat.Event) { connected <- ev.SessionID }),
	)
	if err != nil {
		panic(err)
	}
	// In production: http.Handle("/heartbeat", srv) on the backend's server.
	backend := httptest.NewServer(srv)
	defer backend.Close()
	url := "ws" + strings.TrimPrefix(backend.URL, "http") + "/heartbeat"

	token, err := srv.Open(context.Background(), "user-42") // sent to the client, e.g. with the page
	if err != nil {
		panic(err)
	}

	notices := make(chan heartbeat.Notice, 4)
	s, err := hbclient.Connect(context.Background(), url, "user-42", token,
		hbclient.OnNotice(func(n heartbeat.Notice) { notices <- n }),
	)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	fmt.Println("connected:", <-connected)

	srv.Send(context.Background(), "user-42", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 2})
	fmt.Println("queue position:", (<-notices).Position)

	srv.Release(context.Background(), "user-42", "no concurrency available")
	n := <-notices
	fmt.Println(n.Kind+":", n.Reason)
	<-s.Done()
	fmt.Println(s.State(), "-", s.Err())

	srv.Shutdown(context.Background())
	// Output:
	// connected: user-42
	// queue position: 2
	// released: no concurrency available
	// closed - heartbeat: session released: no concurrency available
}

func ExampleServer_Session() {
	srv, err := heartbeat.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())

	srv.Open(context.Background(), "user-7")
	info, ok := srv.Session("user-7")
	fmt.Println(ok, info.State, info.Connected, srv.Len())
	// Output: true waiting false 1
}

func ExampleNewServer() {
	_, err := heartbeat.NewServer(heartbeat.WithPingTimeout(heartbeat.DefaultPingInterval))
	fmt.Println(err)
	// Output: heartbeat: invalid WithPingTimeout: must be longer than the ping interval (10s), got 10s
}
