package scftest

import (
	"fmt"
	"math"
	"strings"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// The provisioned concurrency actions.

// fnQualifierIn serves Get (Qualifier optional) and Delete (required).
// provLimitLocked is the memory the function's provisioned concurrency may
// hold: its reservation, or what the account can still allocate.
func (s *Server) provLimitLocked(fn *function) (int64, bool) {
	if fn.reservedMB != nil {
		return *fn.reservedMB, true
	}
	return fn.acct.userLimitMB - scf.UnreservableMB - allocatedLocked(fn.acct, fn), false
}

// publishedVersion resolves a provisioned-concurrency qualifier.
func publishedVersion(fn *function, q string) (*version, *apiserver.Error) {
	if q == scf.QualifierLatest {
		return nil, apiserver.Errorf(scf.CodeInvalidQualifier, "$LATEST cannot hold provisioned concurrency: publish a version")
	}
	if _, isAlias := fn.aliases[q]; isAlias {
		return nil, apiserver.Errorf(scf.CodeInvalidQualifier, "%s is an alias; provisioned concurrency is set on a published version", q)
	}
	v := fn.versions[q]
	if v == nil {
		return nil, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", q, fn.name)
	}
	return v, nil
}

// provisionedRequest is a checked PutProvisionedConcurrencyConfig.
type provisionedRequest struct {
	num      uint64
	typ      string
	tracking *tracking
	triggers []trigger
}

// checkProvisioned validates what PutProvisionedConcurrencyConfig asks
// for, before any state is read.
func checkProvisioned(in *putProvisionedIn) (provisionedRequest, *apiserver.Error) {
	if in.VersionProvisionedConcurrencyNum == nil {
		return provisionedRequest{}, apiserver.Errorf("MissingParameter", "the parameter `VersionProvisionedConcurrencyNum` is required")
	}
	r := provisionedRequest{num: *in.VersionProvisionedConcurrencyNum, typ: in.ProvisionedType}
	if r.typ == "" {
		r.typ = scf.ProvisionedTypeDefault
	}
	switch r.typ {
	case scf.ProvisionedTypeDefault:
		if in.TrackingTarget != nil || in.MinCapacity != nil || in.MaxCapacity != nil {
			return r, apiserver.Errorf(scf.CodeInvalidProvisionType, "TrackingTarget, MinCapacity and MaxCapacity are only for ProvisionedType ConcurrencyUtilizationTracking")
		}
	case scf.ProvisionedTypeTracking:
		switch {
		case r.num != 0:
			return r, apiserver.Errorf(scf.CodeInvalidProvisionType, "VersionProvisionedConcurrencyNum must be 0 with ConcurrencyUtilizationTracking")
		case len(in.TriggerActions) > 0:
			return r, apiserver.Errorf(scf.CodeInvalidProvisionType, "TriggerActions cannot be combined with ConcurrencyUtilizationTracking")
		case in.TrackingTarget == nil || !(*in.TrackingTarget > 0 && *in.TrackingTarget < 1) || !twoDecimals(*in.TrackingTarget):
			return r, apiserver.Errorf(scf.CodeInvalidTrackingTarget, "TrackingTarget must be in the open range (0,1) with at most two decimals")
		case in.MinCapacity == nil || *in.MinCapacity < 1:
			return r, apiserver.Errorf(scf.CodeInvalidMinCapacity, "MinCapacity must be at least 1")
		case in.MaxCapacity == nil || *in.MaxCapacity < *in.MinCapacity:
			return r, apiserver.Errorf(scf.CodeInvalidMinCapacity, "MaxCapacity must be given and at least MinCapacity")
		}
		r.tracking = &tracking{target: *in.TrackingTarget, min: *in.MinCapacity, max: *in.MaxCapacity}
	default:
		return r, apiserver.Errorf(scf.CodeInvalidProvisionType, "ProvisionedType %q must be Default or ConcurrencyUtilizationTracking", r.typ)
	}
	var e *apiserver.Error
	r.triggers, e = parseTriggers(in.TriggerActions)
	return r, e
}

func (s *Server) putProvisioned() regionalHandler {
	return onParsed(s, checkProvisioned, func(in *putProvisionedIn, r provisionedRequest, fn *function) (any, *apiserver.Error) {
		return nil, s.provisionLocked(fn, in, r)
	})
}

// provisionLocked sets a version's provisioned concurrency.
func (s *Server) provisionLocked(fn *function, in *putProvisionedIn, r provisionedRequest) *apiserver.Error {
	v, e := publishedVersion(fn, in.Qualifier)
	if e != nil {
		return e
	}
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
	limit, reserved := s.provLimitLocked(fn)
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
	p := &provisioning{typ: r.typ, actions: in.TriggerActions, triggers: r.triggers, tracking: tr, gen: 1}
	if v.prov != nil {
		p.gen, p.queued = v.prov.gen+1, v.prov.queued
		v.prov.gen = -1
	}
	v.prov = p
	target := r.num
	if tr != nil {
		target = tr.min
		tr.lastScale = s.clock.Now()
	}
	s.applyTargetLocked(v, target)
	s.startTimersLocked(v)
	s.recordConfig("provisioned", fn.key()+":"+v.name, fmt.Sprintf("%s target %d", r.typ, target))
	return nil
}

func twoDecimals(v float64) bool {
	c := v * 100
	return math.Abs(c-math.Round(c)) < 1e-9
}

func parseTriggers(actions []wireTriggerAction) ([]trigger, *apiserver.Error) {
	if len(actions) > maxTriggerActions {
		return nil, apiserver.Errorf(scf.CodeTriggerActionLimit, "at most %d TriggerActions per version", maxTriggerActions)
	}
	names, crons := map[string]bool{}, map[string]bool{}
	var out []trigger
	for i, a := range actions {
		switch {
		case a.TriggerName == "":
			return nil, apiserver.Errorf("MissingParameter", "the parameter `TriggerActions.%d.TriggerName` is required", i)
		case len(a.TriggerName) > 100:
			return nil, apiserver.Errorf(scf.CodeInvalidTriggerName, "TriggerName %q is longer than 100 characters", a.TriggerName)
		case names[a.TriggerName]:
			return nil, apiserver.Errorf(scf.CodeTriggerNameDuplicate, "TriggerName %q repeats", a.TriggerName)
		case crons[strings.Join(strings.Fields(a.TriggerCronConfig), " ")]:
			return nil, apiserver.Errorf(scf.CodeTriggerCronDuplicate, "TriggerCronConfig %q repeats", a.TriggerCronConfig)
		case a.TriggerProvisionedConcurrencyNum == nil:
			return nil, apiserver.Errorf("MissingParameter", "the parameter `TriggerActions.%d.TriggerProvisionedConcurrencyNum` is required", i)
		case a.ProvisionedType != "" && a.ProvisionedType != scf.ProvisionedTypeDefault:
			return nil, apiserver.Errorf(scf.CodeInvalidProvisionType, "TriggerActions.%d.ProvisionedType must be Default", i)
		}
		c, err := parseCron(a.TriggerCronConfig)
		if err != nil {
			return nil, apiserver.Errorf(scf.CodeInvalidTriggerCron, "TriggerActions.%d.TriggerCronConfig: %v", i, err)
		}
		names[a.TriggerName] = true
		crons[strings.Join(strings.Fields(a.TriggerCronConfig), " ")] = true
		out = append(out, trigger{num: *a.TriggerProvisionedConcurrencyNum, name: a.TriggerName, cron: c})
	}
	return out, nil
}

func (s *Server) getProvisioned() regionalHandler {
	return onFunction(s, nil, func(in *fnQualifierIn, fn *function) (any, *apiserver.Error) {
		if in.Qualifier != "" {
			if _, e := publishedVersion(fn, in.Qualifier); e != nil {
				return nil, e
			}
		}
		out := getProvisionedOut{Allocated: []versionProvisionedOut{}}
		for _, v := range fn.published() {
			if v.prov == nil || (in.Qualifier != "" && v.name != in.Qualifier) {
				continue
			}
			actions := v.prov.actions
			if actions == nil {
				actions = []wireTriggerAction{}
			}
			out.Allocated = append(out.Allocated, versionProvisionedOut{
				AllocatedProvisionedConcurrencyNum: v.prov.target, AvailableProvisionedConcurrencyNum: s.availableLocked(v),
				Status: v.prov.status, StatusReason: v.prov.reason, Qualifier: v.name, TriggerActions: actions,
			})
		}
		limit, _ := s.provLimitLocked(fn)
		if free := limit - fn.provisionedMB(); free > 0 {
			out.UnallocatedConcurrencyNum = uint64(free / fn.versions[scf.QualifierLatest].cfg.memMB)
		}
		return out, nil
	})
}

func (s *Server) deleteProvisioned() regionalHandler {
	return onFunction(s, func(in *fnQualifierIn) *apiserver.Error {
		return apiserver.Require("Qualifier", in.Qualifier)
	}, func(in *fnQualifierIn, fn *function) (any, *apiserver.Error) {
		v, e := publishedVersion(fn, in.Qualifier)
		if e != nil {
			return nil, e
		}
		if v.prov != nil && v.prov.status == scf.ProvisionedStatusInProgress {
			return nil, apiserver.Errorf(scf.CodeProvisionedInProgress, "a provisioning task of %s:%s is in progress; retry when it is Done", fn.name, v.name)
		}
		s.clearProvisionedLocked(v)
		s.recordConfig("provisioned", fn.key()+":"+v.name, "deleted")
		return nil, nil
	})
}
