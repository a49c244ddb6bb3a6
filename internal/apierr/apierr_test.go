package apierr

import (
	"fmt"
	"testing"
)

func TestErrorString(t *testing.T) {
	e := &Error{Service: "car", Action: "ApplyConcurrent", Code: "ResourceNotFound.NoIdle", Message: "no idle concurrency", RequestId: "r-1", HTTPStatus: 200, Attempts: 1}
	if got, want := e.Error(), "car ApplyConcurrent: ResourceNotFound.NoIdle: no idle concurrency (request id r-1)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &Error{Service: "scf", Action: "Invoke", Code: CodeHTTPStatus, HTTPStatus: 502, Attempts: 3}
	if got, want := e.Error(), "scf Invoke: ClientError.HttpStatusCodeError (HTTP 502, 3 attempts)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestFamilies(t *testing.T) {
	wrap := func(e *Error) error { return fmt.Errorf("outer: %w", e) }
	cases := []struct {
		err                              error
		throttled, notFound, auth, input bool
	}{
		{wrap(&Error{Code: "RequestLimitExceeded"}), true, false, false, false},
		{wrap(&Error{Code: "RequestLimitExceeded.UinLimitExceeded"}), true, false, false, false},
		{wrap(&Error{Code: "RequestLimitExceededX"}), false, false, false, false},
		{wrap(&Error{Code: CodeHTTPStatus, HTTPStatus: 429}), true, false, false, false},
		{wrap(&Error{Code: "ResourceNotFound.NoIdle"}), false, true, false, false},
		{wrap(&Error{Code: "AuthFailure.SignatureFailure"}), false, false, true, false},
		{wrap(&Error{Code: "UnauthorizedOperation.CAM"}), false, false, true, false},
		{wrap(&Error{Code: "InvalidParameterValue.MaxConcurrency"}), false, false, false, true},
		{wrap(&Error{Code: "MissingParameter"}), false, false, false, true},
		{&ValidationError{Field: "UserId", Rule: "is required"}, false, false, false, true},
		{fmt.Errorf("plain"), false, false, false, false},
	}
	for _, c := range cases {
		if IsThrottled(c.err) != c.throttled || IsNotFound(c.err) != c.notFound || IsAuth(c.err) != c.auth || IsInvalidInput(c.err) != c.input {
			t.Errorf("%v: throttled=%v notFound=%v auth=%v input=%v", c.err, IsThrottled(c.err), IsNotFound(c.err), IsAuth(c.err), IsInvalidInput(c.err))
		}
	}
	if !HasCode(wrap(&Error{Code: "ResourceNotFound.NoIdle"}), "ResourceNotFound") || HasCode(wrap(&Error{Code: "ResourceNotFound.NoIdle"}), "ResourceNotFound.No") {
		t.Error("HasCode matches families by whole dotted segments only")
	}
}
