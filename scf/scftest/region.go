package scftest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/scf"
)

// DefaultRegion is the region Server.Client sends and the server-side
// helpers (AddFunction, Instances, FunctionURL…) use unless told
// otherwise (WithRegion).
const DefaultRegion = "ap-guangzhou"

// account is the account in one region: SCF's regions are independent,
// each with its own quota, burst, functions and provisioning queue.
type account struct {
	region      string
	quotaMB     int64                // the region's limit (GetAccount's TotalConcurrencyMem)
	userLimitMB int64                // PutTotalConcurrencyConfig (UserConcurrencyMemLimit)
	fns         map[string]*function // by "namespace/name"
	starts      []time.Time          // elastic starts in the last minute, oldest first
	provQueue   []*version
	provTimer   *clock.Timer
}

// newAccounts makes the account of every region of scf.Regions, each with
// its documented quota; the default region's may be set (WithAccountQuota).
func newAccounts(cfg *config) map[string]*account {
	accts := make(map[string]*account)
	for _, r := range scf.Regions() {
		mb, _ := scf.RegionQuotaMB(r)
		if q, ok := cfg.quotas[r]; ok {
			mb = q
		}
		accts[r] = &account{region: r, quotaMB: mb, userLimitMB: mb, fns: make(map[string]*function)}
	}
	return accts
}

// accountFor returns the account of the request's region (X-TC-Region):
// a missing region is MissingParameter, one SCF does not serve
// UnsupportedRegion, as the API answers. The map never changes after
// construction, so no lock is needed.
func (s *Server) accountFor(region string) (*account, *apiserver.Error) {
	if region == "" {
		return nil, apiserver.Errorf("MissingParameter", "The request is missing a required parameter `Region` (X-TC-Region).")
	}
	a := s.model.accounts[region]
	if a == nil {
		return nil, apiserver.Errorf("UnsupportedRegion", "A value specified in X-TC-Region is not valid, is unsupported, or cannot be used: SCF does not serve region %q.", region)
	}
	return a, nil
}

// regionalHandler is an action's handler given its region's account.
type regionalHandler func(req *apiserver.Request, a *account) (any, error)

// regional checks the region before the action runs.
func (s *Server) regional(h regionalHandler) apiserver.Handler {
	return func(_ context.Context, req *apiserver.Request) (any, error) {
		a, e := s.accountFor(req.Region)
		if e != nil {
			return nil, e
		}
		return h(req, a)
	}
}

// subjectOf is a function's name as the server-side helpers take it and
// the event log shows it: "namespace/name" in the default region,
// "region/namespace/name" elsewhere.
func (m *model) subjectOf(region, ns, name string) string {
	if region == m.region {
		return ns + "/" + name
	}
	return region + "/" + ns + "/" + name
}

// parseFunction splits "name", "namespace/name" or
// "region/namespace/name" into the region and the "namespace/name" key.
func (m *model) parseFunction(function string) (region, key string) {
	parts := strings.Split(function, "/")
	region, ns := m.region, scf.DefaultNamespace
	switch len(parts) {
	case 1:
		return region, ns + "/" + parts[0]
	case 2:
		if parts[0] != "" {
			ns = parts[0]
		}
		return region, ns + "/" + parts[1]
	default:
		if parts[0] != "" {
			region = parts[0]
		}
		if parts[1] != "" {
			ns = parts[1]
		}
		return region, ns + "/" + strings.Join(parts[2:], "/")
	}
}

// find finds a function by the helpers' spelling; nil if none.
func (m *model) find(function string) *function {
	region, key := m.parseFunction(function)
	if a := m.accounts[region]; a != nil {
		return a.fns[key]
	}
	return nil
}

// sortedFunctions returns the region's functions by name.
func (a *account) sortedFunctions() []*function {
	fns := make([]*function, 0, len(a.fns))
	for _, fn := range a.fns {
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].key() < fns[j].key() })
	return fns
}

// allFunctions returns every region's functions, region by region.
func (m *model) allFunctions() []*function {
	var fns []*function
	for _, r := range scf.Regions() {
		fns = append(fns, m.accounts[r].sortedFunctions()...)
	}
	return fns
}

// close ends every execution in flight with 500 and stops the model:
// nothing starts, runs from the queues or provisions after it.
func (m *model) close() {
	m.closed = true
	for _, fn := range m.allFunctions() {
		for _, inst := range append([]*instance(nil), fn.instances...) {
			for _, ex := range append([]*execution(nil), inst.execs...) {
				m.finish(ex, outcome{status: scf.StatusInternalError, message: "the reference server closed"})
			}
		}
	}
}

// pruneStarts forgets the elastic starts that left the rolling minute.
func (a *account) pruneStarts(now time.Time) {
	n := 0
	for n < len(a.starts) && !now.Before(a.starts[n].Add(time.Minute)) {
		n++
	}
	if n > 0 {
		a.starts = append(a.starts[:0], a.starts[n:]...)
	}
}

func checkRegion(option, region string) error {
	if _, ok := scf.RegionQuotaMB(region); !ok {
		return fmt.Errorf("%s: region %q is not one SCF serves (%s)", option, region, strings.Join(scf.Regions(), ", "))
	}
	return nil
}

// host is the model's view of the server: the model clock, timers that
// run under the server's lock, the event log, and the executions'
// goroutines, which the server owns (Close cancels their contexts and
// waits for them).
func (s *Server) host() host {
	return host{
		now: s.clock.Now,
		after: func(d time.Duration, f func()) *clock.Timer {
			return s.clock.AfterFunc(d, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				f()
			})
		},
		record: func(e Event) { s.api.Record(e) },
		begin: func() (context.Context, context.CancelFunc) {
			s.wg.Add(1)
			return context.WithCancel(s.baseCtx)
		},
		run: s.run,
	}
}
