package car_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

type churnStep struct {
	kind string // active, blip, vanish, idle, stop
	d    time.Duration
}

// churnScript draws a user's life: a few steps, each one of the ways a
// real user keeps, loses or gives back a concurrency.
func churnScript(rng *rand.Rand) []churnStep {
	steps := make([]churnStep, 2+rng.IntN(3))
	for i := range steps {
		switch k := rng.IntN(10); {
		case k < 3:
			steps[i] = churnStep{"active", time.Duration(1+rng.IntN(600)) * time.Second}
		case k < 6: // a network blip shorter than the reconnect wait, which counts from the
			// client's last frame: at most a ping interval (10 s) before the cut
			steps[i] = churnStep{"blip", time.Duration(1+rng.IntN(40)) * time.Second}
		case k < 7:
			steps[i] = churnStep{"vanish", 0}
		case k < 8:
			steps[i] = churnStep{"idle", 0}
		default:
			steps[i] = churnStep{"stop", 0}
		}
	}
	return steps
}

// TestChurn runs 1,000 users at once through random drops, reconnects,
// idles, stops and restarts, and checks the books: every lease released
// exactly once, one DestroySession per lease that held a concurrency, and
// no concurrency left held when it is over.
func TestChurn(t *testing.T) {
	users := 1000
	if testing.Short() {
		users = 200
	}
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{
			packSize: users + 50, carWait: time.Hour, cleanup: time.Second, noRateLimits: true, retryEvery: 3 * time.Second,
		})
		rng := rand.New(rand.NewPCG(2026, 11))
		lives := make([]churnLife, users)
		var wg sync.WaitGroup
		for i := range users {
			script := churnScript(rng)
			wg.Go(func() { lives[i] = runChurnUser(t, env, fmt.Sprintf("user-%04d", i), script) })
		}
		wg.Wait()
		synctest.Wait()

		// Every lease still held is released by the drain.
		if err := env.mgr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // CAR's cleanup delay
		for _, c := range env.car.Concurrencies() {
			if c.State != cartest.StateIdle {
				t.Errorf("leaked: %v", c)
			}
		}
		releasedPerUser := map[string]int{}
		destroyedPerUser := map[string]int{}
		total := 0
		for _, r := range env.released() {
			releasedPerUser[r.UserId]++
			if r.Destroyed {
				destroyedPerUser[r.UserId]++
			}
			if r.DestroyErr != nil {
				t.Errorf("%s: DestroySession failed: %v", r.UserId, r.DestroyErr)
			}
		}
		carDestroyed := map[string]int{}
		for _, e := range env.car.Events() {
			if e.Kind == cartest.EventDestroyed {
				carDestroyed[e.Subject]++
			}
		}
		var vanished, stopped int
		for i, life := range lives {
			id := fmt.Sprintf("user-%04d", i)
			total += life.leases
			vanished += life.vanished
			stopped += life.stopped
			if releasedPerUser[id] != life.leases {
				t.Errorf("%s: %d leases, %d releases", id, life.leases, releasedPerUser[id])
			}
			if carDestroyed[id] != destroyedPerUser[id] {
				t.Errorf("%s: CAR destroyed %d sessions, the manager released %d holding one", id, carDestroyed[id], destroyedPerUser[id])
			}
		}
		s := env.mgr.Snapshot()
		if len(s.Users) != 0 || s.DestroyCalls != env.destroyCalls() || s.DestroyFailures != 0 {
			t.Errorf("snapshot %+v, CAR saw %d destroys", s, env.destroyCalls())
		}
		// Blips shorter than the reconnect wait never cost a concurrency;
		// every user who vanished lost exactly one.
		if s.Released[car.ReleaseDisconnected] != vanished || s.Released[car.ReleaseStopped] != stopped {
			t.Errorf("released %v; the scripts vanished %d times and stopped %d times", s.Released, vanished, stopped)
		}
		t.Logf("%d users, %d leases, %d DestroySession calls, released by reason %v", users, total, s.DestroyCalls, s.Released)
	})
}

// churnLife is what a user's script did.
type churnLife struct{ leases, vanished, stopped int }

// runChurnUser plays one user's script.
func runChurnUser(t *testing.T, env *managerEnv, id string, script []churnStep) churnLife {
	start := func() *browser {
		lease, err := env.mgr.Start(t.Context(), car.StartRequest{UserId: id, UserIp: "10.1.2.3", ClientSession: "cs"})
		if err != nil {
			t.Errorf("%s: Start: %v", id, err)
			return nil
		}
		return env.connect(lease)
	}
	life := churnLife{leases: 1}
	b := start()
	if b == nil {
		return churnLife{}
	}
	restart := func() {
		b.sess.Close()
		time.Sleep(time.Second)
		life.leases++
		if b = start(); b == nil {
			life.leases--
		}
	}
	for _, st := range script {
		if b == nil {
			break
		}
		b.sess.Touch()
		switch st.kind {
		case "active":
			for end := time.Now().Add(st.d); time.Now().Before(end); {
				time.Sleep(30 * time.Second)
				b.sess.Touch()
			}
		case "blip":
			b.net.cut()
			time.Sleep(st.d)
			b.net.restore()
			time.Sleep(env.retryEvery + time.Second) // the client's next retry gets through
		case "vanish":
			b.net.cut()
			time.Sleep(car.DefaultReconnectWait + 5*time.Second)
			life.vanished++
			restart()
		case "idle":
			time.Sleep(car.DefaultIdleRelease*heartbeat.DefaultIdleThreshold + 5*time.Second)
			restart()
		case "stop":
			if err := env.mgr.Stop(t.Context(), id); err != nil {
				t.Errorf("%s: Stop: %v", id, err)
			}
			life.stopped++
			restart()
		}
	}
	return life
}
