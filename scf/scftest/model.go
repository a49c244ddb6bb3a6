package scftest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/scf"
)

// fnConfig is the configuration of $LATEST or a published version.
type fnConfig struct {
	memMB       int64
	timeoutSec  int64
	initTimeout int64
	typ         string
	maxConc     int // requests per instance
	icc         *wireInstanceConcurrency
	description string
	handler     string
	runtime     string
	role        string
	env         []wireVariable
	tags        []wireTag
	asyncRun    string
	trace       string
	dnsCache    string
	behavior    *Behavior // from the SCFTEST_* variables; nil when none
	// coldStart is the version's own cold start (FunctionConfig.ColdStart,
	// SCFTEST_COLD_START) when coldStartSet; else the server's.
	coldStart    time.Duration
	coldStartSet bool
}

func (c fnConfig) clone() fnConfig {
	c.env = append([]wireVariable(nil), c.env...)
	c.tags = append([]wireTag(nil), c.tags...)
	if c.icc != nil {
		icc := *c.icc
		c.icc = &icc
	}
	return c
}

type version struct {
	fn    *function
	name  string // "$LATEST", "1", "2"…
	key   string // "namespace/function:name", the subject of its events
	cfg   fnConfig
	desc  string
	added time.Time
	prov  *provisioning
}

type weight struct {
	version string
	weight  float64
}

type alias struct {
	name, desc      string
	main            string
	weights         []weight
	matches         []wireVersionMatch
	added, modified time.Time
}

type function struct {
	acct            *account // its region's
	ns, name, id    string
	fkey            string // the subject of its events: Server.subjectOf
	added, modified time.Time
	versions        map[string]*version
	nextVersion     int
	aliases         map[string]*alias
	reservedMB      *int64
	handler         Handler
	instances       []*instance
	usageMB         int64 // memory of the instances that count: busy or provisioned
	queue           []*asyncEvent
	paused          bool // the async queue waits out an overrun
	retryNum        int
	msgTTL          time.Duration
	deleted         bool
}

// key is the subject of the function's events: "namespace/name" in the
// default region, "region/namespace/name" elsewhere.
func (f *function) key() string { return f.fkey }

// nsKey is "namespace/name", the function's key in its account.
func (f *function) nsKey() string { return f.ns + "/" + f.name }

// newVersion makes a version of f named name ("$LATEST", "1", …).
func (f *function) newVersion(name string, cfg fnConfig, desc string, added time.Time) *version {
	return &version{fn: f, name: name, key: f.fkey + ":" + name, cfg: cfg, desc: desc, added: added}
}

// published returns the published versions in order.
func (f *function) published() []*version {
	var vs []*version
	for _, v := range f.versions {
		if v.name != scf.QualifierLatest {
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool {
		a, _ := strconv.Atoi(vs[i].name)
		b, _ := strconv.Atoi(vs[j].name)
		return a < b
	})
	return vs
}

// provisionedMB is the memory the function's provisioned concurrency holds
// against its allocation.
func (f *function) provisionedMB() int64 {
	var mb int64
	for _, v := range f.versions {
		mb += v.provAllocMB()
	}
	return mb
}

type instance struct {
	id          string
	fn          *function
	ver         *version
	memMB       int64
	maxConc     int
	provisioned bool
	stale       bool // its version's configuration changed: recycle when idle
	dying       bool // being recycled after a failure: takes no request
	dead        bool
	started     time.Time
	lastUsed    time.Time
	execs       []*execution
	gen         int
	retention   *clock.Timer
}

// counts reports whether the instance holds quota: while busy, or always
// when provisioned.
func (inst *instance) counts() bool {
	return !inst.dead && (inst.provisioned || len(inst.execs) > 0)
}

// account applies change to inst and keeps the function's usage in step.
func (s *Server) account(inst *instance, change func()) {
	before := inst.counts()
	change()
	if after := inst.counts(); after != before {
		if after {
			inst.fn.usageMB += inst.memMB
		} else {
			inst.fn.usageMB -= inst.memMB
		}
	}
}

// rejection is a request that cannot run: an overrun or a missing
// qualifier.
type rejection struct {
	status  int
	message string
}

// headroomLocked returns the quota the function may use and what it uses:
// its reservation, or its region's unreserved pool shared by every
// function without one.
func (s *Server) headroomLocked(fn *function) (limit, used int64, reserved bool) {
	if fn.reservedMB != nil {
		return *fn.reservedMB, fn.usageMB, true
	}
	limit = fn.acct.userLimitMB
	for _, g := range fn.acct.fns {
		if g.reservedMB != nil {
			limit -= *g.reservedMB
		} else {
			used += g.usageMB
		}
	}
	return limit, used, false
}

// allocatedLocked is what reservations, and the provisioned memory of
// functions without one, take from a region's quota; except skips one
// function.
func allocatedLocked(a *account, except *function) int64 {
	var mb int64
	for _, g := range a.fns {
		if g == except {
			continue
		}
		if g.reservedMB != nil {
			mb += *g.reservedMB
		} else {
			mb += g.provisionedMB()
		}
	}
	return mb
}

// placeLocked finds an instance of ver for one request: a provisioned one
// with room, else a warm elastic one (busy ones with room first, to fill
// multi-concurrency instances, then the most recently used idle one), else
// it starts an elastic instance. The quota is checked whatever instance
// is found: an idle elastic instance holds no memory until it takes the
// request, so taking it needs the memory as much as a new one does; a
// busy or provisioned one already holds its memory. A new instance also
// needs the rolling minute's burst.
func (s *Server) placeLocked(fn *function, ver *version) (*instance, bool, *rejection) {
	if fn.reservedMB != nil && *fn.reservedMB == 0 {
		return nil, false, &rejection{scf.StatusResourceLimitReached,
			fmt.Sprintf("Function [%s] concurrency exceeded reserved quota 0 MB: the function is disabled", fn.name)}
	}
	var best *instance
	score := func(inst *instance) int {
		n := 0
		if inst.provisioned {
			n += 2
		}
		if len(inst.execs) > 0 {
			n++
		}
		return n
	}
	for _, inst := range fn.instances {
		if inst.ver != ver || inst.dead || inst.dying || inst.stale || len(inst.execs) >= inst.maxConc {
			continue
		}
		if best == nil || score(inst) > score(best) || (score(inst) == score(best) && inst.lastUsed.After(best.lastUsed)) {
			best = inst
		}
	}
	if best != nil && best.counts() {
		return best, false, nil
	}
	mem := ver.cfg.memMB
	if best != nil {
		mem = best.memMB
	}
	if limit, used, reserved := s.headroomLocked(fn); used+mem > limit {
		what := "region unreserved quota"
		if reserved {
			what = "reserved quota"
		}
		return nil, false, &rejection{scf.StatusResourceLimitReached,
			fmt.Sprintf("Function [%s] concurrency exceeded %s %d MB", fn.name, what, max(limit, 0))}
	}
	if best != nil {
		return best, false, nil
	}
	if s.cfg.burst > 0 {
		a, now := fn.acct, s.clock.Now()
		a.pruneStarts(now)
		if len(a.starts) >= s.cfg.burst {
			return nil, false, &rejection{scf.StatusResourceLimit,
				fmt.Sprintf("Resource limit exceeded for function [%s]: region %s started %d new instances in the last minute, the most it may; the next may start at %s",
					fn.name, a.region, s.cfg.burst, a.starts[0].Add(time.Minute).UTC().Format(time.RFC3339Nano))}
		}
		a.starts = append(a.starts, now)
	}
	return s.startInstanceLocked(fn, ver, false, "elastic"), true, nil
}

// startInstanceLocked starts an instance of ver.
func (s *Server) startInstanceLocked(fn *function, ver *version, provisioned bool, why string) *instance {
	s.seq++
	now := s.clock.Now()
	inst := &instance{
		id: "ins-" + strconv.FormatUint(s.seq, 36), fn: fn, ver: ver, memMB: ver.cfg.memMB,
		maxConc: ver.cfg.maxConc, started: now, lastUsed: now,
	}
	fn.instances = append(fn.instances, inst)
	s.account(inst, func() { inst.provisioned = provisioned })
	if provisioned {
		s.counters.ProvisionedStarts++
	} else {
		s.counters.ElasticStarts++
	}
	s.api.Record(apiserver.Event{Kind: "instance", Action: "start", Subject: ver.key,
		Resource: inst.id, Detail: why})
	return inst
}

// removeInstanceLocked recycles an instance. A provisioned instance lost to
// a failure is replaced at once when replace is set.
func (s *Server) removeInstanceLocked(inst *instance, why string, replace bool) {
	if inst.dead {
		return
	}
	s.account(inst, func() { inst.dead = true })
	if inst.retention != nil {
		inst.retention.Stop()
	}
	fn := inst.fn
	for i, x := range fn.instances {
		if x == inst {
			fn.instances = append(fn.instances[:i], fn.instances[i+1:]...)
			break
		}
	}
	s.counters.InstancesStopped++
	s.api.Record(apiserver.Event{Kind: "instance", Action: "stop", Subject: inst.ver.key,
		Resource: inst.id, Detail: why})
	if replace && inst.provisioned && inst.ver.prov != nil && !fn.deleted {
		if limit, used, _ := s.headroomLocked(fn); used+inst.ver.cfg.memMB <= limit {
			s.startInstanceLocked(fn, inst.ver, true, "provisioned (replacing "+inst.id+")")
		}
	}
}

// idleLocked is called when an instance has no request left: an elastic
// instance is kept for the retention time and then recycled, a stale one
// at once; a provisioned one stays.
func (s *Server) idleLocked(inst *instance) {
	if inst.dead || inst.dying || len(inst.execs) > 0 {
		return
	}
	inst.lastUsed = s.clock.Now()
	if inst.provisioned {
		return
	}
	if inst.stale || inst.fn.deleted {
		s.removeInstanceLocked(inst, "configuration changed", false)
		return
	}
	inst.gen++
	gen := inst.gen
	if inst.retention != nil {
		inst.retention.Stop()
	}
	inst.retention = s.clock.AfterFunc(s.cfg.retention, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !inst.dead && inst.gen == gen && len(inst.execs) == 0 && !inst.provisioned {
			s.removeInstanceLocked(inst, "idle retention expired", false)
		}
	})
}

// busyLocked marks an instance taken by ex.
func (s *Server) busyLocked(inst *instance, ex *execution) {
	inst.gen++
	if inst.retention != nil {
		inst.retention.Stop()
		inst.retention = nil
	}
	s.account(inst, func() { inst.execs = append(inst.execs, ex) })
	inst.lastUsed = s.clock.Now()
}

// detachLocked removes ex from its instance.
func (s *Server) detachLocked(ex *execution) {
	inst := ex.inst
	s.account(inst, func() {
		for i, x := range inst.execs {
			if x == ex {
				inst.execs = append(inst.execs[:i], inst.execs[i+1:]...)
				break
			}
		}
	})
}

// lookupLocked finds a function of a region.
func (s *Server) lookupLocked(a *account, ns, name string) (*function, *apiserver.Error) {
	if ns == "" {
		ns = scf.DefaultNamespace
	}
	if name == "" {
		return nil, apiserver.Errorf("MissingParameter", "the parameter `FunctionName` is required")
	}
	fn := a.fns[ns+"/"+name]
	if fn == nil {
		return nil, apiserver.Errorf(scf.CodeFunctionNotFound, "the function [%s] does not exist in namespace [%s]", name, ns)
	}
	return fn, nil
}

// resolveLocked turns a qualifier (version or alias) into a version.
func (s *Server) resolveLocked(fn *function, qualifier, routingKey string) *version {
	if v := fn.versions[qualifier]; v != nil {
		return v
	}
	a := fn.aliases[qualifier]
	if a == nil {
		return nil
	}
	if routingKey != "" && len(a.matches) > 0 {
		var keys map[string]string
		if json.Unmarshal([]byte(routingKey), &keys) == nil {
			for _, m := range a.matches {
				if v, ok := keys[m.Key]; ok && matchRule(m, v) {
					return fn.versions[m.Version]
				}
			}
		}
	}
	if len(a.weights) > 0 {
		r, acc := s.rng.Float64(), 0.0
		for _, w := range a.weights {
			if acc += w.weight; r < acc {
				return fn.versions[w.version]
			}
		}
	}
	return fn.versions[a.main]
}

// matchRule applies an alias rule: "exact" compares the value, "range"
// checks a number against an interval such as "[1,100)".
func matchRule(m wireVersionMatch, value string) bool {
	switch m.Method {
	case "exact":
		return value == m.Expression
	case "range":
		lo, hi, loIn, hiIn, ok := parseRange(m.Expression)
		x, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			return false
		}
		return (x > lo || loIn && x == lo) && (x < hi || hiIn && x == hi)
	}
	return false
}

func parseRange(expr string) (lo, hi float64, loIn, hiIn, ok bool) {
	expr = strings.TrimSpace(expr)
	if len(expr) < 5 {
		return
	}
	loIn, hiIn = expr[0] == '[', expr[len(expr)-1] == ']'
	if (expr[0] != '[' && expr[0] != '(') || (expr[len(expr)-1] != ']' && expr[len(expr)-1] != ')') {
		return
	}
	a, b, found := strings.Cut(expr[1:len(expr)-1], ",")
	if !found {
		return
	}
	var err1, err2 error
	lo, err1 = strconv.ParseFloat(strings.TrimSpace(a), 64)
	hi, err2 = strconv.ParseFloat(strings.TrimSpace(b), 64)
	ok = err1 == nil && err2 == nil && lo <= hi
	return
}

// timeLayout is the layout of the API's times, in China Standard Time.
const timeLayout = "2006-01-02 15:04:05"

func cst() *time.Location { return time.FixedZone("CST", 8*3600) }

func apiTime(t time.Time) string { return t.In(cst()).Format(timeLayout) }
