package scftest

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// Limits the model enforces beyond the documented ones; the real values are
// not published.
const (
	maxTriggerActions = 20 // scheduled provisioning actions per version
	maxNamespaces     = 5  // GetAccount's NamespacesCount
	defaultRetryNum   = 2
	defaultMsgTTL     = 6 * time.Hour
)

func (s *Server) register() {
	for _, a := range []apiserver.Action{
		{Name: "PutReservedConcurrencyConfig", Handle: s.regional(s.putReserved)},
		{Name: "GetReservedConcurrencyConfig", Handle: s.regional(s.getReserved)},
		{Name: "DeleteReservedConcurrencyConfig", Handle: s.regional(s.deleteReserved)},
		{Name: "PutProvisionedConcurrencyConfig", Handle: s.regional(s.putProvisioned)},
		{Name: "GetProvisionedConcurrencyConfig", Handle: s.regional(s.getProvisioned)},
		{Name: "DeleteProvisionedConcurrencyConfig", Handle: s.regional(s.deleteProvisioned)},
		{Name: "PutTotalConcurrencyConfig", Handle: s.regional(s.putTotal)},
		{Name: "GetAccount", Handle: s.regional(s.getAccount)},
		{Name: "Invoke", Handle: s.regional(s.invoke)},
		{Name: "InvokeFunction", Handle: s.regional(s.invokeFunction)},
		{Name: "GetRequestStatus", Handle: s.regional(s.getRequestStatus)},
		{Name: "CreateFunction", Handle: s.regional(s.createFunction)},
		{Name: "GetFunction", Handle: s.regional(s.getFunction)},
		{Name: "UpdateFunctionConfiguration", Handle: s.regional(s.updateFunction)},
		{Name: "PublishVersion", Handle: s.regional(s.publishVersion)},
		{Name: "ListFunctions", Handle: s.regional(s.listFunctions)},
		{Name: "DeleteFunction", Handle: s.regional(s.deleteFunction)},
		{Name: "CreateAlias", Handle: s.regional(s.createAlias)},
		{Name: "GetAlias", Handle: s.regional(s.getAlias)},
		{Name: "UpdateAlias", Handle: s.regional(s.updateAlias)},
		{Name: "DeleteAlias", Handle: s.regional(s.deleteAlias)},
		{Name: "ListAliases", Handle: s.regional(s.listAliases)},
		{Name: "GetFunctionEventInvokeConfig", Handle: s.regional(s.getEventInvokeConfig)},
		{Name: "UpdateFunctionEventInvokeConfig", Handle: s.regional(s.updateEventInvokeConfig)},
	} {
		s.api.Register(a)
	}
}

// fail converts a possibly nil *apiserver.Error into an error without the
// typed-nil trap.
func fail(e *apiserver.Error) error {
	if e == nil {
		return nil
	}
	return e
}

func (s *Server) recordConfig(action, subject, detail string) {
	s.api.Record(apiserver.Event{Kind: "config", Action: action, Subject: subject, Detail: detail})
}

// ---- reserved and total quota ----

func (s *Server) putReserved(req *apiserver.Request, acct *account) (any, error) {
	var in putReservedIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	if in.ReservedConcurrencyMem == nil {
		return nil, apiserver.Errorf("MissingParameter", "the parameter `ReservedConcurrencyMem` is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	want := *in.ReservedConcurrencyMem
	reservable := acct.userLimitMB - scf.UnreservableMB - allocatedLocked(acct, fn)
	if want > uint64(max(reservable, 0)) {
		return nil, apiserver.Errorf(scf.CodeReservedMemory,
			"ReservedConcurrencyMem %d MB exceeds the %d MB that can be reserved: quota %d MB − 12800 MB never reservable − %d MB allocated to other functions",
			want, max(reservable, 0), acct.userLimitMB, allocatedLocked(acct, fn))
	}
	mb := int64(want)
	if prov := fn.provisionedMB(); prov > mb {
		return nil, apiserver.Errorf(scf.CodeProvisionedExceedRes,
			"the function's provisioned concurrency holds %d MB, more than ReservedConcurrencyMem %d MB", prov, mb)
	}
	fn.reservedMB = &mb
	s.recordConfig("reserved", fn.key(), strconv.FormatInt(mb, 10)+" MB")
	return nil, nil
}

func (s *Server) getReserved(req *apiserver.Request, acct *account) (any, error) {
	var in fnRefIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	out := getReservedOut{}
	if fn.reservedMB != nil {
		v := uint64(*fn.reservedMB)
		out.ReservedMem = &v
	}
	return out, nil
}

func (s *Server) deleteReserved(req *apiserver.Request, acct *account) (any, error) {
	var in fnRefIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	fn.reservedMB = nil
	s.recordConfig("reserved", fn.key(), "deleted: back to the shared pool")
	return nil, nil
}

func (s *Server) putTotal(req *apiserver.Request, acct *account) (any, error) {
	var in putTotalIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.TotalConcurrencyMem == nil {
		return nil, apiserver.Errorf("MissingParameter", "the parameter `TotalConcurrencyMem` is required")
	}
	if in.Namespace != "" && in.Namespace != scf.DefaultNamespace {
		return nil, apiserver.Errorf(scf.CodeUnsupportedOp, "namespace-level concurrency quotas need a purchased package; only the account quota (Namespace default) is modelled")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	want := *in.TotalConcurrencyMem
	if want > uint64(acct.quotaMB) {
		return nil, apiserver.Errorf(scf.CodeTotalConcurrencyMemory, "TotalConcurrencyMem %d MB exceeds the region's limit of %d MB", want, acct.quotaMB)
	}
	floor := allocatedLocked(acct, nil) + scf.UnreservableMB
	if int64(want) < floor {
		return nil, apiserver.Errorf(scf.CodeReservedExceedTotal,
			"TotalConcurrencyMem %d MB is below %d MB: the %d MB allocated (reserved and provisioned) + 12800 MB never reservable", want, floor, floor-scf.UnreservableMB)
	}
	acct.userLimitMB = int64(want)
	s.recordConfig("total", "", strconv.FormatUint(want, 10)+" MB")
	return nil, nil
}

func (s *Server) getAccount(req *apiserver.Request, acct *account) (any, error) {
	var in struct{}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byNS := map[string][]*function{scf.DefaultNamespace: nil}
	for _, fn := range sortedFunctionsLocked(acct) {
		byNS[fn.ns] = append(byNS[fn.ns], fn)
	}
	names := make([]string, 0, len(byNS))
	for ns := range byNS {
		names = append(names, ns)
	}
	sort.Strings(names)
	allocated := allocatedLocked(acct, nil)
	out := getAccountOut{
		AccountUsage: usageOut{
			NamespacesCount: int64(len(names)), TotalConcurrencyMem: acct.quotaMB,
			TotalAllocatedConcurrencyMem: allocated, UserConcurrencyMemLimit: acct.userLimitMB,
		},
		AccountLimit: limitsOut{NamespacesCount: maxNamespaces},
	}
	for _, ns := range names {
		u := namespaceUsageOut{Namespace: ns, Functions: []string{}}
		var nsAlloc, nsProv int64
		for _, fn := range byNS[ns] {
			u.Functions = append(u.Functions, fn.name)
			if fn.reservedMB != nil {
				nsAlloc += *fn.reservedMB
			} else {
				nsAlloc += fn.provisionedMB()
			}
			nsProv += fn.provisionedMB()
		}
		u.FunctionsCount = int64(len(u.Functions))
		total := acct.userLimitMB
		u.TotalConcurrencyMem, u.TotalAllocatedConcurrencyMem, u.TotalAllocatedProvisionedMem = &total, &nsAlloc, &nsProv
		out.AccountUsage.Namespace = append(out.AccountUsage.Namespace, u)
		out.AccountLimit.Namespace = append(out.AccountLimit.Namespace, namespaceLimitOut{
			FunctionsCount: FunctionsPerNamespace, Namespace: ns,
			Trigger:              triggerCountOut{Cos: 10, Timer: 10, Cmq: 10, Total: 50, Ckafka: 10, Apigw: 10, Cls: 10, Clb: 10, Mps: 10, Cm: 10, Vod: 10, Eb: 10},
			ConcurrentExecutions: acct.userLimitMB / 128, TimeoutLimit: scf.MaxTimeoutSeconds, TestModelLimit: 20,
			InitTimeoutLimit: 300, RetryNumLimit: defaultRetryNum, MinMsgTTL: 60, MaxMsgTTL: int64(defaultMsgTTL / time.Second),
		})
	}
	return out, nil
}

// ---- provisioned concurrency ----

// provLimitLocked is the memory the function's provisioned concurrency may
// hold: its reservation, or what the account can still allocate.
func (s *Server) provLimitLocked(fn *function) (int64, bool) {
	if fn.reservedMB != nil {
		return *fn.reservedMB, true
	}
	return fn.acct.userLimitMB - scf.UnreservableMB - allocatedLocked(fn.acct, fn), false
}

// publishedVersionLocked resolves a provisioned-concurrency qualifier.
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

func (s *Server) putProvisioned(req *apiserver.Request, acct *account) (any, error) {
	var in putProvisionedIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName, "Qualifier", in.Qualifier); err != nil {
		return nil, err
	}
	if in.VersionProvisionedConcurrencyNum == nil {
		return nil, apiserver.Errorf("MissingParameter", "the parameter `VersionProvisionedConcurrencyNum` is required")
	}
	num := *in.VersionProvisionedConcurrencyNum
	typ := in.ProvisionedType
	if typ == "" {
		typ = scf.ProvisionedTypeDefault
	}
	var tr *tracking
	switch typ {
	case scf.ProvisionedTypeDefault:
		if in.TrackingTarget != nil || in.MinCapacity != nil || in.MaxCapacity != nil {
			return nil, apiserver.Errorf(scf.CodeInvalidProvisionType, "TrackingTarget, MinCapacity and MaxCapacity are only for ProvisionedType ConcurrencyUtilizationTracking")
		}
	case scf.ProvisionedTypeTracking:
		switch {
		case num != 0:
			return nil, apiserver.Errorf(scf.CodeInvalidProvisionType, "VersionProvisionedConcurrencyNum must be 0 with ConcurrencyUtilizationTracking")
		case len(in.TriggerActions) > 0:
			return nil, apiserver.Errorf(scf.CodeInvalidProvisionType, "TriggerActions cannot be combined with ConcurrencyUtilizationTracking")
		case in.TrackingTarget == nil || !(*in.TrackingTarget > 0 && *in.TrackingTarget < 1) || !twoDecimals(*in.TrackingTarget):
			return nil, apiserver.Errorf(scf.CodeInvalidTrackingTarget, "TrackingTarget must be in the open range (0,1) with at most two decimals")
		case in.MinCapacity == nil || *in.MinCapacity < 1:
			return nil, apiserver.Errorf(scf.CodeInvalidMinCapacity, "MinCapacity must be at least 1")
		case in.MaxCapacity == nil || *in.MaxCapacity < *in.MinCapacity:
			return nil, apiserver.Errorf(scf.CodeInvalidMinCapacity, "MaxCapacity must be given and at least MinCapacity")
		}
		tr = &tracking{target: *in.TrackingTarget, min: *in.MinCapacity, max: *in.MaxCapacity}
	default:
		return nil, apiserver.Errorf(scf.CodeInvalidProvisionType, "ProvisionedType %q must be Default or ConcurrencyUtilizationTracking", typ)
	}
	triggers, e := parseTriggers(in.TriggerActions)
	if e != nil {
		return nil, e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	v, e := publishedVersion(fn, in.Qualifier)
	if e != nil {
		return nil, e
	}
	if v.prov != nil && v.prov.status == scf.ProvisionedStatusInProgress {
		return nil, apiserver.Errorf(scf.CodeProvisionedInProgress, "a provisioning task of %s:%s is in progress; retry when it is Done", fn.name, v.name)
	}
	peak := num
	if tr != nil {
		peak = tr.max
	}
	for _, t := range triggers {
		peak = max(peak, t.num)
	}
	limit, reserved := s.provLimitLocked(fn)
	others := fn.provisionedMB() - v.provAllocMB()
	if need := int64(peak) * v.cfg.memMB; others+need > limit {
		switch {
		case tr != nil:
			return nil, apiserver.Errorf(scf.CodeMaxCapacity, "MaxCapacity %d × %d MB does not fit in the %d MB left", tr.max, v.cfg.memMB, max(limit-others, 0))
		case reserved:
			return nil, apiserver.Errorf(scf.CodeProvisionedExceedRes, "%d instances × %d MB (+ %d MB of other versions) exceed the function's reserved quota of %d MB",
				peak, v.cfg.memMB, others, limit)
		default:
			return nil, apiserver.Errorf(scf.CodeProvisionedExceedAvail, "%d instances × %d MB (+ %d MB of other versions) exceed the %d MB the account can still allocate (quota − 12800 MB − other allocations)",
				peak, v.cfg.memMB, others, max(limit, 0))
		}
	}
	p := &provisioning{typ: typ, actions: in.TriggerActions, triggers: triggers, tracking: tr, gen: 1}
	if v.prov != nil {
		p.gen, p.queued = v.prov.gen+1, v.prov.queued
		v.prov.gen = -1
	}
	v.prov = p
	target := num
	if tr != nil {
		target = tr.min
		tr.lastScale = s.clock.Now()
	}
	s.applyTargetLocked(v, target)
	s.startTimersLocked(v)
	s.recordConfig("provisioned", fn.key()+":"+v.name, fmt.Sprintf("%s target %d", typ, target))
	return nil, nil
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

func (s *Server) getProvisioned(req *apiserver.Request, acct *account) (any, error) {
	var in fnQualifierIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
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
}

func (s *Server) deleteProvisioned(req *apiserver.Request, acct *account) (any, error) {
	var in fnQualifierIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName, "Qualifier", in.Qualifier); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
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
}

// ---- invocation ----

// syncCall runs one synchronous execution and waits for its end. It is
// called with s.mu held and returns with it released. A request that
// cannot run comes back as a rejection, with the id it was given.
func (s *Server) syncCall(fn *function, qualifier, routingKey string, p execParams) (*execution, *rejection, string) {
	p.id = apiserver.NewRequestID()
	ver := s.resolveLocked(fn, qualifier, routingKey)
	var rej *rejection
	var inst *instance
	var cold bool
	if ver == nil {
		rej = &rejection{scf.StatusQualifierNotFound, fmt.Sprintf("Qualifier [%s] of function [%s] not found", qualifier, fn.name)}
	} else {
		inst, cold, rej = s.placeLocked(fn, ver)
	}
	if rej != nil {
		s.countLocked(rej.status)
		rec := s.newRecordLocked(fn, p.id)
		rec.retCode, rec.retMsg = scf.RetCodeFailed, errorBody(rej.status, rej.message, p.id)
		s.api.Record(apiserver.Event{Kind: "invoke", Action: "rejected", Subject: fn.key() + ":" + qualifier,
			Code: statusCode(rej.status), Detail: p.id})
		s.mu.Unlock()
		return nil, rej, p.id
	}
	if p.header != nil {
		p.header.Set("X-Scf-Request-Id", p.id)
	}
	if p.limit == 0 {
		p.limit = time.Duration(ver.cfg.timeoutSec) * time.Second
	}
	if p.maxLimit > 0 {
		p.limit = min(p.limit, p.maxLimit)
	}
	ex, err := s.newExecLocked(fn, ver, inst, cold, p)
	if err != nil {
		s.mu.Unlock()
		return nil, &rejection{scf.StatusInternalError, "the reference server is closing"}, p.id
	}
	ex.rec = s.newRecordLocked(fn, p.id)
	s.mu.Unlock()
	s.run(ex)
	<-ex.done
	return ex, nil, p.id
}

func (s *Server) resultOf(ex *execution, tail bool) resultOut {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ex.resultLocked(tail)
}

func rejectedResult(rej *rejection, id string) resultOut {
	return resultOut{FunctionRequestId: id, ErrMsg: errorBody(rej.status, rej.message, id), InvokeResult: -1}
}

// checkEvent validates an event: size (InvalidParameter.RequestTooLarge)
// and JSON (badJSON).
func checkEvent(field, event string, limit int, badJSON string) *apiserver.Error {
	if len(event) > limit {
		return apiserver.Errorf(scf.CodeRequestTooLarge, "%s is %d bytes; the limit is %d", field, len(event), limit)
	}
	if event != "" && !json.Valid([]byte(event)) {
		return apiserver.Errorf(badJSON, "%s must be JSON", field)
	}
	return nil
}

func checkInvokeCommon(logType, routingKey string) *apiserver.Error {
	if logType != "" && logType != scf.LogTypeNone && logType != scf.LogTypeTail {
		return apiserver.Errorf(scf.CodeInvalidValue, "LogType %q must be None or Tail", logType)
	}
	if routingKey != "" {
		var m map[string]string
		if len(routingKey) > scf.MaxRoutingKeyBytes || json.Unmarshal([]byte(routingKey), &m) != nil {
			return apiserver.Errorf(scf.CodeInvalidParam, "RoutingKey must be a JSON object of strings of at most 1024 bytes")
		}
	}
	return nil
}

// lockInvocable takes s.mu and finds the function an invocation action
// names. An HTTP function is refused: it is reached over its function URL.
// On an error the lock is released.
func (s *Server) lockInvocable(acct *account, action, namespace, name string) (*function, *apiserver.Error) {
	s.mu.Lock()
	fn, e := s.lookupLocked(acct, namespace, name)
	if e == nil && fn.versions[scf.QualifierLatest].cfg.typ == scf.FunctionTypeHTTP {
		e = apiserver.Errorf(scf.CodeInvalidFunctionType, "[%s] is an HTTP function: it is reached over HTTP (its function URL), not with %s", fn.name, action)
	}
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	return fn, nil
}

func (s *Server) invoke(req *apiserver.Request, acct *account) (any, error) {
	var in invokeIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	async := false
	limit := scf.MaxSyncEventBytes
	switch in.InvocationType {
	case "", scf.InvocationRequestResponse:
	case scf.InvocationEvent:
		async, limit = true, scf.MaxAsyncEventBytes
	default:
		return nil, apiserver.Errorf("InvalidParameterValue.InvokeType", "InvocationType %q must be RequestResponse or Event", in.InvocationType)
	}
	if e := checkEvent("ClientContext", in.ClientContext, limit, scf.CodeInvalidParam); e != nil {
		return nil, e
	}
	if e := checkInvokeCommon(in.LogType, in.RoutingKey); e != nil {
		return nil, e
	}
	qualifier := in.Qualifier
	if qualifier == "" {
		qualifier = scf.QualifierLatest
	}
	fn, e := s.lockInvocable(acct, req.Action, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	if async {
		ev := &asyncEvent{id: apiserver.NewRequestID(), qualifier: qualifier, routingKey: in.RoutingKey, payload: in.ClientContext}
		e := s.enqueueLocked(fn, ev)
		s.mu.Unlock()
		if e != nil {
			return nil, e
		}
		return invokeOut{Result: resultOut{FunctionRequestId: ev.id}}, nil
	}
	ex, rej, id := s.syncCall(fn, qualifier, in.RoutingKey, execParams{event: in.ClientContext, maxLimit: scf.MaxSyncInvokeTime})
	if rej != nil {
		return invokeOut{Result: rejectedResult(rej, id)}, nil
	}
	return invokeOut{Result: s.resultOf(ex, in.LogType == scf.LogTypeTail)}, nil
}

func (s *Server) invokeFunction(req *apiserver.Request, acct *account) (any, error) {
	var in invokeFunctionIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	if e := checkEvent("Event", in.Event, scf.MaxSyncEventBytes, scf.CodeInvalidClientContext); e != nil {
		return nil, e
	}
	if e := checkInvokeCommon(in.LogType, in.RoutingKey); e != nil {
		return nil, e
	}
	qualifier := in.Qualifier
	if qualifier == "" {
		qualifier = scf.AliasDefault
	}
	fn, e := s.lockInvocable(acct, req.Action, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	ex, rej, id := s.syncCall(fn, qualifier, in.RoutingKey, execParams{event: in.Event, maxLimit: scf.MaxSyncInvokeTime})
	if rej != nil {
		switch rej.status {
		case scf.StatusResourceLimitReached:
			return nil, apiserver.Errorf(scf.CodeQuota, "%s", rej.message)
		case scf.StatusQualifierNotFound:
			return nil, apiserver.Errorf(scf.CodeQualifierNotFound, "%s", rej.message)
		}
		return invokeOut{Result: rejectedResult(rej, id)}, nil
	}
	return invokeOut{Result: s.resultOf(ex, in.LogType == scf.LogTypeTail)}, nil
}

func (s *Server) getRequestStatus(req *apiserver.Request, acct *account) (any, error) {
	var in getRequestStatusIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName, "FunctionRequestId", in.FunctionRequestId); err != nil {
		return nil, err
	}
	var from, to time.Time
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"StartTime", in.StartTime, &from}, {"EndTime", in.EndTime, &to}} {
		if t.v == "" {
			continue
		}
		v, err := time.ParseInLocation(timeLayout, t.v, cst())
		if err != nil {
			return nil, apiserver.Errorf(scf.CodeInvalidValue, "%s %q must look like 2006-01-02 15:04:05", t.name, t.v)
		}
		*t.dst = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	out := getRequestStatusOut{Data: []requestStatusOut{}}
	rec := s.records[in.FunctionRequestId]
	if rec == nil || rec.fnKey != fn.key() || (!from.IsZero() && rec.start.Before(from)) || (!to.IsZero() && rec.start.After(to)) {
		return out, nil
	}
	out.TotalCount = 1
	out.Data = append(out.Data, requestStatusOut{
		FunctionName: rec.fnName, RetMsg: rec.retMsg, RequestId: rec.id, StartTime: apiTime(rec.start),
		RetCode: rec.retCode, Duration: rec.duration, MemUsage: rec.memMB, RetryNum: rec.retryNum,
	})
	return out, nil
}

// ---- functions ----

func validName(name string) bool {
	if len(name) < 2 || len(name) > 60 || !isLetter(name[0]) || name[len(name)-1] == '-' || name[len(name)-1] == '_' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func checkEnable(field, v string) *apiserver.Error {
	if v != "" && v != scf.EnableTrue && v != scf.EnableFalse {
		return apiserver.Errorf(scf.CodeInvalidValue, "%s %q must be TRUE or FALSE", field, v)
	}
	return nil
}

// applySettings validates and applies the settings CreateFunction and
// UpdateFunctionConfiguration share.
func applySettings(cfg *fnConfig, mem, timeout, initTimeout *int64, env *wireEnvironment, icc *wireInstanceConcurrency) *apiserver.Error {
	if mem != nil {
		if !scf.ValidMemorySize(*mem) {
			return apiserver.Errorf(scf.CodeInvalidMemorySize, "MemorySize %d MB must be 64 or 128–3072 in steps of 128", *mem)
		}
		cfg.memMB = *mem
	}
	if timeout != nil {
		switch {
		case *timeout > scf.MaxTimeoutSeconds:
			return apiserver.Errorf(scf.CodeTimeoutLimit, "Timeout %d s exceeds 900 s", *timeout)
		case *timeout < 1:
			return apiserver.Errorf(scf.CodeInvalidValue, "Timeout %d s must be 1–900", *timeout)
		}
		cfg.timeoutSec = *timeout
	}
	if initTimeout != nil {
		if *initTimeout < 1 || *initTimeout > 300 {
			return apiserver.Errorf("LimitExceeded.InitTimeout", "InitTimeout %d s must be 1–300", *initTimeout)
		}
		cfg.initTimeout = *initTimeout
	}
	if env != nil {
		b, e := behaviorFromEnv(env.Variables)
		if e != nil {
			return e
		}
		cold, coldSet, e := coldStartFromEnv(env.Variables)
		if e != nil {
			return e
		}
		cfg.env, cfg.behavior = append([]wireVariable(nil), env.Variables...), b
		if coldSet {
			cfg.coldStart, cfg.coldStartSet = cold, true
		}
	}
	if icc != nil {
		if cfg.typ != scf.FunctionTypeHTTP {
			return apiserver.Errorf(scf.CodeInvalidInstanceConc, "InstanceConcurrencyConfig is only for HTTP functions")
		}
		if icc.DynamicEnabled != "" && icc.DynamicEnabled != scf.EnableTrue && icc.DynamicEnabled != scf.EnableFalse {
			return apiserver.Errorf("InvalidParameterValue.DynamicEnabled", "DynamicEnabled %q must be TRUE, FALSE or empty", icc.DynamicEnabled)
		}
		if icc.MaxConcurrency == nil || *icc.MaxConcurrency <= 1 {
			// Removes multi-concurrency. The custom (static) mode's range is
			// 2–100; the API takes 1 too, and 1 request per instance is
			// what having none means, so 1 is read as off.
			cfg.icc, cfg.maxConc = nil, 1
		} else {
			if *icc.MaxConcurrency > scf.MaxInstanceConcurrency {
				return apiserver.Errorf(scf.CodeInvalidMaxConcurrency, "MaxConcurrency %d must be 2–100 (0 or 1: off)", *icc.MaxConcurrency)
			}
			c := *icc
			cfg.icc, cfg.maxConc = &c, int(*icc.MaxConcurrency)
		}
	}
	return nil
}

func (s *Server) createFunction(req *apiserver.Request, acct *account) (any, error) {
	var in createFunctionIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, e := s.createLocked(acct, &in)
	return nil, fail(e)
}

func (s *Server) createLocked(acct *account, in *createFunctionIn) (*function, *apiserver.Error) {
	if e := apiserver.Require("FunctionName", in.FunctionName); e != nil {
		return nil, e
	}
	if !validName(in.FunctionName) {
		return nil, apiserver.Errorf(scf.CodeInvalidFunctionName, "FunctionName %q must be 2–60 letters, digits, - and _, start with a letter and not end with - or _", in.FunctionName)
	}
	ns := in.Namespace
	if ns == "" {
		ns = scf.DefaultNamespace
	}
	if acct.fns[ns+"/"+in.FunctionName] != nil {
		return nil, apiserver.Errorf(scf.CodeFunctionExists, "the function [%s] already exists in namespace [%s]", in.FunctionName, ns)
	}
	count, namespaces := 0, map[string]bool{scf.DefaultNamespace: true}
	for _, fn := range acct.fns {
		namespaces[fn.ns] = true
		if fn.ns == ns {
			count++
		}
	}
	if count >= FunctionsPerNamespace {
		return nil, apiserver.Errorf(scf.CodeFunctionCountLimit, "namespace [%s] already holds %d functions", ns, FunctionsPerNamespace)
	}
	if !namespaces[ns] && len(namespaces) >= maxNamespaces {
		return nil, apiserver.Errorf("LimitExceeded.Namespace", "the account already has %d namespaces", maxNamespaces)
	}
	cfg := fnConfig{memMB: 128, timeoutSec: 3, initTimeout: 65, typ: scf.FunctionTypeEvent, maxConc: 1,
		description: in.Description, handler: in.Handler, runtime: in.Runtime, role: in.Role,
		tags: in.Tags, asyncRun: in.AsyncRunEnable, trace: in.TraceEnable, dnsCache: in.DnsCache}
	if cfg.runtime == "" {
		cfg.runtime = "Python2.7"
	}
	if cfg.handler == "" {
		cfg.handler = "index.main_handler"
	}
	switch in.Type {
	case "", scf.FunctionTypeEvent:
	case scf.FunctionTypeHTTP:
		cfg.typ = scf.FunctionTypeHTTP
	default:
		return nil, apiserver.Errorf("InvalidParameterValue.Type", "Type %q must be Event or HTTP", in.Type)
	}
	for _, f := range []struct{ name, v string }{{"AsyncRunEnable", in.AsyncRunEnable}, {"TraceEnable", in.TraceEnable}, {"DnsCache", in.DnsCache}} {
		if e := checkEnable(f.name, f.v); e != nil {
			return nil, e
		}
	}
	if e := applySettings(&cfg, in.MemorySize, in.Timeout, in.InitTimeout, in.Environment, in.InstanceConcurrencyConfig); e != nil {
		return nil, e
	}
	now := s.clock.Now()
	s.seq++
	fn := &function{
		acct: acct, ns: ns, name: in.FunctionName, fkey: s.subjectOf(acct.region, ns, in.FunctionName), id: fmt.Sprintf("lam-%08x", s.seq), added: now, modified: now,
		versions: map[string]*version{}, aliases: map[string]*alias{},
		retryNum: defaultRetryNum, msgTTL: defaultMsgTTL,
	}
	fn.versions[scf.QualifierLatest] = fn.newVersion(scf.QualifierLatest, cfg, in.Description, now)
	fn.aliases[scf.AliasDefault] = &alias{name: scf.AliasDefault, main: scf.QualifierLatest, added: now, modified: now}
	acct.fns[fn.nsKey()] = fn
	s.recordConfig("function", fn.key(), fmt.Sprintf("created: %s, %d MB, %d s", cfg.typ, cfg.memMB, cfg.timeoutSec))
	return fn, nil
}

func (s *Server) getFunction(req *apiserver.Request, acct *account) (any, error) {
	var in getFunctionIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	if e := checkEnable("ShowCode", in.ShowCode); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	q := in.Qualifier
	if q == "" {
		q = scf.QualifierLatest
	}
	v := fn.versions[q]
	if v == nil {
		return nil, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", q, fn.name)
	}
	c := v.cfg
	out := getFunctionOut{
		FunctionName: fn.name, FunctionId: fn.id, Namespace: fn.ns, FunctionVersion: v.name, Qualifier: v.name,
		Description: v.desc, Handler: c.handler, Runtime: c.runtime, MemorySize: c.memMB, Timeout: c.timeoutSec,
		InitTimeout: c.initTimeout, Type: c.typ, Status: "Active", StatusDesc: "", StatusReasons: []wireStatusReason{},
		AvailableStatus: "Available", AsyncRunEnable: orFalse(c.asyncRun), TraceEnable: orFalse(c.trace),
		InstanceConcurrencyConfig: c.icc, Environment: wireEnvironment{Variables: append([]wireVariable{}, c.env...)},
		Tags: append([]wireTag{}, c.tags...), Role: c.role, AddTime: apiTime(fn.added), ModTime: apiTime(fn.modified),
		DnsCache: orFalse(c.dnsCache),
	}
	return out, nil
}

func orFalse(v string) string {
	if v == "" {
		return scf.EnableFalse
	}
	return v
}

func (s *Server) updateFunction(req *apiserver.Request, acct *account) (any, error) {
	var in updateFunctionIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	if e := checkEnable("Publish", in.Publish); e != nil {
		return nil, e
	}
	if e := checkEnable("DnsCache", in.DnsCache); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	latest := fn.versions[scf.QualifierLatest]
	cfg := latest.cfg.clone()
	if e := applySettings(&cfg, in.MemorySize, in.Timeout, in.InitTimeout, in.Environment, in.InstanceConcurrencyConfig); e != nil {
		return nil, e
	}
	if in.Description != nil {
		cfg.description = *in.Description
		latest.desc = *in.Description
	}
	if in.Runtime != "" {
		cfg.runtime = in.Runtime
	}
	if in.Role != nil {
		cfg.role = *in.Role
	}
	if in.DnsCache != "" {
		cfg.dnsCache = in.DnsCache
	}
	latest.cfg = cfg
	fn.modified = s.clock.Now()
	for _, inst := range append([]*instance(nil), fn.instances...) {
		if inst.ver == latest {
			inst.stale = true
			if len(inst.execs) == 0 {
				s.removeInstanceLocked(inst, "configuration changed", false)
			}
		}
	}
	s.recordConfig("function", fn.key(), fmt.Sprintf("updated: %d MB, %d s, %d per instance", cfg.memMB, cfg.timeoutSec, cfg.maxConc))
	if in.Publish == scf.EnableTrue {
		s.publishLocked(fn, "")
	}
	return nil, nil
}

func (s *Server) publishLocked(fn *function, desc string) *version {
	latest := fn.versions[scf.QualifierLatest]
	fn.nextVersion++
	v := fn.newVersion(strconv.Itoa(fn.nextVersion), latest.cfg.clone(), desc, s.clock.Now())
	fn.versions[v.name] = v
	s.recordConfig("function", fn.key(), "published version "+v.name)
	return v
}

func (s *Server) publishVersion(req *apiserver.Request, acct *account) (any, error) {
	var in publishVersionIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	v := s.publishLocked(fn, in.Description)
	return publishVersionOut{
		FunctionVersion: v.name, MemorySize: v.cfg.memMB, Description: v.desc, Handler: v.cfg.handler,
		Timeout: v.cfg.timeoutSec, Runtime: v.cfg.runtime, Namespace: fn.ns,
	}, nil
}

func (s *Server) listFunctions(req *apiserver.Request, acct *account) (any, error) {
	var in listFunctionsIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if len(in.Filters) > 0 {
		return nil, apiserver.Errorf(scf.CodeUnsupportedOp, "ListFunctions Filters are not modelled by scftest")
	}
	offset, limit := int64(0), int64(20)
	if in.Offset != nil {
		offset = *in.Offset
	}
	if in.Limit != nil {
		limit = *in.Limit
	}
	switch {
	case offset < 0:
		return nil, apiserver.Errorf(scf.CodeInvalidValue, "Offset %d must not be negative", offset)
	case limit < 0 || limit > 100:
		return nil, apiserver.Errorf("InvalidParameterValue.Limit", "Limit %d must be 0–100", limit)
	}
	order := strings.ToUpper(in.Order)
	if order != "" && order != "ASC" && order != "DESC" {
		return nil, apiserver.Errorf(scf.CodeInvalidValue, "Order %q must be ASC or DESC", in.Order)
	}
	by := in.Orderby
	if by == "" {
		by = "AddTime"
	}
	if by != "AddTime" && by != "ModTime" && by != "FunctionName" {
		return nil, apiserver.Errorf(scf.CodeInvalidValue, "Orderby %q must be AddTime, ModTime or FunctionName", in.Orderby)
	}
	ns := in.Namespace
	if ns == "" {
		ns = scf.DefaultNamespace
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var fns []*function
	for _, fn := range acct.fns {
		if fn.ns == ns && strings.Contains(fn.name, in.SearchKey) &&
			strings.Contains(fn.versions[scf.QualifierLatest].desc, in.Description) {
			fns = append(fns, fn)
		}
	}
	sort.Slice(fns, func(i, j int) bool {
		a, b := fns[i], fns[j]
		var less bool
		switch by {
		case "ModTime":
			less = a.modified.Before(b.modified) || a.modified.Equal(b.modified) && a.id < b.id
		case "FunctionName":
			less = a.name < b.name
		default:
			less = a.added.Before(b.added) || a.added.Equal(b.added) && a.id < b.id
		}
		if order == "DESC" {
			return !less
		}
		return less
	})
	out := listFunctionsOut{Functions: []functionOut{}, TotalCount: int64(len(fns))}
	for i := offset; i < int64(len(fns)) && i < offset+limit; i++ {
		fn := fns[i]
		c := fn.versions[scf.QualifierLatest].cfg
		f := functionOut{
			ModTime: apiTime(fn.modified), AddTime: apiTime(fn.added), Runtime: c.runtime, FunctionName: fn.name,
			FunctionId: fn.id, Namespace: fn.ns, Status: "Active", Description: fn.versions[scf.QualifierLatest].desc,
			Tags: append([]wireTag{}, c.tags...), Type: c.typ, StatusReasons: []wireStatusReason{},
			AsyncRunEnable: orFalse(c.asyncRun), TraceEnable: orFalse(c.trace),
		}
		if fn.reservedMB != nil {
			v := uint64(*fn.reservedMB)
			f.ReservedConcurrencyMem = &v
		}
		if mb := fn.provisionedMB(); mb > 0 {
			v := uint64(mb)
			f.TotalProvisionedConcurrencyMem = &v
		}
		out.Functions = append(out.Functions, f)
	}
	return out, nil
}

func (s *Server) deleteFunction(req *apiserver.Request, acct *account) (any, error) {
	var in deleteFunctionIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	if in.Qualifier != "" {
		v, e := publishedVersion(fn, in.Qualifier)
		if e != nil {
			return nil, e
		}
		for _, a := range fn.aliases {
			if a.main == v.name || hasWeight(a, v.name) {
				return nil, apiserver.Errorf("ResourceInUse.Alias", "alias %s routes to version %s", a.name, v.name)
			}
		}
		if v.prov != nil && v.prov.status == scf.ProvisionedStatusInProgress {
			return nil, apiserver.Errorf(scf.CodeProvisionedInProgress, "a provisioning task of %s:%s is in progress", fn.name, v.name)
		}
		s.clearProvisionedLocked(v)
		for _, inst := range append([]*instance(nil), fn.instances...) {
			if inst.ver == v {
				inst.stale = true
				if len(inst.execs) == 0 {
					s.removeInstanceLocked(inst, "version deleted", false)
				}
			}
		}
		delete(fn.versions, v.name)
		s.recordConfig("function", fn.key(), "deleted version "+v.name)
		return nil, nil
	}
	for _, v := range fn.versions {
		if v.prov != nil && v.prov.status == scf.ProvisionedStatusInProgress {
			return nil, apiserver.Errorf(scf.CodeProvisionedInProgress, "a provisioning task of %s:%s is in progress", fn.name, v.name)
		}
	}
	for _, v := range fn.versions {
		s.clearProvisionedLocked(v)
	}
	fn.deleted = true
	for _, ev := range fn.queue {
		s.dropLocked(fn, ev, "function deleted")
	}
	fn.queue = nil
	for _, inst := range append([]*instance(nil), fn.instances...) {
		if len(inst.execs) == 0 {
			s.removeInstanceLocked(inst, "function deleted", false)
		}
	}
	delete(acct.fns, fn.nsKey())
	s.recordConfig("function", fn.key(), "deleted")
	return nil, nil
}

func hasWeight(a *alias, version string) bool {
	for _, w := range a.weights {
		if w.version == version {
			return true
		}
	}
	for _, m := range a.matches {
		if m.Version == version {
			return true
		}
	}
	return false
}

// ---- aliases ----

func validAlias(name string) bool {
	if name == "" || len(name) > 64 || !isLetter(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// routing validates an alias's target and routing configuration.
func routing(fn *function, main string, rc *wireRoutingConfig) ([]weight, []wireVersionMatch, *apiserver.Error) {
	if fn.versions[main] == nil {
		return nil, nil, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", main, fn.name)
	}
	if rc == nil {
		return nil, nil, nil
	}
	var ws []weight
	sum := 0.0
	for _, w := range rc.AdditionalVersionWeights {
		switch {
		case fn.versions[w.Version] == nil:
			return nil, nil, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", w.Version, fn.name)
		case w.Version == main:
			return nil, nil, apiserver.Errorf("InvalidParameterValue.AdditionalVersionWeights", "version %s is already the alias's main version", w.Version)
		case w.Weight == nil || *w.Weight <= 0 || *w.Weight > 1:
			return nil, nil, apiserver.Errorf("InvalidParameterValue.AdditionalVersionWeights", "the weight of version %s must be in (0,1]", w.Version)
		}
		sum += *w.Weight
		ws = append(ws, weight{version: w.Version, weight: *w.Weight})
	}
	if sum > 1+1e-9 {
		return nil, nil, apiserver.Errorf("InvalidParameterValue.AdditionalVersionWeights", "the weights add up to %g, more than 1", sum)
	}
	for _, m := range rc.AddtionVersionMatchs {
		if fn.versions[m.Version] == nil {
			return nil, nil, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", m.Version, fn.name)
		}
		switch m.Method {
		case "exact":
		case "range":
			if _, _, _, _, ok := parseRange(m.Expression); !ok {
				return nil, nil, apiserver.Errorf(scf.CodeInvalidValue, "range expression %q must look like [1,100)", m.Expression)
			}
		default:
			return nil, nil, apiserver.Errorf(scf.CodeInvalidValue, "Method %q must be exact or range", m.Method)
		}
		if m.Key == "" {
			return nil, nil, apiserver.Errorf("MissingParameter", "a version match needs a Key")
		}
	}
	return ws, append([]wireVersionMatch(nil), rc.AddtionVersionMatchs...), nil
}

func (s *Server) createAlias(req *apiserver.Request, acct *account) (any, error) {
	var in aliasIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("Name", in.Name, "FunctionName", in.FunctionName, "FunctionVersion", in.FunctionVersion); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	if fn.aliases[in.Name] != nil {
		return nil, apiserver.Errorf("ResourceInUse.Alias", "alias %s already exists", in.Name)
	}
	if !validAlias(in.Name) {
		return nil, apiserver.Errorf("InvalidParameterValue.Alias", "alias name %q must be 1–64 letters, digits, - and _, starting with a letter", in.Name)
	}
	ws, ms, e := routing(fn, in.FunctionVersion, in.RoutingConfig)
	if e != nil {
		return nil, e
	}
	now := s.clock.Now()
	a := &alias{name: in.Name, main: in.FunctionVersion, weights: ws, matches: ms, added: now, modified: now}
	if in.Description != nil {
		a.desc = *in.Description
	}
	fn.aliases[a.name] = a
	return nil, nil
}

func (s *Server) aliasLocked(acct *account, in aliasRefIn) (*function, *alias, *apiserver.Error) {
	if e := apiserver.Require("FunctionName", in.FunctionName, "Name", in.Name); e != nil {
		return nil, nil, e
	}
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, nil, e
	}
	a := fn.aliases[in.Name]
	if a == nil {
		return nil, nil, apiserver.Errorf(scf.CodeAliasNotFound, "alias %s of function [%s] does not exist", in.Name, fn.name)
	}
	return fn, a, nil
}

func aliasView(a *alias) aliasOut {
	out := aliasOut{FunctionVersion: a.main, Name: a.name, Description: a.desc, AddTime: apiTime(a.added), ModTime: apiTime(a.modified),
		RoutingConfig: wireRoutingConfig{AdditionalVersionWeights: []wireVersionWeight{}, AddtionVersionMatchs: []wireVersionMatch{}}}
	for _, w := range a.weights {
		out.RoutingConfig.AdditionalVersionWeights = append(out.RoutingConfig.AdditionalVersionWeights, wireVersionWeight{Version: w.version, Weight: &w.weight})
	}
	out.RoutingConfig.AddtionVersionMatchs = append(out.RoutingConfig.AddtionVersionMatchs, a.matches...)
	return out
}

func (s *Server) getAlias(req *apiserver.Request, acct *account) (any, error) {
	var in aliasRefIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, a, e := s.aliasLocked(acct, in)
	if e != nil {
		return nil, e
	}
	return aliasView(a), nil
}

func (s *Server) updateAlias(req *apiserver.Request, acct *account) (any, error) {
	var in aliasIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionVersion", in.FunctionVersion); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, a, e := s.aliasLocked(acct, aliasRefIn{FunctionName: in.FunctionName, Name: in.Name, Namespace: in.Namespace})
	if e != nil {
		return nil, e
	}
	ws, ms, e := routing(fn, in.FunctionVersion, in.RoutingConfig)
	if e != nil {
		return nil, e
	}
	a.main, a.weights, a.matches, a.modified = in.FunctionVersion, ws, ms, s.clock.Now()
	if in.Description != nil {
		a.desc = *in.Description
	}
	return nil, nil
}

func (s *Server) deleteAlias(req *apiserver.Request, acct *account) (any, error) {
	var in aliasRefIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, a, e := s.aliasLocked(acct, in)
	if e != nil {
		return nil, e
	}
	if a.name == scf.AliasDefault {
		return nil, apiserver.Errorf("InvalidParameterValue.Alias", "the $DEFAULT alias cannot be deleted")
	}
	delete(fn.aliases, a.name)
	return nil, nil
}

func (s *Server) listAliases(req *apiserver.Request, acct *account) (any, error) {
	var in listAliasesIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	offset, limit := 0, 20
	for _, p := range []struct {
		name, v string
		dst     *int
	}{{"Offset", in.Offset, &offset}, {"Limit", in.Limit, &limit}} {
		if p.v == "" {
			continue
		}
		n, err := strconv.Atoi(p.v)
		if err != nil || n < 0 {
			return nil, apiserver.Errorf(scf.CodeInvalidValue, "%s %q must be a number ≥ 0", p.name, p.v)
		}
		*p.dst = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	var names []string
	for name, a := range fn.aliases {
		if in.FunctionVersion == "" || a.main == in.FunctionVersion {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := listAliasesOut{Aliases: []aliasOut{}, TotalCount: uint64(len(names))}
	for i := offset; i < len(names) && i < offset+limit; i++ {
		out.Aliases = append(out.Aliases, aliasView(fn.aliases[names[i]]))
	}
	return out, nil
}

// ---- asynchronous retry settings ----

func (s *Server) getEventInvokeConfig(req *apiserver.Request, acct *account) (any, error) {
	var in getEventInvokeConfigIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	n, ttl := int64(fn.retryNum), int64(fn.msgTTL/time.Second)
	return eventInvokeConfigOut{AsyncTriggerConfig: wireAsyncTriggerConfig{RetryConfig: []wireRetryConfig{{RetryNum: &n}}, MsgTTL: &ttl}}, nil
}

func (s *Server) updateEventInvokeConfig(req *apiserver.Request, acct *account) (any, error) {
	var in updateEventInvokeConfigIn
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("FunctionName", in.FunctionName); err != nil {
		return nil, err
	}
	if in.AsyncTriggerConfig == nil {
		return nil, apiserver.Errorf("MissingParameter", "the parameter `AsyncTriggerConfig` is required")
	}
	c := in.AsyncTriggerConfig
	retry := -1
	if len(c.RetryConfig) > 0 && c.RetryConfig[0].RetryNum != nil {
		if n := *c.RetryConfig[0].RetryNum; n < 0 || n > defaultRetryNum {
			return nil, apiserver.Errorf("LimitExceeded.RetryNum", "RetryNum %d must be 0–%d", n, defaultRetryNum)
		}
		retry = int(*c.RetryConfig[0].RetryNum)
	}
	if c.MsgTTL != nil && (*c.MsgTTL < 60 || *c.MsgTTL > int64(defaultMsgTTL/time.Second)) {
		return nil, apiserver.Errorf("LimitExceeded.MsgTTL", "MsgTTL %d s must be 60–21600", *c.MsgTTL)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, e := s.lookupLocked(acct, in.Namespace, in.FunctionName)
	if e != nil {
		return nil, e
	}
	if retry >= 0 {
		fn.retryNum = retry
	}
	if c.MsgTTL != nil {
		fn.msgTTL = time.Duration(*c.MsgTTL) * time.Second
	}
	return nil, nil
}
