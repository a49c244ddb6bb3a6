package scftest

import (
	"cmp"
	"encoding/json"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// The invocation actions: Invoke, InvokeFunction and GetRequestStatus.

// syncCall runs one synchronous execution and waits for its end. It is
// called with s.mu held and returns with it released. A request that
// cannot run comes back as a rejection, with the id it was given.
func (s *Server) syncCall(fn *function, qualifier, routingKey string, p execParams) (*execution, *rejection, string) {
	p.id = apiserver.NewRequestID()
	p.now = s.clock.Now() // read once: its record, its instance's use, its start
	ex, rej := s.model.startCall(fn, qualifier, routingKey, p)
	if rej == nil && !s.needsColdStart(ex) {
		s.startLocked(ex, p.now) // under the lock already held, at once
	}
	s.mu.Unlock()
	if rej != nil {
		return nil, rej, p.id
	}
	if p.header != nil {
		p.header.Set("X-Scf-Request-Id", p.id)
	}
	s.exec(ex) // on this goroutine: no hand-off to another
	<-ex.done
	return ex, nil, p.id
}

// resultOf is the Result of a finished execution.
func (s *Server) resultOf(ex *execution, tail bool) resultOut {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := resultOut{FunctionRequestId: ex.id, MemUsage: ex.memPeak}
	r.Duration, r.BillDuration, r.RetMsg, r.ErrMsg = ex.summary()
	if r.ErrMsg != "" {
		r.InvokeResult = -1
	}
	if tail {
		r.Log = lastBytes(ex.log.String(), 4<<10)
	}
	return r
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

// openInvocable is openFunction for an invocation action: an HTTP
// function is refused, as it is reached over its function URL. On success
// the lock is held.
func openInvocable[In any, P fnBody[In], Q any](s *Server, req *apiserver.Request, acct *account, read parse[P, Q]) (P, Q, *function, error) {
	in, q, fn, err := openFunction[In](s, req, acct, read)
	if err != nil {
		return nil, q, nil, err
	}
	if fn.versions[scf.QualifierLatest].cfg.typ == scf.FunctionTypeHTTP {
		s.mu.Unlock()
		return nil, q, nil, apiserver.Errorf(scf.CodeInvalidFunctionType, "[%s] is an HTTP function: it is reached over HTTP (its function URL), not with %s", fn.name, req.Action)
	}
	return in, q, fn, nil
}

func (s *Server) invoke(req *apiserver.Request, acct *account) (any, error) {
	in, async, fn, err := openInvocable[invokeIn](s, req, acct, func(in *invokeIn) (async bool, e *apiserver.Error) {
		limit := scf.MaxSyncEventBytes
		switch in.InvocationType {
		case "", scf.InvocationRequestResponse:
		case scf.InvocationEvent:
			async, limit = true, scf.MaxAsyncEventBytes
		default:
			return false, apiserver.Errorf("InvalidParameterValue.InvokeType", "InvocationType %q must be RequestResponse or Event", in.InvocationType)
		}
		if e := checkEvent("ClientContext", in.ClientContext, limit, scf.CodeInvalidParam); e != nil {
			return false, e
		}
		return async, checkInvokeCommon(in.LogType, in.RoutingKey)
	})
	if err != nil {
		return nil, err
	}
	qualifier := cmp.Or(in.Qualifier, scf.QualifierLatest)
	if async {
		ev := &asyncEvent{id: apiserver.NewRequestID(), qualifier: qualifier, routingKey: in.RoutingKey, payload: in.ClientContext}
		e := s.model.enqueue(fn, ev)
		s.mu.Unlock()
		if e != nil {
			return nil, e
		}
		return invokeOut{Result: resultOut{FunctionRequestId: ev.id}}, nil
	}
	out, _ := s.invokeSync(fn, qualifier, in.RoutingKey, in.ClientContext, in.LogType)
	return out, nil
}

func (s *Server) invokeFunction(req *apiserver.Request, acct *account) (any, error) {
	in, _, fn, err := openInvocable[invokeFunctionIn](s, req, acct, checked(func(in *invokeFunctionIn) *apiserver.Error {
		if e := checkEvent("Event", in.Event, scf.MaxSyncEventBytes, scf.CodeInvalidClientContext); e != nil {
			return e
		}
		return checkInvokeCommon(in.LogType, in.RoutingKey)
	}))
	if err != nil {
		return nil, err
	}
	out, rej := s.invokeSync(fn, cmp.Or(in.Qualifier, scf.AliasDefault), in.RoutingKey, in.Event, in.LogType)
	if rej != nil {
		switch rej.status {
		case scf.StatusResourceLimitReached:
			return nil, apiserver.Errorf(scf.CodeQuota, "%s", rej.message)
		case scf.StatusQualifierNotFound:
			return nil, apiserver.Errorf(scf.CodeQualifierNotFound, "%s", rej.message)
		}
	}
	return out, nil
}

// invokeSync runs a synchronous invocation of the API, called with s.mu
// held; it returns with s.mu released. A request that cannot run comes
// back as a rejected result and its rejection, which each action answers
// its own way. The answer of an execution is kept in it, allocated with
// it.
func (s *Server) invokeSync(fn *function, qualifier, routingKey, event, logType string) (*invokeOut, *rejection) {
	ex, rej, id := s.syncCall(fn, qualifier, routingKey, execParams{event: event, maxLimit: scf.MaxSyncInvokeTime})
	if rej != nil {
		return &invokeOut{Result: rejectedResult(rej, id)}, rej
	}
	ex.answer.Result = s.resultOf(ex, logType == scf.LogTypeTail)
	return &ex.answer, nil
}

// window is GetRequestStatus's StartTime and EndTime; a zero time is no
// bound.
type window struct{ from, to time.Time }

func parseWindow(in *getRequestStatusIn) (w window, e *apiserver.Error) {
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"StartTime", in.StartTime, &w.from}, {"EndTime", in.EndTime, &w.to}} {
		if t.v == "" {
			continue
		}
		v, err := time.ParseInLocation(timeLayout, t.v, cst())
		if err != nil {
			return w, apiserver.Errorf(scf.CodeInvalidValue, "%s %q must look like 2006-01-02 15:04:05", t.name, t.v)
		}
		*t.dst = v
	}
	return w, nil
}

func (s *Server) getRequestStatus() regionalHandler {
	return onParsed(s, parseWindow, func(in *getRequestStatusIn, w window, fn *function) (any, *apiserver.Error) {
		from, to := w.from, w.to
		out := getRequestStatusOut{Data: []requestStatusOut{}}
		rec := s.model.records.get(in.FunctionRequestId)
		if rec == nil || rec.fnKey != fn.key() || (!from.IsZero() && rec.start.Before(from)) || (!to.IsZero() && rec.start.After(to)) {
			return out, nil
		}
		out.TotalCount = 1
		out.Data = append(out.Data, requestStatusOut{
			FunctionName: rec.fnName, RetMsg: rec.retMsg, RequestId: rec.id.String(), StartTime: apiTime(rec.start),
			RetCode: rec.retCode, Duration: rec.duration, MemUsage: rec.memMB, RetryNum: rec.retryNum,
		})
		return out, nil
	})
}
