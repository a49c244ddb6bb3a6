package apiserver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// The two reference servers share one Fault type: a fault written for one
// is a fault for the other.
var (
	_ cartest.Fault = scftest.Fault{}
	_ scftest.Fault = apiserver.Fault{}
)

// And one Event type: a helper that reads one server's log reads the
// other's.
var (
	_ func() []cartest.Event = (*scftest.Server)(nil).Events
	_ cartest.Event          = scftest.Event{}
	_ scftest.Event          = apiserver.Event{}
	_ cartest.EventKind      = scftest.EventKind("")
)

// TestEventString: the one Event prints on one line, whichever server
// recorded it.
func TestEventString(t *testing.T) {
	e := apiserver.Event{Time: time.Date(2026, 1, 1, 0, 1, 30, 0, time.UTC), Kind: cartest.EventReconnectWaitExpired,
		Subject: "u1", Resource: "pack-cartest1-1", Detail: "no client"}
	if got, want := e.String(), "00:01:30.000 reconnect-wait-expired subject=u1 resource=pack-cartest1-1: no client"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	c := apiserver.Event{Kind: apiserver.EventCall, Action: "Invoke", Code: "ResourceNotFound.Function"}
	if got, want := c.String(), "00:00:00.000 call Invoke code=ResourceNotFound.Function"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestBothServersShareTheShell: cartest and scftest make a random
// credential per server, sign their Client with it, refuse bad shell
// options with the same words, and refuse Start after Close.
func TestBothServersShareTheShell(t *testing.T) {
	type server struct {
		name  string
		start func() (cred car.Credential, call func() error, restart func() error, close func())
		bad   func() []error
	}
	servers := []server{
		{"cartest", func() (car.Credential, func() error, func() error, func()) {
			s := cartest.Start(t)
			c := s.Client()
			call := func() error {
				_, err := c.DescribeConcurrentCount(t.Context(), &car.DescribeConcurrentCountInput{ProjectId: cartest.DefaultProjectId})
				return err
			}
			return s.Credentials(), call, s.Start, s.Close
		}, func() []error {
			var errs []error
			for _, o := range []cartest.Option{cartest.WithListener(nil), cartest.WithLogger(nil), cartest.WithCredentials("", "k"),
				cartest.WithTemporaryCredentials("id", "", "t"), cartest.WithLimits(cartest.Limits{BodyBytesInFlight: 1})} {
				_, err := cartest.NewUnstartedServer(o)
				errs = append(errs, err)
			}
			return errs
		}},
		{"scftest", func() (car.Credential, func() error, func() error, func()) {
			s := scftest.Start(t)
			c := s.Client()
			call := func() error {
				_, err := c.GetAccount(t.Context(), nil)
				return err
			}
			return s.Credentials(), call, s.Start, s.Close
		}, func() []error {
			var errs []error
			for _, o := range []scftest.Option{scftest.WithListener(nil), scftest.WithLogger(nil), scftest.WithCredentials("", "k"),
				scftest.WithTemporaryCredentials("id", "", "t"), scftest.WithLimits(scftest.Limits{BodyBytesInFlight: 1})} {
				_, err := scftest.NewUnstartedServer(o)
				errs = append(errs, err)
			}
			return errs
		}},
	}
	var messages [][]string
	for _, srv := range servers {
		c1, call, restart, closeIt := srv.start()
		c2, _, _, close2 := srv.start()
		close2()
		if !strings.HasPrefix(c1.SecretId, "AKID") || c1.SecretId == c2.SecretId || c1.SecretKey == c2.SecretKey {
			t.Errorf("%s: two servers' credentials are not random and distinct", srv.name)
		}
		if err := call(); err != nil {
			t.Errorf("%s: Client with the server's credential: %v", srv.name, err)
		}
		closeIt()
		if err := restart(); err == nil || !strings.Contains(err.Error(), srv.name+": Start after Close") {
			t.Errorf("%s: Start after Close: %v", srv.name, err)
		}
		var msgs []string
		for _, err := range srv.bad() {
			if err == nil {
				t.Errorf("%s: a bad option was accepted", srv.name)
				msgs = append(msgs, "")
				continue
			}
			msgs = append(msgs, strings.TrimPrefix(err.Error(), srv.name+": "))
		}
		messages = append(messages, msgs)
	}
	for i := range messages[0] {
		if messages[0][i] != messages[1][i] {
			t.Errorf("the same bad option reads %q in cartest and %q in scftest", messages[0][i], messages[1][i])
		}
	}
}
