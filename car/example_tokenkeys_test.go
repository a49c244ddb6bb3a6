package car_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// Rotating the heartbeat token key of a running manager. With several
// replicas, each phase is done on every replica before the next begins:
// SetTokenKeys(old, new), then SetTokenKeys(new, old), then
// SetTokenKeys(new). Here one replica does the first two at once.
func ExampleSessionManager_SetTokenKeys() {
	srv, err := cartest.NewServer(
		cartest.WithProject(cartest.Project{ProjectId: "cap-demo"}),
		cartest.WithPack(cartest.Pack{PackId: "pack-1", Size: 3, Projects: []string{"cap-demo"}}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	oldKey := bytes.Repeat([]byte{1}, heartbeat.MinTokenKeyLen) // in production: random, from a secret store
	newKey := bytes.Repeat([]byte{2}, heartbeat.MinTokenKeyLen)
	mgr, err := car.NewSessionManager(srv.Client(), "cap-demo", car.WithHeartbeat(heartbeat.WithTokenKeys(oldKey)))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	defer mgr.Shutdown(ctx)
	hs := httptest.NewServer(mgr)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	connect := func(l *car.Lease) error {
		c, err := hbclient.Connect(ctx, url, l.HeartbeatSession, l.HeartbeatToken)
		if err == nil {
			c.Close()
		}
		return err
	}
	start := func(user string) *car.Lease {
		l, err := mgr.Start(ctx, car.StartRequest{UserId: user, UserIp: "203.0.113.7", ClientSession: user + "-client-session"})
		if err != nil {
			log.Fatal(err)
		}
		return l
	}

	alice, carol := start("alice"), start("carol") // tokens signed with the old key
	if err := mgr.SetTokenKeys(newKey, oldKey); err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice, old key, during the rotation:", connect(alice))
	fmt.Println(mgr.SetTokenKeys([]byte("too short")))

	if err := mgr.SetTokenKeys(newKey); err != nil { // the old key dropped
		log.Fatal(err)
	}
	err = connect(carol)
	fmt.Println("carol, old key, once it is dropped: refused with 4002:", errors.Is(err, heartbeat.ErrUnauthorized))
	fmt.Println("carol after a new Start:", connect(start("carol")))
	// Output:
	// alice, old key, during the rotation: <nil>
	// car SetTokenKeys: current key must be at least 32 bytes, got 9
	// carol, old key, once it is dropped: refused with 4002: true
	// carol after a new Start: <nil>
}
