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
	actions  []wireTriggerAction
	triggers []trigger
	tracking *tracking
	queued   bool
	gen      int // changes with every Put and Delete; older timers do nothing
}

type trigger struct {
	num  uint64
	name string
	cron *cronExpr
}

type tracking struct {
	target    float64
	min, max  uint64
	lastScale time.Time
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

// provisionedLocked returns the version's provisioned instances.
func (s *Server) provisionedLocked(v *version) []*instance {
	var out []*instance
	for _, inst := range v.fn.instances {
		if inst.ver == v && inst.provisioned && !inst.dead {
			out = append(out, inst)
		}
	}
	return out
}

// applyTargetLocked sets the version's target: surplus instances become
// elastic ones (idle ones first; they are then kept for the retention time
// like any other), a shortfall is queued for the ramp.
func (s *Server) applyTargetLocked(v *version, target uint64) {
	p := v.prov
	p.target = target
	have := s.provisionedLocked(v)
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
				s.account(inst, func() { inst.provisioned = false })
				surplus--
				s.idleLocked(inst)
			}
		}
		p.status, p.reason = scf.ProvisionedStatusDone, ""
	case uint64(len(have)) < target:
		p.status = scf.ProvisionedStatusInProgress
		p.reason = fmt.Sprintf("starting %d instances at %d per minute", target-uint64(len(have)), s.cfg.provisionRate)
		a := v.fn.acct
		if !p.queued {
			p.queued = true
			a.provQueue = append(a.provQueue, v)
		}
		if a.provTimer == nil {
			a.provTimer = s.clock.AfterFunc(time.Minute, func() { s.provTick(a) })
		}
	default:
		p.status, p.reason = scf.ProvisionedStatusDone, ""
	}
}

// provTick starts, once a minute, up to the provisioning rate of instances
// for a region's queued versions, oldest request first. A version whose
// quota cannot hold its instances becomes Failed.
func (s *Server) provTick(a *account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.provTimer = nil
	if s.closed {
		return
	}
	budget := s.cfg.provisionRate
	var rest []*version
	for _, v := range a.provQueue {
		p := v.prov
		if p == nil || v.fn.deleted || p.status != scf.ProvisionedStatusInProgress {
			if p != nil {
				p.queued = false
			}
			continue
		}
		have := len(s.provisionedLocked(v))
		need := int(p.target) - have
		started, failed := 0, false
		for started < min(need, budget) {
			if limit, used, _ := s.headroomLocked(v.fn); used+v.cfg.memMB > limit {
				failed = true
				p.status = scf.ProvisionedStatusFailed
				p.reason = fmt.Sprintf("only %d of %d instances could start: the function's concurrency quota of %d MB is in use",
					have+started, p.target, max(limit, 0))
				break
			}
			s.startInstanceLocked(v.fn, v, true, "provisioned")
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
		s.api.Record(apiserver.Event{Kind: "provisioned", Action: p.status, Subject: v.key,
			Detail: fmt.Sprintf("%d of %d available %s", have+started, p.target, p.reason)})
	}
	a.provQueue = rest
	if len(rest) > 0 {
		a.provTimer = s.clock.AfterFunc(time.Minute, func() { s.provTick(a) })
	}
}

// clearProvisionedLocked removes a version's provisioned concurrency: its
// instances become elastic ones.
func (s *Server) clearProvisionedLocked(v *version) {
	if v.prov == nil {
		return
	}
	s.applyTargetLocked(v, 0)
	v.prov.gen = -1
	v.prov = nil
}

// startTimersLocked schedules a version's triggers and tracking.
func (s *Server) startTimersLocked(v *version) {
	p := v.prov
	for i := range p.triggers {
		s.scheduleTriggerLocked(v, p, &p.triggers[i])
	}
	if p.tracking != nil {
		s.scheduleTrackingLocked(v, p)
	}
}

func (s *Server) scheduleTriggerLocked(v *version, p *provisioning, t *trigger) {
	gen := p.gen
	now := s.clock.Now()
	next, ok := t.cron.next(now)
	if !ok {
		return
	}
	s.clock.AfterFunc(next.Sub(now), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if v.prov != p || p.gen != gen || v.fn.deleted {
			return
		}
		s.applyTargetLocked(v, t.num)
		s.api.Record(apiserver.Event{Kind: "provisioned", Action: "trigger", Subject: v.key,
			Detail: fmt.Sprintf("%s: target %d", t.name, t.num)})
		s.scheduleTriggerLocked(v, p, t)
	})
}

// scheduleTrackingLocked evaluates utilization every 10 s: target =
// ⌈requests in flight ÷ TrackingTarget⌉ within [MinCapacity,MaxCapacity];
// scale-out at once, scale-in only 10 minutes after the last change.
func (s *Server) scheduleTrackingLocked(v *version, p *provisioning) {
	gen := p.gen
	s.clock.AfterFunc(trackingInterval, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if v.prov != p || p.gen != gen || v.fn.deleted || s.closed {
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
		now := s.clock.Now()
		if want > p.target || (want < p.target && now.Sub(tr.lastScale) >= trackingCooldown) {
			tr.lastScale = now
			s.applyTargetLocked(v, want)
			s.api.Record(apiserver.Event{Kind: "provisioned", Action: "tracking", Subject: v.key,
				Detail: fmt.Sprintf("%d requests in flight: target %d", busy, want)})
		}
		s.scheduleTrackingLocked(v, p)
	})
}

// availableLocked counts the version's ready provisioned instances.
func (s *Server) availableLocked(v *version) uint64 {
	return uint64(len(s.provisionedLocked(v)))
}
