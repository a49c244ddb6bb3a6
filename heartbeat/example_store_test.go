package heartbeat_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// Two replicas share their sessions through a Store (here in memory; on
// Redis, car/redisstore's Store.Sessions()) and the same token keys: a
// session opened on one is joined on the other, and Send and Release on
// the first reach the client connected to the second.
func ExampleWithStore() {
	store := heartbeat.NewMemoryStore()
	key := bytes.Repeat([]byte("k"), heartbeat.MinTokenKeyLen) // in production: a secret from the config
	newReplica := func(name string) (*heartbeat.Server, *httptest.Server) {
		srv, err := heartbeat.NewServer(heartbeat.WithStore(store.Replica(name)), heartbeat.WithTokenKeys(key))
		if err != nil {
			panic(err)
		}
		return srv, httptest.NewServer(srv) // in production: each replica's own HTTP server
	}
	a, hsA := newReplica("a")
	defer hsA.Close()
	b, hsB := newReplica("b")
	defer hsB.Close()
	urlB := "ws" + strings.TrimPrefix(hsB.URL, "http")

	token, err := a.Open(context.Background(), "user-42")
	if err != nil {
		panic(err)
	}
	notices := make(chan heartbeat.Notice, 4)
	c, err := hbclient.Connect(context.Background(), urlB, "user-42", token,
		hbclient.OnNotice(func(n heartbeat.Notice) { notices <- n }))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, onB := b.Session("user-42")
	fmt.Println("connected to b:", onB)

	a.Send(context.Background(), "user-42", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 3})
	fmt.Println("queue position via a:", (<-notices).Position)

	a.Release(context.Background(), "user-42", "done")
	fmt.Println((<-notices).Kind)
	<-c.Done()
	fmt.Println(c.State())

	a.Shutdown(context.Background())
	b.Shutdown(context.Background())
	// Output:
	// connected to b: true
	// queue position via a: 3
	// released
	// closed
}
