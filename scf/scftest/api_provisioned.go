package scftest

import (
	"math"
	"strings"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// The provisioned concurrency actions.

// fnQualifierIn serves Get (Qualifier optional) and Delete (required).
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
		v, e := publishedVersion(fn, in.Qualifier)
		if e != nil {
			return nil, e
		}
		return nil, s.model.provision(v, r)
	})
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
		out = append(out, trigger{num: *a.TriggerProvisionedConcurrencyNum, name: a.TriggerName, cron: c,
			cronText: a.TriggerCronConfig, provType: a.ProvisionedType})
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
			out.Allocated = append(out.Allocated, versionProvisionedOut{
				AllocatedProvisionedConcurrencyNum: v.prov.target, AvailableProvisionedConcurrencyNum: v.available(),
				Status: v.prov.status, StatusReason: v.prov.reason, Qualifier: v.name, TriggerActions: triggerActions(v.prov.triggers),
			})
		}
		limit, _ := provLimit(fn)
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
		return nil, s.model.deprovision(v)
	})
}

// triggerActions is the TriggerActions of a version's provisioned
// concurrency, as they were given.
func triggerActions(ts []trigger) []wireTriggerAction {
	out := make([]wireTriggerAction, 0, len(ts))
	for _, t := range ts {
		out = append(out, wireTriggerAction{TriggerName: t.name, TriggerProvisionedConcurrencyNum: &t.num,
			TriggerCronConfig: t.cronText, ProvisionedType: t.provType})
	}
	return out
}
