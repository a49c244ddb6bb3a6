package scftest

import (
	"sort"
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
		vars := keyValues(env.Variables, func(v wireVariable) keyValue { return keyValue(v) })
		b, e := behaviorFromEnv(vars)
		if e != nil {
			return e
		}
		cold, coldSet, e := coldStartFromEnv(vars)
		if e != nil {
			return e
		}
		cfg.env, cfg.behavior = vars, b
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
			cfg.icc = &instanceConcurrency{
				dynamicEnabled: icc.DynamicEnabled, isolation: icc.InstanceIsolationEnabled, typ: icc.Type,
				maxConcurrency: *icc.MaxConcurrency, mixNode: icc.MixNodeConfig, session: icc.SessionConfig,
			}
			cfg.maxConc = int(*icc.MaxConcurrency)
		}
	}
	return nil
}

// keyValues converts the environment variables or the tags of a request
// into the model's; nil for none.
func keyValues[T any](in []T, conv func(T) keyValue) []keyValue {
	var out []keyValue
	for _, v := range in {
		out = append(out, conv(v))
	}
	return out
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
	if e := s.model.checkNew(acct, ns, in.FunctionName); e != nil {
		return nil, e
	}
	cfg := fnConfig{memMB: 128, timeoutSec: 3, initTimeout: 65, typ: scf.FunctionTypeEvent, maxConc: 1,
		description: in.Description, handler: in.Handler, runtime: in.Runtime, role: in.Role,
		tags: keyValues(in.Tags, func(t wireTag) keyValue { return keyValue(t) }), asyncRun: in.AsyncRunEnable, trace: in.TraceEnable, dnsCache: in.DnsCache}
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
	return s.model.addFunction(acct, ns, in.FunctionName, cfg, in.Description), nil
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
		InstanceConcurrencyConfig: c.icc.wire(), Environment: wireEnvironment{Variables: wirePairs[wireVariable](c.env)},
		Tags: wirePairs[wireTag](c.tags), Role: c.role, AddTime: apiTime(fn.added), ModTime: apiTime(fn.modified),
		DnsCache: orFalse(c.dnsCache),
	}
}

// wire is the InstanceConcurrencyConfig as it was given; nil for none.
func (icc *instanceConcurrency) wire() *wireInstanceConcurrency {
	if icc == nil {
		return nil
	}
	n := icc.maxConcurrency
	return &wireInstanceConcurrency{DynamicEnabled: icc.dynamicEnabled, MaxConcurrency: &n, InstanceIsolationEnabled: icc.isolation,
		Type: icc.typ, MixNodeConfig: icc.mixNode, SessionConfig: icc.session}
}

// wirePairs is the API's list of environment variables or tags; empty,
// not nil, for none.
func wirePairs[W wireVariable | wireTag](kvs []keyValue) []W {
	out := make([]W, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, W(kv))
	}
	return out
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
		cfg := fn.versions[scf.QualifierLatest].cfg.clone()
		if e := applySettings(&cfg, in.MemorySize, in.Timeout, in.InitTimeout, in.Environment, in.InstanceConcurrencyConfig); e != nil {
			return nil, e
		}
		if in.Description != nil {
			cfg.description = *in.Description
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
		s.model.reconfigure(fn, cfg, in.Description)
		if in.Publish == scf.EnableTrue {
			s.model.publish(fn, "")
		}
		return nil, nil
	})
}

func (s *Server) publishVersion() regionalHandler {
	return onFunction(s, nil, func(in *publishVersionIn, fn *function) (any, *apiserver.Error) {
		v := s.model.publish(fn, in.Description)
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
			Tags: wirePairs[wireTag](c.tags), Type: c.typ, StatusReasons: []wireStatusReason{},
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
		if in.Qualifier == "" {
			return nil, s.model.deleteFunction(fn)
		}
		v, e := publishedVersion(fn, in.Qualifier)
		if e != nil {
			return nil, e
		}
		return nil, s.model.deleteVersion(fn, v)
	})
}
