package scftest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/scf"
)

// The model runs with no server around it: a manual clock, timers that
// fire in Advance, an event log in a slice. These tests drive it alone.

var modelStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestModel(t *testing.T, burst int) (*model, *clock.Clock, *[]Event) {
	t.Helper()
	clk := clock.NewManual(modelStart)
	t.Cleanup(clk.Close)
	var events []Event
	cfg := config{region: DefaultRegion, quotas: map[string]int64{}, burst: burst, provisionRate: scf.ProvisionPerMinute,
		retention: DefaultIdleRetention, queueLimit: 10, maxRecords: 10, seed: 1}
	m := newModel(&cfg, host{
		now:    clk.Now,
		after:  clk.AfterFunc,
		record: func(e Event) { events = append(events, e) },
		begin:  func() (context.Context, context.CancelFunc) { return context.WithCancel(t.Context()) },
		run:    func(*execution) { t.Fatal("no execution runs in these tests") },
	})
	return m, clk, &events
}

func addTestFunction(t *testing.T, m *model, name string, memMB int64) *function {
	t.Helper()
	acct := m.accounts[DefaultRegion]
	if e := m.checkNew(acct, scf.DefaultNamespace, name); e != nil {
		t.Fatal(e)
	}
	cfg := fnConfig{memMB: memMB, timeoutSec: 3, typ: scf.FunctionTypeEvent, maxConc: 1}
	return m.addFunction(acct, scf.DefaultNamespace, name, cfg, "")
}

// A new elastic instance needs the rolling minute's burst: the third of a
// burst of two is a 429 that names when the next may start, and it may a
// minute after the first.
func TestModelBurstWindow(t *testing.T) {
	m, clk, _ := newTestModel(t, 2)
	fn := addTestFunction(t, m, "burst", 128)
	latest := fn.versions[scf.QualifierLatest]
	take := func() *rejection {
		inst, _, rej := m.place(fn, latest)
		if rej == nil {
			m.busy(inst, &execution{inst: inst}, m.now()) // keeps it from taking the next request
		}
		return rej
	}
	for i := range 2 {
		if rej := take(); rej != nil {
			t.Fatalf("request %d: %v", i, rej)
		}
		clk.Advance(10 * time.Second)
	}
	rej := take()
	if rej == nil || rej.status != scf.StatusResourceLimit {
		t.Fatalf("third new instance in the minute: %+v, want a 429", rej)
	}
	if next := modelStart.Add(time.Minute).UTC().Format(time.RFC3339Nano); !strings.Contains(rej.message, next) {
		t.Errorf("429 message %q does not name %s", rej.message, next)
	}
	clk.Advance(40 * time.Second) // 60 s after the first start
	if rej := take(); rej != nil {
		t.Fatalf("a minute after the first start: %v", rej)
	}
	if got := len(fn.instances); got != 3 {
		t.Errorf("%d instances, want 3", got)
	}
}

// A change the model refuses leaves it as it was, and logs nothing.
func TestModelRefusalChangesNothing(t *testing.T) {
	m, _, events := newTestModel(t, 0)
	fn := addTestFunction(t, m, "quota", 128)
	acct := fn.acct
	before := len(*events)

	if e := m.reserve(fn, uint64(acct.userLimitMB)); e == nil || e.Code != scf.CodeReservedMemory {
		t.Errorf("reserving the whole quota: %v, want %s", e, scf.CodeReservedMemory)
	}
	if fn.reservedMB != nil {
		t.Errorf("reservation %d MB after a refusal", *fn.reservedMB)
	}
	limit := acct.userLimitMB
	if e := m.setTotal(acct, uint64(acct.quotaMB)+1); e == nil || e.Code != scf.CodeTotalConcurrencyMemory {
		t.Errorf("a total above the quota: %v, want %s", e, scf.CodeTotalConcurrencyMemory)
	}
	if e := m.setTotal(acct, scf.UnreservableMB-1); e == nil || e.Code != scf.CodeReservedExceedTotal {
		t.Errorf("a total below the unreservable floor: %v, want %s", e, scf.CodeReservedExceedTotal)
	}
	if acct.userLimitMB != limit {
		t.Errorf("limit %d MB after refusals, want %d", acct.userLimitMB, limit)
	}
	if e := m.deleteAlias(fn, fn.aliases[scf.AliasDefault]); e == nil {
		t.Error("deleting $DEFAULT was accepted")
	}
	if fn.aliases[scf.AliasDefault] == nil {
		t.Error("$DEFAULT is gone after a refusal")
	}
	if e := m.checkNew(acct, scf.DefaultNamespace, "quota"); e == nil || e.Code != scf.CodeFunctionExists {
		t.Errorf("a second function of the same name: %v, want %s", e, scf.CodeFunctionExists)
	}
	if got := (*events)[before:]; len(got) != 0 {
		t.Errorf("refusals logged %v", got)
	}

	if e := m.reserve(fn, 1024); e != nil {
		t.Fatal(e)
	}
	if fn.reservedMB == nil || *fn.reservedMB != 1024 || len(*events) != before+1 {
		t.Errorf("after reserving 1024 MB: reservation %v, %d events", fn.reservedMB, len(*events)-before)
	}
}
