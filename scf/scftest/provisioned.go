package scftest

import (
	"fmt"
	"math"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// trackingInterval and trackingCooldown are the documented evaluation
// period and scale-in cool-down of utilization tracking.
const (
	trackingInterval = 10 * time.Second
	trackingCooldown = 10 * time.Minute
)

// provisioning is a version's provisioned concurrency.
type provisioning struct {
	target   uint64 // AllocatedProvisionedConcurrencyNum
	status   string
	reason   string
	typ      string
	triggers []trigger
	tracking *tracking
	queued   bool
	gen      int // changes with every Put and Delete; older timers do nothing
}

// trigger is a scheduled provisioning action.
type trigger struct {
	num      uint64
	name     string
	cron     *cronExpr
	cronText string // as given
	provType string // as given: "" or Default
}

type tracking struct {
	target    float64
	min, max  uint64
	lastScale time.Time
}

// provisionedRequest is what PutProvisionedConcurrencyConfig asks for.
type provisionedRequest struct {
	num      uint64
	typ      string
	tracking *tracking
	triggers []trigger
}

// provLimit is the memory the function's provisioned concurrency may
// hold: its reservation, or what the account can still allocate.
func provLimit(fn *function) (int64, bool) {
	if fn.reservedMB != nil {
		return *fn.reservedMB, true
	}
	return fn.acct.userLimitMB - scf.UnreservableMB - allocated(fn.acct, fn), false
}

// provision sets a version's provisioned concurrency, when the quota
// can hold its peak.
func (m *model) provision(v *version, r provisionedRequest) *apiserver.Error {
	fn := v.fn
	if v.prov != nil && v.prov.status == scf.ProvisionedStatusInProgress {
		return apiserver.Errorf(scf.CodeProvisionedInProgress, "a provisioning task of %s:%s is in progress; retry when it is Done", fn.name, v.name)
	}
	tr := r.tracking
	peak := r.num
	if tr != nil {
		peak = tr.max
	}
	for _, t := range r.triggers {
		peak = max(peak, t.num)
	}
	limit, reserved := provLimit(fn)
	others := fn.provisionedMB() - v.provAllocMB()
	if need := int64(peak) * v.cfg.memMB; others+need > limit {
		switch {
		case tr != nil:
			return apiserver.Errorf(scf.CodeMaxCapacity, "MaxCapacity %d × %d MB does not fit in the %d MB left", tr.max, v.cfg.memMB, max(limit-others, 0))
		case reserved:
			return apiserver.Errorf(scf.CodeProvisionedExceedRes, "%d instances × %d MB (+ %d MB of other versions) exceed the function's reserved quota of %d MB",
				peak, v.cfg.memMB, others, limit)
		default:
			return apiserver.Errorf(scf.CodeProvisionedExceedAvail, "%d instances × %d MB (+ %d MB of other versions) exceed the %d MB the account can still allocate (quota − 12800 MB − other allocations)",
				peak, v.cfg.memMB, others, max(limit, 0))
		}
	}
	p := &provisioning{typ: r.typ, triggers: r.triggers, tracking: tr, gen: 1}
	if v.prov != nil {
		p.gen, p.queued = v.prov.gen+1, v.prov.queued
		v.prov.gen = -1
	}
	v.prov = p
	target := r.num
	if tr != nil {
		target = tr.min
		tr.lastScale = m.now()
	}
	m.applyTarget(v, target)
	m.startTimers(v)
	m.recordConfig("provisioned", fn.key()+":"+v.name, fmt.Sprintf("%s target %d", r.typ, target))
	return nil
}

// deprovision removes a version's provisioned concurrency, unless a
// provisioning task is in progress.
func (m *model) deprovision(v *version) *apiserver.Error {
	if v.prov != nil && v.prov.status == scf.ProvisionedStatusInProgress {
		return apiserver.Errorf(scf.CodeProvisionedInProgress, "a provisioning task of %s:%s is in progress; retry when it is Done", v.fn.name, v.name)
	}
	m.clearProvisioned(v)
	m.recordConfig("provisioned", v.fn.key()+":"+v.name, "deleted")
	return nil
}

// provAllocMB is the memory the version's provisioned concurrency holds
// against the function's allocation (tracking: its MaxCapacity).
func (v *version) provAllocMB() int64 {
	if v.prov == nil {
		return 0
	}
	n := v.prov.target
	if v.prov.tracking != nil {
		n = v.prov.tracking.max
	}
	return int64(n) * v.cfg.memMB
}

// provisionedInstances returns the version's provisioned instances.
func (v *version) provisionedInstances() []*instance {
	var out []*instance
	for _, inst := range v.fn.instances {
		if inst.ver == v && inst.provisioned && !inst.dead {
			out = append(out, inst)
		}
	}
	return out
}

// applyTarget sets the version's target: surplus instances become
// elastic ones (idle ones first; they are then kept for the retention time
// like any other), a shortfall is queued for the ramp.
func (m *model) applyTarget(v *version, target uint64) {
	p := v.prov
	p.target = target
	have := v.provisionedInstances()
	switch {
	case uint64(len(have)) > target:
		surplus := len(have) - int(target)
		for pass := 0; pass < 2 && surplus > 0; pass++ {
			for _, inst := range have {
				if surplus == 0 {
					break
				}
				if !inst.provisioned || (pass == 0 && len(inst.execs) > 0) {
					continue
				}
				m.charge(inst, func() { inst.provisioned = false })
				surplus--
				m.idle(inst)
			}
		}
		p.status, p.reason = scf.ProvisionedStatusDone, ""
	case uint64(len(have)) < target:
		p.status = scf.ProvisionedStatusInProgress
		p.reason = fmt.Sprintf("starting %d instances at %d per minute", target-uint64(len(have)), m.provisionRate)
		a := v.fn.acct
		if !p.queued {
			p.queued = true
			a.provQueue = append(a.provQueue, v)
		}
		if a.provTimer == nil {
			a.provTimer = m.after(time.Minute, func() { m.provTick(a) })
		}
	default:
		p.status, p.reason = scf.ProvisionedStatusDone, ""
	}
}

// provTick starts, once a minute, up to the provisioning rate of instances
// for a region's queued versions, oldest request first. A version whose
// quota cannot hold its instances becomes Failed.
func (m *model) provTick(a *account) {
	a.provTimer = nil
	if m.closed {
		return
	}
	budget := m.provisionRate
	var rest []*version
	for _, v := range a.provQueue {
		p := v.prov
		if p == nil || v.fn.deleted || p.status != scf.ProvisionedStatusInProgress {
			if p != nil {
				p.queued = false
			}
			continue
		}
		have := len(v.provisionedInstances())
		need := int(p.target) - have
		started, failed := 0, false
		for started < min(need, budget) {
			if limit, used, _ := m.headroom(v.fn); used+v.cfg.memMB > limit {
				failed = true
				p.status = scf.ProvisionedStatusFailed
				p.reason = fmt.Sprintf("only %d of %d instances could start: the function's concurrency quota of %d MB is in use",
					have+started, p.target, max(limit, 0))
				break
			}
			m.startInstance(v.fn, v, true, "provisioned")
			started++
		}
		budget -= started
		switch {
		case failed:
			p.queued = false
		case have+started >= int(p.target):
			p.status, p.reason, p.queued = scf.ProvisionedStatusDone, "", false
		default:
			rest = append(rest, v)
			continue
		}
		m.record(Event{Kind: "provisioned", Action: p.status, Subject: v.key,
			Detail: fmt.Sprintf("%d of %d available %s", have+started, p.target, p.reason)})
	}
	a.provQueue = rest
	if len(rest) > 0 {
		a.provTimer = m.after(time.Minute, func() { m.provTick(a) })
	}
}

// clearProvisioned removes a version's provisioned concurrency: its
// instances become elastic ones.
func (m *model) clearProvisioned(v *version) {
	if v.prov == nil {
		return
	}
	m.applyTarget(v, 0)
	v.prov.gen = -1
	v.prov = nil
}

// startTimers schedules a version's triggers and tracking.
func (m *model) startTimers(v *version) {
	p := v.prov
	for i := range p.triggers {
		m.scheduleTrigger(v, p, &p.triggers[i])
	}
	if p.tracking != nil {
		m.scheduleTracking(v, p)
	}
}

func (m *model) scheduleTrigger(v *version, p *provisioning, t *trigger) {
	gen := p.gen
	now := m.now()
	next, ok := t.cron.next(now)
	if !ok {
		return
	}
	m.after(next.Sub(now), func() {
		if v.prov != p || p.gen != gen || v.fn.deleted {
			return
		}
		m.applyTarget(v, t.num)
		m.record(Event{Kind: "provisioned", Action: "trigger", Subject: v.key,
			Detail: fmt.Sprintf("%s: target %d", t.name, t.num)})
		m.scheduleTrigger(v, p, t)
	})
}

// scheduleTracking evaluates utilization every 10 s: target =
// ⌈requests in flight ÷ TrackingTarget⌉ within [MinCapacity,MaxCapacity];
// scale-out at once, scale-in only 10 minutes after the last change.
func (m *model) scheduleTracking(v *version, p *provisioning) {
	gen := p.gen
	m.after(trackingInterval, func() {
		if v.prov != p || p.gen != gen || v.fn.deleted || m.closed {
			return
		}
		tr := p.tracking
		busy := 0
		for _, inst := range v.fn.instances {
			if inst.ver == v && !inst.dead {
				busy += len(inst.execs)
			}
		}
		want := uint64(math.Ceil(float64(busy)/tr.target - 1e-9))
		want = min(max(want, tr.min), tr.max)
		now := m.now()
		if want > p.target || (want < p.target && now.Sub(tr.lastScale) >= trackingCooldown) {
			tr.lastScale = now
			m.applyTarget(v, want)
			m.record(Event{Kind: "provisioned", Action: "tracking", Subject: v.key,
				Detail: fmt.Sprintf("%d requests in flight: target %d", busy, want)})
		}
		m.scheduleTracking(v, p)
	})
}

// available counts the version's ready provisioned instances.
func (v *version) available() uint64 { return uint64(len(v.provisionedInstances())) }
