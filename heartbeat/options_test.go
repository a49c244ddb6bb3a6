package heartbeat_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// TestServerOptionNames: every ServerOption names the function that made
// it, which is how car.SessionManager refuses the settings it makes itself.
func TestServerOptionNames(t *testing.T) {
	cb := func(heartbeat.Event) {}
	key := make([]byte, heartbeat.MinTokenKeyLen)
	for want, o := range map[string]heartbeat.ServerOption{
		"WithLogger":          heartbeat.WithLogger(nil),
		"WithIdleThreshold":   heartbeat.WithIdleThreshold(time.Minute),
		"WithWriteTimeout":    heartbeat.WithWriteTimeout(time.Second),
		"WithReconnectWindow": heartbeat.WithReconnectWindow(time.Minute),
		"WithReloadGrace":     heartbeat.WithReloadGrace(time.Second),
		"WithTokenKeys":       heartbeat.WithTokenKeys(key),
		"WithPingInterval":    heartbeat.WithPingInterval(time.Second),
		"WithPingTimeout":     heartbeat.WithPingTimeout(time.Second),
		"WithMaxMessageSize":  heartbeat.WithMaxMessageSize(1024),
		"WithFrameRateLimit":  heartbeat.WithFrameRateLimit(1, 1),
		"WithAllowedOrigins":  heartbeat.WithAllowedOrigins("*"),
		"WithAuthorize":       heartbeat.WithAuthorize(func(*http.Request, string) error { return nil }),
		"OnConnect":           heartbeat.OnConnect(cb),
		"OnDisconnect":        heartbeat.OnDisconnect(cb),
		"OnResume":            heartbeat.OnResume(cb),
		"OnExpire":            heartbeat.OnExpire(cb),
		"OnIdle":              heartbeat.OnIdle(cb),
		"OnStream":            heartbeat.OnStream(cb),
		"WithStore":           heartbeat.WithStore(nil),
	} {
		if got := o.String(); got != want {
			t.Errorf("%s().String() = %q", want, got)
		}
	}
}
