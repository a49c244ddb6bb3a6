package redisstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
)

// withTimings sets the liveness timings and a hook called after each
// refresh (tests only).
func withTimings(ttl, refresh time.Duration, onRefresh func(error)) Option {
	return func(c *config) error {
		c.aliveTTL, c.aliveRefresh, c.onRefresh = ttl, refresh, onRefresh
		return nil
	}
}

// withExactID keeps WithReplicaID's id as it is (no per-process suffix),
// for tests that name the replicas' channels and keys.
func withExactID() Option {
	return func(c *config) error {
		c.exactID = true
		return nil
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	m := redistest.Mini(t)
	c := redistest.MiniClient(t, m)
	onReplicas := func(o redis.ClusterOptions) *redis.ClusterClient {
		o.Addrs = []string{m.Addr()} // never dialled: New refuses it first
		cc := redis.NewClusterClient(&o)
		t.Cleanup(func() { _ = cc.Close() })
		return cc
	}
	cases := []struct {
		name    string
		client  redis.UniversalClient
		project string
		opts    []Option
		field   string
		rule    string
	}{
		{"nil client", nil, "p", nil, "client", "must not be nil"},
		{"empty project", c, "", nil, "project", "must not be empty"},
		{"open brace", c, "cap-{x", nil, "project", "'{'"},
		{"close brace", c, "cap}", nil, "project", "'}'"},
		{"long project", c, strings.Repeat("p", 257), nil, "project", "256"},
		{"empty replica", c, "p", []Option{WithReplicaID("")}, "WithReplicaID", "1 to 64"},
		{"replica with a colon", c, "p", []Option{WithReplicaID("a:b")}, "WithReplicaID", "only letters"},
		{"replica with a brace", c, "p", []Option{WithReplicaID("a{b}")}, "WithReplicaID", "only letters"},
		{"nil logger", c, "p", []Option{WithLogger(nil)}, "WithLogger", "nil"},
		{"nil option", c, "p", []Option{nil}, "option", "nil"},
		{"cluster client reading replicas", onReplicas(redis.ClusterOptions{ReadOnly: true}), "p", nil, "client", "must not route to replicas"},
		{"cluster client routing randomly", onReplicas(redis.ClusterOptions{RouteRandomly: true}), "p", nil, "client", "must not route to replicas"},
	}
	for _, tc := range cases {
		s, err := New(tc.client, tc.project, tc.opts...)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || !strings.Contains(ve.Rule, tc.rule) {
			t.Errorf("%s: got %v, want a ValidationError on %s saying %q", tc.name, err, tc.field, tc.rule)
		}
		if s != nil {
			t.Errorf("%s: got a Store with the error", tc.name)
		}
		if err != nil && !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: error %q does not name %s", tc.name, err, tc.field)
		}
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Errorf("refused New calls wrote keys: %v", keys)
	}
}

func TestReplicaID(t *testing.T) {
	m := redistest.Mini(t)
	c := redistest.MiniClient(t, m)
	a, err := New(c, "p", WithReplicaID("pod-7.a_b"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !strings.HasPrefix(a.Replica(), "pod-7.a_b-") || len(a.Replica()) != len("pod-7.a_b-")+8 || a.Project() != "p" {
		t.Errorf("Replica() = %q, Project() = %q; want pod-7.a_b- and 8 hex digits, p", a.Replica(), a.Project())
	}
	// The same pod name in a restarted process is another replica.
	again, err := New(c, "p", WithReplicaID("pod-7.a_b"))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Replica() == a.Replica() || checkReplicaID(again.Replica()) != nil {
		t.Errorf("two processes with WithReplicaID(pod-7.a_b): ids %q and %q, want distinct valid ids", a.Replica(), again.Replica())
	}
	b, err := New(c, "p")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d, err := New(c, "p")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if b.Replica() == d.Replica() || !strings.HasPrefix(b.Replica(), "r-") || checkReplicaID(b.Replica()) != nil {
		t.Errorf("random ids %q and %q: want distinct valid ids starting r-", b.Replica(), d.Replica())
	}
}

func TestKeysShareTheProjectHashTag(t *testing.T) {
	k := newKeys("cap-1234")
	for _, key := range []string{k.node("r1"), k.all(), k.alive("r1"), k.key("lease", "u#1")} {
		if !strings.HasPrefix(key, "tcc:{cap-1234}:") {
			t.Errorf("key %q does not start with the project's hash tag", key)
		}
	}
	if got := k.alive("r1"); got != "tcc:{cap-1234}:alive:r1" {
		t.Errorf("alive key = %q", got)
	}
	if got := k.node("r1"); got != "tcc:{cap-1234}:node:r1" {
		t.Errorf("node channel = %q", got)
	}
}
