package scftest

import (
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
)

// The API layer: one file per resource family (api_function.go,
// api_alias.go, api_quota.go, api_provisioned.go, api_invoke.go,
// api_async.go). A handler decodes the request, checks what needs no state,
// takes the server's lock and calls the model; onFunction and onAccount do
// that opening, so a handler is its own checks and its call.

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
		{Name: "PutReservedConcurrencyConfig", Handle: s.regional(s.putReserved())},
		{Name: "GetReservedConcurrencyConfig", Handle: s.regional(s.getReserved())},
		{Name: "DeleteReservedConcurrencyConfig", Handle: s.regional(s.deleteReserved())},
		{Name: "PutProvisionedConcurrencyConfig", Handle: s.regional(s.putProvisioned())},
		{Name: "GetProvisionedConcurrencyConfig", Handle: s.regional(s.getProvisioned())},
		{Name: "DeleteProvisionedConcurrencyConfig", Handle: s.regional(s.deleteProvisioned())},
		{Name: "PutTotalConcurrencyConfig", Handle: s.regional(s.putTotal())},
		{Name: "GetAccount", Handle: s.regional(s.getAccount())},
		{Name: "Invoke", Handle: s.regional(s.invoke)},
		{Name: "InvokeFunction", Handle: s.regional(s.invokeFunction)},
		{Name: "GetRequestStatus", Handle: s.regional(s.getRequestStatus())},
		{Name: "CreateFunction", Handle: s.regional(s.createFunction())},
		{Name: "GetFunction", Handle: s.regional(s.getFunction())},
		{Name: "UpdateFunctionConfiguration", Handle: s.regional(s.updateFunction())},
		{Name: "PublishVersion", Handle: s.regional(s.publishVersion())},
		{Name: "ListFunctions", Handle: s.regional(s.listFunctions())},
		{Name: "DeleteFunction", Handle: s.regional(s.deleteFunction())},
		{Name: "CreateAlias", Handle: s.regional(s.createAlias())},
		{Name: "GetAlias", Handle: s.regional(s.getAlias())},
		{Name: "UpdateAlias", Handle: s.regional(s.updateAlias())},
		{Name: "DeleteAlias", Handle: s.regional(s.deleteAlias())},
		{Name: "ListAliases", Handle: s.regional(s.listAliases())},
		{Name: "GetFunctionEventInvokeConfig", Handle: s.regional(s.getEventInvokeConfig())},
		{Name: "UpdateFunctionEventInvokeConfig", Handle: s.regional(s.updateEventInvokeConfig())},
	} {
		s.api.Register(a)
	}
}

// fnRequest is a request body that names a function.
type fnRequest interface {
	target() fnRef
}

// fnRef is the function a request names, and the apiserver.Require pairs
// of the request's required fields in the order the API checks them.
type fnRef struct {
	ns, name string
	required []string
}

// byName is the fnRef of a request whose required fields are FunctionName
// and then the more pairs.
func byName(ns, name string, more ...string) fnRef {
	return fnRef{ns, name, append([]string{"FunctionName", name}, more...)}
}

// fnBody is the constraint of a request body type In that names a
// function: *In is a fnRequest.
type fnBody[In any] interface {
	*In
	fnRequest
}

// check is a handler's validation of a decoded body that needs no state;
// nil for none.
type check[P any] func(in P) *apiserver.Error

// parse is a check that also reads values the handler needs (a page, a
// time window), so that they are read once.
type parse[P, Q any] func(in P) (Q, *apiserver.Error)

// openFunction is the opening of an action on one function: decode the
// body, require its fields, run parse, take the server's lock and find the
// function in the request's region. On success the lock is held and the
// caller releases it; on an error it is not held.
func openFunction[In any, P fnBody[In], Q any](s *Server, req *apiserver.Request, acct *account, read parse[P, Q]) (P, Q, *function, error) {
	var q Q
	in := P(new(In))
	if e := req.Decode(in); e != nil {
		return nil, q, nil, e
	}
	ref := in.target()
	if e := apiserver.Require(ref.required...); e != nil {
		return nil, q, nil, e
	}
	q, e := read(in)
	if e != nil {
		return nil, q, nil, e
	}
	s.mu.Lock()
	fn, e := s.model.lookup(acct, ref.ns, ref.name)
	if e != nil {
		s.mu.Unlock()
		return nil, q, nil, e
	}
	return in, q, fn, nil
}

// onParsed is the handler of an action on one function: the opening of
// openFunction, then op under the lock with what parse read.
func onParsed[In any, P fnBody[In], Q any](s *Server, read parse[P, Q], op func(in P, q Q, fn *function) (any, *apiserver.Error)) regionalHandler {
	return func(req *apiserver.Request, acct *account) (any, error) {
		in, q, fn, err := openFunction[In](s, req, acct, read)
		if err != nil {
			return nil, err
		}
		defer s.mu.Unlock()
		out, e := op(in, q, fn)
		if e != nil {
			return nil, e
		}
		return out, nil
	}
}

// onFunction is onParsed with a plain check.
func onFunction[In any, P fnBody[In]](s *Server, chk check[P], op func(in P, fn *function) (any, *apiserver.Error)) regionalHandler {
	return onParsed[In](s, checked(chk), func(in P, _ struct{}, fn *function) (any, *apiserver.Error) { return op(in, fn) })
}

// checked is a check as a parse that reads nothing.
func checked[P any](chk check[P]) parse[P, struct{}] {
	return func(in P) (struct{}, *apiserver.Error) {
		if chk == nil {
			return struct{}{}, nil
		}
		return struct{}{}, chk(in)
	}
}

// onAccount is the handler of an action on a region's account: decode the
// body, run check, then op under the lock.
func onAccount[In any](s *Server, chk check[*In], op func(in *In, acct *account) (any, *apiserver.Error)) regionalHandler {
	return func(req *apiserver.Request, acct *account) (any, error) {
		in := new(In)
		if e := req.Decode(in); e != nil {
			return nil, e
		}
		if chk != nil {
			if e := chk(in); e != nil {
				return nil, e
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		out, e := op(in, acct)
		if e != nil {
			return nil, e
		}
		return out, nil
	}
}
