package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/car/redisstore"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

const benchProject = "cap-bench"

// benchReplica is one SessionManager with its heartbeat on loopback.
type benchReplica struct {
	mgr *car.SessionManager
	hb  *httptest.Server
	url string
}

func newBenchReplica(b *testing.B, srv *cartest.Server, opts ...car.ManagerOption) *benchReplica {
	b.Helper()
	client := srv.Client()
	mgr, err := car.NewSessionManager(client, benchProject, opts...)
	if err != nil {
		b.Fatal(err)
	}
	hb := httptest.NewServer(mgr)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = mgr.Shutdown(ctx)
		hb.Close()
		client.CloseIdleConnections()
	})
	return &benchReplica{mgr: mgr, hb: hb, url: "ws" + strings.TrimPrefix(hb.URL, "http")}
}

func benchCAR(b *testing.B, size int) *cartest.Server {
	return cartest.Start(b, cartest.WithoutRateLimits(), cartest.WithCleanupDelay(0),
		cartest.WithProject(cartest.Project{ProjectId: benchProject}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: size, Projects: []string{benchProject}}))
}

// redisOptions returns the manager options of one replica on the Redis
// store of srv.
func redisOptions(b *testing.B, srv *redistest.Server, id string, key []byte) []car.ManagerOption {
	c := srv.Client(b)
	st, err := redisstore.New(c, benchProject, redisstore.WithReplicaID(id))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return []car.ManagerOption{car.WithLeaseStore(st.Leases()), car.WithHeartbeat(heartbeat.WithStore(st.Sessions()), heartbeat.WithTokenKeys(key))}
}

// BenchmarkLease measures Start, resume and release on one replica, with
// the in-memory default beside the Redis store (a real redis-server on
// loopback), in one run. Each op includes the CAR reference server's work
// (in process, on loopback): the difference between the two is the store's.
func BenchmarkLease(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	stores := []struct {
		name string
		opts func(b *testing.B) []car.ManagerOption
	}{
		{"memory", func(*testing.B) []car.ManagerOption { return nil }},
		{"redis", func(b *testing.B) []car.ManagerOption { return redisOptions(b, redistest.Start(b), "bench", key) }},
	}
	for _, st := range stores {
		b.Run("store="+st.name+"/op=start", func(b *testing.B) {
			r := newBenchReplica(b, benchCAR(b, b.N+1), st.opts(b)...)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := r.mgr.Start(ctx, car.StartRequest{UserId: "u" + strconv.Itoa(i), UserIp: "10.0.0.1", ClientSession: "cs"}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("store="+st.name+"/op=release", func(b *testing.B) {
			r := newBenchReplica(b, benchCAR(b, b.N+1), st.opts(b)...)
			ctx := context.Background()
			for i := range b.N {
				if _, err := r.mgr.Start(ctx, car.StartRequest{UserId: "u" + strconv.Itoa(i), UserIp: "10.0.0.1", ClientSession: "cs"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := r.mgr.Stop(ctx, "u"+strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("store="+st.name+"/op=resume", func(b *testing.B) {
			r := newBenchReplica(b, benchCAR(b, 2), st.opts(b)...)
			ctx := context.Background()
			lease, err := r.mgr.Start(ctx, car.StartRequest{UserId: "u", UserIp: "10.0.0.1", ClientSession: "cs"})
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var conn net.Conn
			connected := make(chan struct{}, 1)
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				mu.Lock()
				conn = c
				mu.Unlock()
				return c, err
			}
			sess, err := hbclient.Connect(ctx, r.url, lease.HeartbeatSession, lease.HeartbeatToken,
				hbclient.WithDialer(&websocket.Dialer{NetDialContext: dial}),
				hbclient.WithReconnectDelay(func(int) time.Duration { return 0 }),
				hbclient.OnStateChange(func(_, to hbclient.State) {
					if to == hbclient.StateConnected {
						select {
						case connected <- struct{}{}:
						default:
						}
					}
				}))
			if err != nil {
				b.Fatal(err)
			}
			defer sess.Close()
			<-connected
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				// The connection drops; the client resumes with its resume
				// token: a hello, the store's claim, the welcome.
				mu.Lock()
				conn.Close()
				mu.Unlock()
				select {
				case <-connected:
				case <-time.After(10 * time.Second):
					b.Fatal("no resume within 10 s")
				}
			}
		})
	}
}

// commandCalls sums the calls of INFO commandstats, and returns them by
// command too.
func commandCalls(b *testing.B, c *redis.Client) (int64, map[string]int64) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	by := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		i := strings.Index(line, "calls=")
		if !strings.HasPrefix(line, "cmdstat_") || i < 0 {
			continue
		}
		v := line[i+len("calls="):]
		if j := strings.IndexByte(v, ','); j >= 0 {
			v = v[:j]
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		by[strings.TrimPrefix(line[:strings.IndexByte(line, ':')], "cmdstat_")] = n
	}
	return total, by
}

// BenchmarkRedisCommands measures the Redis commands of 3 replicas: with
// no session, and with connected sessions (active, pinged, idle), per
// session per minute, from INFO commandstats over a window.
func BenchmarkRedisCommands(b *testing.B) {
	const sessions = 300
	window := 10 * time.Second
	srv := redistest.Start(b)
	admin := srv.Client(b)
	key := []byte("0123456789abcdef0123456789abcdef")
	carSrv := benchCAR(b, sessions)
	var reps []*benchReplica
	for i := range 3 {
		reps = append(reps, newBenchReplica(b, carSrv, redisOptions(b, srv, fmt.Sprintf("r%d", i+1), key)...))
	}
	measure := func(what string) float64 {
		time.Sleep(time.Second)
		if err := admin.ConfigResetStat(context.Background()).Err(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(window)
		total, by := commandCalls(b, admin)
		b.Logf("%s: %d commands in %v: %v", what, total, window, by)
		return float64(total-1) / window.Minutes() // less the INFO itself
	}
	for range b.N {
		idle := measure("3 replicas, no session")
		ctx := context.Background()
		var clients []*hbclient.Client
		for i := range sessions {
			r := reps[i%3]
			lease, err := r.mgr.Start(ctx, car.StartRequest{UserId: fmt.Sprintf("s%d", i), UserIp: "10.0.0.1", ClientSession: "cs"})
			if err != nil {
				b.Fatal(err)
			}
			cl, err := hbclient.Connect(ctx, reps[(i+1)%3].url, lease.HeartbeatSession, lease.HeartbeatToken)
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, cl)
		}
		busy := measure(fmt.Sprintf("3 replicas, %d connected sessions", sessions))
		for _, cl := range clients {
			cl.Close()
		}
		b.ReportMetric(idle/3, "cmds/min/replica-idle")
		b.ReportMetric((busy-idle)/sessions, "cmds/session/min")
	}
}
