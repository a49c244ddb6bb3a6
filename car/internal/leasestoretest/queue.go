package leasestoretest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// The queue's wake-ups across replicas: a release anywhere moves the queue
// at once, and every queued user hears its new place from the replica it
// queued through. The cases run the managers with a queue poll of a
// minute and a CAR that cleans up at once, and look at the bubble's clock
// without letting it move: what happens must happen on the store's
// events, since no poll could have come yet.

// slowPoll is the queue poll interval of the wake-up cases: far longer
// than any case waits for a step.
const slowPoll = time.Minute

// roles picks, in a fleet of three, the replica whose runner holds the
// head lock and the two others, once every runner has tried the lock.
func (f *fleet) roles() (head, a, b *Replica) {
	f.T.Helper()
	synctest.Wait()
	head = f.headHolder()
	if head == nil {
		f.T.Fatal("no replica holds the head lock")
	}
	var others []*Replica
	for _, r := range f.Reps {
		if r != head {
			others = append(others, r)
		}
	}
	return head, others[0], others[1]
}

// admissions records when each queued lease's Wait returned.
type admissions struct {
	mu    sync.Mutex
	order []string
	at    map[string]time.Time
	errs  map[string]error
}

func (a *admissions) wait(t *testing.T, user string, l *car.Lease) {
	go func() {
		_, err := l.Wait(t.Context())
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			a.errs[user] = err
			return
		}
		a.order = append(a.order, user)
		a.at[user] = time.Now()
	}()
}

func (a *admissions) get() ([]string, map[string]time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.order), a.at
}

// releaseWakesQueueAtOnce: users queued through replica B are admitted,
// one release at a time, the instant a release through replica A is done,
// by the runner of the third replica, which holds the head lock: A's
// store event wakes it. The bubble's clock does not move between the
// release and the admission, and the poll is a minute away. With CAR
// failing the head's ApplyConcurrent (a 503), the head keeps its place
// and is admitted after its backoff, the next release again at once; the
// queue is admitted in order, and nothing leaks.
func releaseWakesQueueAtOnce(t *testing.T, newBackend func(*testing.T) Backend) {
	f := newFleetWith(t, newBackend, 3, 1, fleetConfig{poll: slowPoll})
	head, a, b := f.roles()
	f.Start(a, "holder")
	adm := &admissions{at: map[string]time.Time{}, errs: map[string]error{}}
	const n = 4
	for i := range n {
		user := fmt.Sprintf("q%d", i+1)
		l := f.Start(b, user)
		if l.QueuePosition != i+1 {
			t.Fatalf("%s through %s: position %d, want %d", user, b.Name, l.QueuePosition, i+1)
		}
		adm.wait(t, user, l)
	}
	synctest.Wait()
	current := "holder"
	for i := range n {
		user := fmt.Sprintf("q%d", i+1)
		fault := i == 1
		if fault {
			if err := f.CAR.InjectFault("ApplyConcurrent", cartest.Fault{Code: "InternalError", HTTPStatus: 503, Times: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Mgr.Stop(t.Context(), current); err != nil {
			t.Fatalf("%s: Stop(%s): %v", a.Name, current, err)
		}
		released := time.Now()
		synctest.Wait() // the clock stands still
		order, at := adm.get()
		if fault {
			if len(order) != i {
				t.Fatalf("%s admitted %v although CAR failed its ApplyConcurrent", user, order)
			}
			// The head's backoff after one failure is at most a second.
			time.Sleep(time.Second)
			synctest.Wait()
			order, at = adm.get()
			if len(order) != i+1 || order[i] != user {
				t.Fatalf("a second after %s's failed admission: admitted %v, want %s next (it keeps its place; the poll is %v away)", user, order, user, slowPoll)
			}
			t.Logf("%s admitted %v after its 503", user, at[user].Sub(released))
		} else if len(order) != i+1 || order[i] != user || !at[user].Equal(released) {
			t.Fatalf("release of %s through %s: admitted %v (%s at %v), want %s at once (the poll is %v away; %s holds the head lock)",
				current, a.Name, order, user, at[user], user, slowPoll, head.Name)
		}
		current = user
	}
	adm.mu.Lock()
	if len(adm.errs) != 0 {
		t.Errorf("Waits failed: %v", adm.errs)
	}
	adm.mu.Unlock()
	if h := f.headHolder(); h != head {
		t.Errorf("the head lock moved from %s to %v: the premise (a runner elsewhere admits) is gone", head.Name, h)
	}
	f.noLeaks()
}
