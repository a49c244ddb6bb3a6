package scftest

import (
	"sort"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// The quota actions: a function's reserved concurrency, the account's
// total, and GetAccount.

func (s *Server) putReserved() regionalHandler {
	return onFunction(s, func(in *putReservedIn) *apiserver.Error {
		if in.ReservedConcurrencyMem == nil {
			return apiserver.Errorf("MissingParameter", "the parameter `ReservedConcurrencyMem` is required")
		}
		return nil
	}, func(in *putReservedIn, fn *function) (any, *apiserver.Error) {
		return nil, s.model.reserve(fn, *in.ReservedConcurrencyMem)
	})
}

func (s *Server) getReserved() regionalHandler {
	return onFunction(s, nil, func(_ *fnRefIn, fn *function) (any, *apiserver.Error) {
		out := getReservedOut{}
		if fn.reservedMB != nil {
			v := uint64(*fn.reservedMB)
			out.ReservedMem = &v
		}
		return out, nil
	})
}

func (s *Server) deleteReserved() regionalHandler {
	return onFunction(s, nil, func(_ *fnRefIn, fn *function) (any, *apiserver.Error) {
		s.model.unreserve(fn)
		return nil, nil
	})
}

func (s *Server) putTotal() regionalHandler {
	return onAccount(s, func(in *putTotalIn) *apiserver.Error {
		if in.TotalConcurrencyMem == nil {
			return apiserver.Errorf("MissingParameter", "the parameter `TotalConcurrencyMem` is required")
		}
		if in.Namespace != "" && in.Namespace != scf.DefaultNamespace {
			return apiserver.Errorf(scf.CodeUnsupportedOp, "namespace-level concurrency quotas need a purchased package; only the account quota (Namespace default) is modelled")
		}
		return nil
	}, func(in *putTotalIn, acct *account) (any, *apiserver.Error) {
		return nil, s.model.setTotal(acct, *in.TotalConcurrencyMem)
	})
}

func (s *Server) getAccount() regionalHandler {
	return onAccount(s, nil, func(_ *struct{}, acct *account) (any, *apiserver.Error) {
		return accountView(acct), nil
	})
}

// accountView is GetAccount's answer.
func accountView(acct *account) getAccountOut {
	byNS := map[string][]*function{scf.DefaultNamespace: nil}
	for _, fn := range acct.sortedFunctions() {
		byNS[fn.ns] = append(byNS[fn.ns], fn)
	}
	names := make([]string, 0, len(byNS))
	for ns := range byNS {
		names = append(names, ns)
	}
	sort.Strings(names)
	allocated := allocated(acct, nil)
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
	return out
}
