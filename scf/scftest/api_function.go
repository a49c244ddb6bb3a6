package scftest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// The function actions: create, get, update, publish, list and delete.

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

func (s *Server) createFunction() regionalHandler {
	return onAccount(s, nil, func(in *createFunctionIn, acct *account) (any, *apiserver.Error) {
		_, e := s.createLocked(acct, in)
		return nil, e
	})
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

func (s *Server) getFunction() regionalHandler {
	return onFunction(s, func(in *getFunctionIn) *apiserver.Error {
		return checkEnable("ShowCode", in.ShowCode)
	}, func(in *getFunctionIn, fn *function) (any, *apiserver.Error) {
		q := in.Qualifier
		if q == "" {
			q = scf.QualifierLatest
		}
		v := fn.versions[q]
		if v == nil {
			return nil, apiserver.Errorf(scf.CodeVersionNotFound, "version %s of function [%s] does not exist", q, fn.name)
		}
		return functionView(fn, v), nil
	})
}

// functionView is GetFunction's answer for one version.
func functionView(fn *function, v *version) getFunctionOut {
	c := v.cfg
	return getFunctionOut{
		FunctionName: fn.name, FunctionId: fn.id, Namespace: fn.ns, FunctionVersion: v.name, Qualifier: v.name,
		Description: v.desc, Handler: c.handler, Runtime: c.runtime, MemorySize: c.memMB, Timeout: c.timeoutSec,
		InitTimeout: c.initTimeout, Type: c.typ, Status: "Active", StatusDesc: "", StatusReasons: []wireStatusReason{},
		AvailableStatus: "Available", AsyncRunEnable: orFalse(c.asyncRun), TraceEnable: orFalse(c.trace),
		InstanceConcurrencyConfig: c.icc, Environment: wireEnvironment{Variables: append([]wireVariable{}, c.env...)},
		Tags: append([]wireTag{}, c.tags...), Role: c.role, AddTime: apiTime(fn.added), ModTime: apiTime(fn.modified),
		DnsCache: orFalse(c.dnsCache),
	}
}

func orFalse(v string) string {
	if v == "" {
		return scf.EnableFalse
	}
	return v
}

func (s *Server) updateFunction() regionalHandler {
	return onFunction(s, func(in *updateFunctionIn) *apiserver.Error {
		if e := checkEnable("Publish", in.Publish); e != nil {
			return e
		}
		return checkEnable("DnsCache", in.DnsCache)
	}, func(in *updateFunctionIn, fn *function) (any, *apiserver.Error) {
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
	})
}

func (s *Server) publishLocked(fn *function, desc string) *version {
	latest := fn.versions[scf.QualifierLatest]
	fn.nextVersion++
	v := fn.newVersion(strconv.Itoa(fn.nextVersion), latest.cfg.clone(), desc, s.clock.Now())
	fn.versions[v.name] = v
	s.recordConfig("function", fn.key(), "published version "+v.name)
	return v
}

func (s *Server) publishVersion() regionalHandler {
	return onFunction(s, nil, func(in *publishVersionIn, fn *function) (any, *apiserver.Error) {
		v := s.publishLocked(fn, in.Description)
		return publishVersionOut{
			FunctionVersion: v.name, MemorySize: v.cfg.memMB, Description: v.desc, Handler: v.cfg.handler,
			Timeout: v.cfg.timeoutSec, Runtime: v.cfg.runtime, Namespace: fn.ns,
		}, nil
	})
}

// listQuery is a checked ListFunctions request.
type listQuery struct {
	ns, order, by string
	offset, limit int64
}

// parseListQuery validates ListFunctions' paging and ordering.
func parseListQuery(in *listFunctionsIn) (listQuery, *apiserver.Error) {
	if len(in.Filters) > 0 {
		return listQuery{}, apiserver.Errorf(scf.CodeUnsupportedOp, "ListFunctions Filters are not modelled by scftest")
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
		return listQuery{}, apiserver.Errorf(scf.CodeInvalidValue, "Offset %d must not be negative", offset)
	case limit < 0 || limit > 100:
		return listQuery{}, apiserver.Errorf("InvalidParameterValue.Limit", "Limit %d must be 0–100", limit)
	}
	order := strings.ToUpper(in.Order)
	if order != "" && order != "ASC" && order != "DESC" {
		return listQuery{}, apiserver.Errorf(scf.CodeInvalidValue, "Order %q must be ASC or DESC", in.Order)
	}
	by := in.Orderby
	if by == "" {
		by = "AddTime"
	}
	if by != "AddTime" && by != "ModTime" && by != "FunctionName" {
		return listQuery{}, apiserver.Errorf(scf.CodeInvalidValue, "Orderby %q must be AddTime, ModTime or FunctionName", in.Orderby)
	}
	ns := in.Namespace
	if ns == "" {
		ns = scf.DefaultNamespace
	}
	return listQuery{ns: ns, order: order, by: by, offset: offset, limit: limit}, nil
}

func (s *Server) listFunctions() regionalHandler {
	return onAccount(s, nil, func(in *listFunctionsIn, acct *account) (any, *apiserver.Error) {
		q, e := parseListQuery(in)
		if e != nil {
			return nil, e
		}
		return listView(acct, in, q), nil
	})
}

// listView is ListFunctions' answer.
func listView(acct *account, in *listFunctionsIn, q listQuery) listFunctionsOut {
	ns, order, by, offset, limit := q.ns, q.order, q.by, q.offset, q.limit
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
	return out
}

func (s *Server) deleteFunction() regionalHandler {
	return onFunction(s, nil, func(in *deleteFunctionIn, fn *function) (any, *apiserver.Error) {
		acct := fn.acct
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
	})
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
