package scftest

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tcconcurrency/sdk-go/scf"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
)

// The model's functions, versions, aliases and quotas: what the API's
// configuration actions change once a request has been checked.

// checkNew reports why a region cannot take a new function ns/name: the
// name is taken, the namespace is full, or the account has all its
// namespaces.
func (m *model) checkNew(acct *account, ns, name string) *apiserver.Error {
	if acct.fns[ns+"/"+name] != nil {
		return apiserver.Errorf(scf.CodeFunctionExists, "the function [%s] already exists in namespace [%s]", name, ns)
	}
	count, namespaces := 0, map[string]bool{scf.DefaultNamespace: true}
	for _, fn := range acct.fns {
		namespaces[fn.ns] = true
		if fn.ns == ns {
			count++
		}
	}
	if count >= FunctionsPerNamespace {
		return apiserver.Errorf(scf.CodeFunctionCountLimit, "namespace [%s] already holds %d functions", ns, FunctionsPerNamespace)
	}
	if !namespaces[ns] && len(namespaces) >= maxNamespaces {
		return apiserver.Errorf("LimitExceeded.Namespace", "the account already has %d namespaces", maxNamespaces)
	}
	return nil
}

// addFunction creates a function ns/name (checkNew allowed it) whose
// $LATEST has cfg, with the $DEFAULT alias on $LATEST.
func (m *model) addFunction(acct *account, ns, name string, cfg fnConfig, desc string) *function {
	now := m.now()
	m.seq++
	fn := &function{
		acct: acct, ns: ns, name: name, fkey: m.subjectOf(acct.region, ns, name), id: fmt.Sprintf("lam-%08x", m.seq), added: now, modified: now,
		versions: map[string]*version{}, aliases: map[string]*alias{},
		retryNum: defaultRetryNum, msgTTL: defaultMsgTTL,
	}
	fn.versions[scf.QualifierLatest] = fn.newVersion(scf.QualifierLatest, cfg, desc, now)
	fn.aliases[scf.AliasDefault] = &alias{name: scf.AliasDefault, main: scf.QualifierLatest, added: now, modified: now}
	acct.fns[fn.nsKey()] = fn
	m.recordConfig("function", fn.key(), fmt.Sprintf("created: %s, %d MB, %d s", cfg.typ, cfg.memMB, cfg.timeoutSec))
	return fn
}

// reconfigure gives $LATEST a new configuration (and description, when
// desc is set): its instances are recycled, at once when idle, else when
// their requests end.
func (m *model) reconfigure(fn *function, cfg fnConfig, desc *string) {
	latest := fn.versions[scf.QualifierLatest]
	if desc != nil {
		latest.desc = *desc
	}
	latest.cfg = cfg
	fn.modified = m.now()
	m.retire(fn, latest, "configuration changed")
	m.recordConfig("function", fn.key(), fmt.Sprintf("updated: %d MB, %d s, %d per instance", cfg.memMB, cfg.timeoutSec, cfg.maxConc))
}

// retire marks the instances of v stale and recycles the idle ones.
func (m *model) retire(fn *function, v *version, why string) {
	for _, inst := range append([]*instance(nil), fn.instances...) {
		if inst.ver == v {
			inst.stale = true
			if len(inst.execs) == 0 {
				m.removeInstance(inst, why, false)
			}
		}
	}
}

// publish snapshots $LATEST as the next version.
func (m *model) publish(fn *function, desc string) *version {
	latest := fn.versions[scf.QualifierLatest]
	fn.nextVersion++
	v := fn.newVersion(strconv.Itoa(fn.nextVersion), latest.cfg.clone(), desc, m.now())
	fn.versions[v.name] = v
	m.recordConfig("function", fn.key(), "published version "+v.name)
	return v
}

// deleteVersion deletes a published version, unless an alias routes to it
// or a provisioning task of it is in progress.
func (m *model) deleteVersion(fn *function, v *version) *apiserver.Error {
	for _, a := range fn.aliases {
		if a.main == v.name || hasWeight(a, v.name) {
			return apiserver.Errorf("ResourceInUse.Alias", "alias %s routes to version %s", a.name, v.name)
		}
	}
	if v.prov != nil && v.prov.status == scf.ProvisionedStatusInProgress {
		return apiserver.Errorf(scf.CodeProvisionedInProgress, "a provisioning task of %s:%s is in progress", fn.name, v.name)
	}
	m.clearProvisioned(v)
	m.retire(fn, v, "version deleted")
	delete(fn.versions, v.name)
	m.recordConfig("function", fn.key(), "deleted version "+v.name)
	return nil
}

// deleteFunction deletes a function, unless a provisioning task of one of
// its versions is in progress: its queued events are dropped, its idle
// instances recycled and the busy ones when their requests end.
func (m *model) deleteFunction(fn *function) *apiserver.Error {
	for _, v := range fn.versions {
		if v.prov != nil && v.prov.status == scf.ProvisionedStatusInProgress {
			return apiserver.Errorf(scf.CodeProvisionedInProgress, "a provisioning task of %s:%s is in progress", fn.name, v.name)
		}
	}
	for _, v := range fn.versions {
		m.clearProvisioned(v)
	}
	fn.deleted = true
	for _, ev := range fn.queue {
		m.drop(fn, ev, "function deleted")
	}
	fn.queue = nil
	for _, inst := range append([]*instance(nil), fn.instances...) {
		if len(inst.execs) == 0 {
			m.removeInstance(inst, "function deleted", false)
		}
	}
	delete(fn.acct.fns, fn.nsKey())
	m.recordConfig("function", fn.key(), "deleted")
	return nil
}

func hasWeight(a *alias, version string) bool {
	for _, w := range a.weights {
		if w.version == version {
			return true
		}
	}
	for _, r := range a.matches {
		if r.version == version {
			return true
		}
	}
	return false
}

// reserve sets a function's reserved concurrency, when the account can
// still reserve it and it holds the function's provisioned concurrency.
func (m *model) reserve(fn *function, want uint64) *apiserver.Error {
	acct := fn.acct
	reservable := acct.userLimitMB - scf.UnreservableMB - allocated(acct, fn)
	if want > uint64(max(reservable, 0)) {
		return apiserver.Errorf(scf.CodeReservedMemory,
			"ReservedConcurrencyMem %d MB exceeds the %d MB that can be reserved: quota %d MB − 12800 MB never reservable − %d MB allocated to other functions",
			want, max(reservable, 0), acct.userLimitMB, allocated(acct, fn))
	}
	mb := int64(want)
	if prov := fn.provisionedMB(); prov > mb {
		return apiserver.Errorf(scf.CodeProvisionedExceedRes,
			"the function's provisioned concurrency holds %d MB, more than ReservedConcurrencyMem %d MB", prov, mb)
	}
	fn.reservedMB = &mb
	m.recordConfig("reserved", fn.key(), strconv.FormatInt(mb, 10)+" MB")
	return nil
}

// unreserve returns a function to its region's shared pool.
func (m *model) unreserve(fn *function) {
	fn.reservedMB = nil
	m.recordConfig("reserved", fn.key(), "deleted: back to the shared pool")
}

// setTotal sets a region's concurrency limit, within its quota and above
// what is allocated.
func (m *model) setTotal(acct *account, want uint64) *apiserver.Error {
	if want > uint64(acct.quotaMB) {
		return apiserver.Errorf(scf.CodeTotalConcurrencyMemory, "TotalConcurrencyMem %d MB exceeds the region's limit of %d MB", want, acct.quotaMB)
	}
	floor := allocated(acct, nil) + scf.UnreservableMB
	if int64(want) < floor {
		return apiserver.Errorf(scf.CodeReservedExceedTotal,
			"TotalConcurrencyMem %d MB is below %d MB: the %d MB allocated (reserved and provisioned) + 12800 MB never reservable", want, floor, floor-scf.UnreservableMB)
	}
	acct.userLimitMB = int64(want)
	m.recordConfig("total", "", strconv.FormatUint(want, 10)+" MB")
	return nil
}

// route is where an alias sends requests: its main version, the weighted
// others and the rules.
type route struct {
	main    string
	weights []weight
	matches []versionMatch
}

// addAlias creates an alias of fn.
func (m *model) addAlias(fn *function, name string, r route, desc *string) {
	now := m.now()
	a := &alias{name: name, main: r.main, weights: r.weights, matches: r.matches, added: now, modified: now}
	if desc != nil {
		a.desc = *desc
	}
	fn.aliases[a.name] = a
}

// setAlias changes where an alias routes (and its description, when desc
// is set).
func (m *model) setAlias(a *alias, r route, desc *string) {
	a.main, a.weights, a.matches, a.modified = r.main, r.weights, r.matches, m.now()
	if desc != nil {
		a.desc = *desc
	}
}

// deleteAlias deletes an alias other than $DEFAULT.
func (m *model) deleteAlias(fn *function, a *alias) *apiserver.Error {
	if a.name == scf.AliasDefault {
		return apiserver.Errorf("InvalidParameterValue.Alias", "the $DEFAULT alias cannot be deleted")
	}
	delete(fn.aliases, a.name)
	return nil
}

// setAsyncRetry sets the retry policy of a function's asynchronous queue:
// retries when retry ≥ 0, the events' time to live when ttl > 0.
func (m *model) setAsyncRetry(fn *function, retry int, ttl time.Duration) {
	if retry >= 0 {
		fn.retryNum = retry
	}
	if ttl > 0 {
		fn.msgTTL = ttl
	}
}
