package car_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// TestWithHeartbeatRefusesWhatTheManagerSets: a heartbeat setting the
// manager makes itself, passed through WithHeartbeat, fails construction
// with the option named and the manager's own option to use, instead of
// being silently replaced.
func TestWithHeartbeatRefusesWhatTheManagerSets(t *testing.T) {
	srv := cartest.Start(t)
	cb := func(heartbeat.Event) {}
	cases := []struct {
		opt     heartbeat.ServerOption
		name    string
		instead string
	}{
		{heartbeat.WithReconnectWindow(30 * time.Second), "WithReconnectWindow", "car.WithReconnectWait"},
		{heartbeat.WithReloadGrace(5 * time.Second), "WithReloadGrace", "car.WithReloadGrace"},
		{heartbeat.WithIdleThreshold(time.Minute), "WithIdleThreshold", "car.WithIdleThreshold"},
		{heartbeat.OnConnect(cb), "OnConnect", "car.OnRelease"},
		{heartbeat.OnDisconnect(cb), "OnDisconnect", "car.OnRelease"},
		{heartbeat.OnResume(cb), "OnResume", "car.OnRelease"},
		{heartbeat.OnIdle(cb), "OnIdle", "car.OnRelease"},
		{heartbeat.OnExpire(cb), "OnExpire", "car.OnRelease"},
		{heartbeat.OnStream(cb), "OnStream", "car.OnStreamEvent"},
	}
	for _, c := range cases {
		mgr, err := car.NewSessionManager(srv.Client(), cartest.DefaultProjectId,
			car.WithHeartbeat(heartbeat.WithPingInterval(5*time.Second), c.opt))
		if mgr != nil {
			mgr.Shutdown(t.Context())
			t.Errorf("WithHeartbeat(heartbeat.%s): a manager was built", c.name)
		}
		var ve *car.ValidationError
		if !errors.As(err, &ve) || !strings.Contains(ve.Field, "heartbeat."+c.name) || !strings.Contains(ve.Rule, c.instead) {
			t.Errorf("WithHeartbeat(heartbeat.%s): err = %v, want a *car.ValidationError naming it and %s", c.name, err, c.instead)
		}
	}

	// What the manager leaves alone goes through.
	mgr, err := car.NewSessionManager(srv.Client(), cartest.DefaultProjectId,
		car.WithHeartbeat(heartbeat.WithPingInterval(5*time.Second), heartbeat.WithPingTimeout(15*time.Second),
			heartbeat.WithWriteTimeout(2*time.Second), heartbeat.WithAllowedOrigins("*")))
	if err != nil {
		t.Fatalf("options the manager does not set: %v", err)
	}
	if err := mgr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
