package scftest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/scf"
)

// The model is the state of the regions' accounts: their functions,
// versions, aliases and instances, each region's burst window and
// provisioning queue, the asynchronous queues, the executions in flight
// and the request records GetRequestStatus reads, with the counters. It
// has no lock and knows no wire type: the Server calls it under its mutex
// (API handlers after decoding and checking a request, the server-side
// helpers, the executions' goroutines), and it calls back through its
// host, whose timers run their function under the same mutex.
type model struct {
	host
	region               string // the default region: events name its functions without it
	burst, provisionRate int
	retention, coldStart time.Duration
	queueLimit           int
	accounts             map[string]*account // one per region; the map never changes
	records              recordRing
	counters             Counters
	seq                  uint64
	rng                  *rand.Rand
	closed               bool // no new execution, dispatch or provisioning step
}

// host is what the model needs of the server around it.
type host struct {
	// now is the model time.
	now func() time.Time
	// after runs f after d of model time, under the server's lock.
	after func(d time.Duration, f func()) *clock.Timer
	// record appends to the event log.
	record func(Event)
	// begin gives a new execution its context, which the server's Close
	// cancels, and counts the goroutine run will start.
	begin func() (context.Context, context.CancelFunc)
	// run starts an execution's goroutine.
	run func(ex *execution)
}

func newModel(cfg *config, h host) *model {
	m := &model{
		host: h, region: cfg.region, burst: cfg.burst, provisionRate: cfg.provisionRate,
		retention: cfg.retention, coldStart: cfg.coldStart, queueLimit: cfg.queueLimit,
		accounts: newAccounts(cfg), records: newRecordRing(cfg.maxRecords),
		rng: rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x5cf)),
	}
	m.counters.ByStatus = make(map[int]int64)
	return m
}

func (m *model) recordConfig(action, subject, detail string) {
	m.record(Event{Kind: "config", Action: action, Subject: subject, Detail: detail})
}

// keyValue is an environment variable or a tag.
type keyValue struct{ Key, Value string }

// instanceConcurrency is an HTTP function's InstanceConcurrencyConfig, as
// given (GetFunction returns it).
type instanceConcurrency struct {
	dynamicEnabled, isolation, typ string
	maxConcurrency                 uint64
	mixNode, session               []byte // JSON, kept as given
}

// fnConfig is the configuration of $LATEST or a published version.
type fnConfig struct {
	memMB       int64
	timeoutSec  int64
	initTimeout int64
	typ         string
	maxConc     int // requests per instance
	icc         *instanceConcurrency
	description string
	handler     string
	runtime     string
	role        string
	env         []keyValue
	tags        []keyValue
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
	c.env = append([]keyValue(nil), c.env...)
	c.tags = append([]keyValue(nil), c.tags...)
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

// versionMatch is an alias rule: requests whose routing key Key matches
// Expression by Method run Version.
type versionMatch struct{ version, key, method, expression string }

type alias struct {
	name, desc      string
	main            string
	weights         []weight
	matches         []versionMatch
	added, modified time.Time
}

type function struct {
	acct            *account // its region's
	ns, name, id    string
	fkey            string // the subject of its events: model.subjectOf
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
	// retention is the pending idle-retention check, if any: one timer
	// at a time, which looks at lastUsed when it fires (see idle).
	retention *clock.Timer
}

// counts reports whether the instance holds quota: while busy, or always
// when provisioned.
func (inst *instance) counts() bool {
	return !inst.dead && (inst.provisioned || len(inst.execs) > 0)
}

// charge applies change to inst and keeps the function's usage in step.
func (m *model) charge(inst *instance, change func()) {
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

// headroom returns the quota the function may use and what it uses:
// its reservation, or its region's unreserved pool shared by every
// function without one.
func (m *model) headroom(fn *function) (limit, used int64, reserved bool) {
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

// allocated is what reservations, and the provisioned memory of
// functions without one, take from a region's quota; except skips one
// function.
func allocated(a *account, except *function) int64 {
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

// place finds an instance of ver for one request: a provisioned one
// with room, else a warm elastic one (busy ones with room first, to fill
// multi-concurrency instances, then the most recently used idle one), else
// it starts an elastic instance. The quota is checked whatever instance
// is found: an idle elastic instance holds no memory until it takes the
// request, so taking it needs the memory as much as a new one does; a
// busy or provisioned one already holds its memory. A new instance also
// needs the rolling minute's burst.
func (m *model) place(fn *function, ver *version) (*instance, bool, *rejection) {
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
	if limit, used, reserved := m.headroom(fn); used+mem > limit {
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
	if m.burst > 0 {
		a, now := fn.acct, m.now()
		a.pruneStarts(now)
		if len(a.starts) >= m.burst {
			return nil, false, &rejection{scf.StatusResourceLimit,
				fmt.Sprintf("Resource limit exceeded for function [%s]: region %s started %d new instances in the last minute, the most it may; the next may start at %s",
					fn.name, a.region, m.burst, a.starts[0].Add(time.Minute).UTC().Format(time.RFC3339Nano))}
		}
		a.starts = append(a.starts, now)
	}
	return m.startInstance(fn, ver, false, "elastic"), true, nil
}

// startInstance starts an instance of ver.
func (m *model) startInstance(fn *function, ver *version, provisioned bool, why string) *instance {
	m.seq++
	now := m.now()
	inst := &instance{
		id: "ins-" + strconv.FormatUint(m.seq, 36), fn: fn, ver: ver, memMB: ver.cfg.memMB,
		maxConc: ver.cfg.maxConc, started: now, lastUsed: now,
	}
	fn.instances = append(fn.instances, inst)
	m.charge(inst, func() { inst.provisioned = provisioned })
	if provisioned {
		m.counters.ProvisionedStarts++
	} else {
		m.counters.ElasticStarts++
	}
	m.record(Event{Kind: "instance", Action: "start", Subject: ver.key,
		Resource: inst.id, Detail: why})
	return inst
}

// removeInstance recycles an instance. A provisioned instance lost to
// a failure is replaced at once when replace is set.
func (m *model) removeInstance(inst *instance, why string, replace bool) {
	if inst.dead {
		return
	}
	m.charge(inst, func() { inst.dead = true })
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
	m.counters.InstancesStopped++
	m.record(Event{Kind: "instance", Action: "stop", Subject: inst.ver.key,
		Resource: inst.id, Detail: why})
	if replace && inst.provisioned && inst.ver.prov != nil && !fn.deleted {
		if limit, used, _ := m.headroom(fn); used+inst.ver.cfg.memMB <= limit {
			m.startInstance(fn, inst.ver, true, "provisioned (replacing "+inst.id+")")
		}
	}
}

// idle is called when an instance has no request left: an elastic
// instance is kept for the retention time and then recycled, a stale one
// at once; a provisioned one stays.
//
// The retention is not a timer per request: an instance has at most one
// pending check, set when it goes idle with none pending. When the check
// fires, an instance that is busy (or provisioned) again is left alone,
// its next idle setting a new check; one used since the check was set is
// checked again at its last use plus the retention; one idle the whole
// retention is recycled. So an instance is recycled the retention after
// it last went idle, as with a timer set at every idle.
func (m *model) idle(inst *instance) { m.idleAt(inst, m.now()) }

// idleAt is idle at now, the model time.
func (m *model) idleAt(inst *instance, now time.Time) {
	if inst.dead || inst.dying || len(inst.execs) > 0 {
		return
	}
	inst.lastUsed = now
	if inst.provisioned {
		return
	}
	if inst.stale || inst.fn.deleted {
		m.removeInstance(inst, "configuration changed", false)
		return
	}
	m.checkRetention(inst, m.retention)
}

// checkRetention sets the instance's retention check to d from now,
// unless one is pending.
func (m *model) checkRetention(inst *instance, d time.Duration) {
	if inst.retention != nil {
		return
	}
	inst.retention = m.after(d, func() {
		inst.retention = nil
		if inst.dead || len(inst.execs) > 0 || inst.provisioned {
			return
		}
		if left := inst.lastUsed.Add(m.retention).Sub(m.now()); left > 0 {
			m.checkRetention(inst, left)
			return
		}
		m.removeInstance(inst, "idle retention expired", false)
	})
}

// busy marks an instance taken by ex. A pending retention check stays:
// it finds the instance busy, or used since it was set.
func (m *model) busy(inst *instance, ex *execution, now time.Time) {
	m.charge(inst, func() { inst.execs = append(inst.execs, ex) })
	inst.lastUsed = now
}

// detach removes ex from its instance.
func (m *model) detach(ex *execution) {
	inst := ex.inst
	m.charge(inst, func() {
		for i, x := range inst.execs {
			if x == ex {
				inst.execs = append(inst.execs[:i], inst.execs[i+1:]...)
				break
			}
		}
	})
}

// lookup finds a function of a region.
func (m *model) lookup(a *account, ns, name string) (*function, *apiserver.Error) {
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

// resolve turns a qualifier (version or alias) into a version.
func (m *model) resolve(fn *function, qualifier, routingKey string) *version {
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
			for _, r := range a.matches {
				if v, ok := keys[r.key]; ok && r.matches(v) {
					return fn.versions[r.version]
				}
			}
		}
	}
	if len(a.weights) > 0 {
		r, acc := m.rng.Float64(), 0.0
		for _, w := range a.weights {
			if acc += w.weight; r < acc {
				return fn.versions[w.version]
			}
		}
	}
	return fn.versions[a.main]
}

// matches applies an alias rule: "exact" compares the value, "range"
// checks a number against an interval such as "[1,100)".
func (r versionMatch) matches(value string) bool {
	switch r.method {
	case "exact":
		return value == r.expression
	case "range":
		lo, hi, loIn, hiIn, ok := parseRange(r.expression)
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
