package scftest

import (
	"context"
	"fmt"
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
	a := s.accounts[region]
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
func (s *Server) subjectOf(region, ns, name string) string {
	if region == s.cfg.region {
		return ns + "/" + name
	}
	return region + "/" + ns + "/" + name
}

// parseFunction splits "name", "namespace/name" or
// "region/namespace/name" into the region and the "namespace/name" key.
func (s *Server) parseFunction(function string) (region, key string) {
	parts := strings.Split(function, "/")
	region, ns := s.cfg.region, scf.DefaultNamespace
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

// findLocked finds a function by the helpers' spelling; nil if none.
func (s *Server) findLocked(function string) *function {
	region, key := s.parseFunction(function)
	if a := s.accounts[region]; a != nil {
		return a.fns[key]
	}
	return nil
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
