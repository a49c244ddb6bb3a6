package scf

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// FunctionError is a failed synchronous invocation: the function could not
// run (429 scale-out rate, 432 quota, 442 no such qualifier…) or ran and
// failed (430 user code, 433 timeout, 434 out of memory, 439 process
// exit…). Branch on it with errors.As:
//
//	var fe *scf.FunctionError
//	if errors.As(err, &fe) && fe.StatusCode == scf.StatusResourceLimitReached { … }
//
// It reaches the caller in one of two ways (see the package doc): inside
// the invocation's Result, whose ErrMsg carries a JSON error body, or, for
// InvokeFunction's request-level failures, as an API error
// (LimitExceeded.Quota, ResourceNotFound.Qualifier), which FunctionError
// wraps: errors.As finds the *APIError too.
type FunctionError struct {
	Action       string // "Invoke" or "InvokeFunction"
	FunctionName string
	Qualifier    string // as requested; empty for the action's default
	// StatusCode is the function status code (StatusResourceLimitReached…);
	// 0 when the error body carried none.
	StatusCode int
	// Name is the documented name of StatusCode ("ResourceLimitReached").
	Name string
	// Message is the error body's errorMessage, or the raw error text when
	// the body was not the JSON form.
	Message string
	// ErrorCode is the body's errorCode (1 for platform errors, -1 for a
	// timeout in observed bodies); 0 when absent.
	ErrorCode int
	// FunctionRequestId identifies the execution (GetRequestStatus takes
	// it); empty when the failure came as an API error.
	FunctionRequestId string //nolint:revive // the API's spelling
	// RequestId is the API call's request id.
	RequestId string //nolint:revive
	// Result is the execution result that carried the failure (duration,
	// billed time, memory, log); nil for an API error.
	Result *Result
	// API is the API error this failure arrived as, or nil.
	API *APIError
}

func (e *FunctionError) Error() string {
	var b strings.Builder
	b.WriteString("scf ")
	b.WriteString(e.Action)
	if e.FunctionName != "" {
		b.WriteByte(' ')
		b.WriteString(e.FunctionName)
		if e.Qualifier != "" {
			b.WriteByte(':')
			b.WriteString(e.Qualifier)
		}
	}
	b.WriteString(": function failed")
	if e.StatusCode != 0 {
		b.WriteString(" with status ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteByte(' ')
		b.WriteString(e.Name)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	sep := " ("
	if e.API != nil {
		b.WriteString(sep + "API error " + e.API.Code)
		sep = ", "
	}
	if e.FunctionRequestId != "" {
		b.WriteString(sep + "function request id " + e.FunctionRequestId)
		sep = ", "
	}
	if e.RequestId != "" {
		b.WriteString(sep + "request id " + e.RequestId)
		sep = ", "
	}
	if sep == ", " {
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap returns the API error the failure arrived as, if any.
func (e *FunctionError) Unwrap() error {
	if e.API == nil {
		return nil
	}
	return e.API
}

// Class returns the documented error class of the status code.
func (e *FunctionError) Class() ErrorClass { return ClassOf(e.StatusCode) }

// FunctionStatus returns the status code of the *FunctionError in err's
// chain, or 0 if there is none.
func FunctionStatus(err error) int {
	var fe *FunctionError
	if errors.As(err, &fe) {
		return fe.StatusCode
	}
	return 0
}

// Err reports the failure a Result carries, as a *FunctionError, or nil
// for a successful execution (and for an accepted asynchronous event).
//
// A non-empty ErrMsg is a failure; its JSON error body
// {"errorCode":…,"errorMessage":…,"requestId":…,"statusCode":…} gives
// the status code and message, and any other text becomes the Message with
// StatusCode 0. When ErrMsg is empty, RetMsg is read as an error body only
// if InvokeResult is non-zero (the platform flagged a failure) and the body
// has a statusCode, so a function whose return value merely looks like an
// error body is never mistaken for a failed one.
func (r *Result) Err() error {
	if r == nil {
		return nil
	}
	fe := &FunctionError{FunctionRequestId: r.FunctionRequestId, Result: r}
	switch body, ok := parseErrorBody(r.ErrMsg); {
	case ok:
		fe.StatusCode, fe.ErrorCode, fe.Message = body.StatusCode, body.ErrorCode, body.Message
		if fe.FunctionRequestId == "" {
			fe.FunctionRequestId = body.RequestID
		}
		if fe.Message == "" && fe.StatusCode == 0 {
			fe.Message = strings.ToValidUTF8(r.ErrMsg, "?")
		}
	case r.ErrMsg != "":
		fe.Message = strings.ToValidUTF8(r.ErrMsg, "?")
	case r.InvokeResult != 0:
		body, ok := parseErrorBody(r.RetMsg)
		if !ok || body.StatusCode == 0 {
			return nil // an ordinary return value
		}
		fe.StatusCode, fe.ErrorCode, fe.Message = body.StatusCode, body.ErrorCode, body.Message
		if fe.FunctionRequestId == "" {
			fe.FunctionRequestId = body.RequestID
		}
	default:
		return nil
	}
	if fe.StatusCode != 0 {
		fe.Name = StatusName(fe.StatusCode)
	}
	return fe
}

// errorBody is the JSON a failed execution reports.
type errorBody struct {
	StatusCode int
	ErrorCode  int
	Message    string
	RequestID  string
}

// maxErrorBody bounds the text parsed as an error body; ErrMsg can be as
// large as a response (6 MB), and an error body is small.
const maxErrorBody = 1 << 20

// parseErrorBody reads an error body: a JSON object with at least one of
// statusCode, errorCode, errorMessage. Numbers may be JSON numbers or
// strings holding integers; a statusCode outside 100–599 counts as absent.
func parseErrorBody(s string) (errorBody, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || len(s) > maxErrorBody {
		return errorBody{}, false
	}
	var raw struct {
		StatusCode   json.RawMessage `json:"statusCode"`
		ErrorCode    json.RawMessage `json:"errorCode"`
		ErrorMessage json.RawMessage `json:"errorMessage"`
		RequestID    json.RawMessage `json:"requestId"`
	}
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return errorBody{}, false
	}
	if raw.StatusCode == nil && raw.ErrorCode == nil && raw.ErrorMessage == nil {
		return errorBody{}, false
	}
	var b errorBody
	if n, ok := jsonInt(raw.StatusCode); ok && n >= 100 && n <= 599 {
		b.StatusCode = int(n)
	}
	if n, ok := jsonInt(raw.ErrorCode); ok && n >= -1<<31 && n < 1<<31 {
		b.ErrorCode = int(n)
	}
	b.Message = jsonText(raw.ErrorMessage)
	b.RequestID = jsonText(raw.RequestID)
	return b, true
}

// jsonInt reads an integer from a JSON number or a JSON string.
func jsonInt(v json.RawMessage) (int64, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return 0, false
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return 0, false
		}
		v = []byte(strings.TrimSpace(s))
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(v), 64)
		if ferr != nil || f != float64(int64(f)) || f > 1<<53 || f < -(1<<53) {
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

// jsonText reads a JSON string; any other JSON value is kept as its text.
func jsonText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	var s string
	if v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	return strings.ToValidUTF8(string(v), "?")
}

// invokeError turns the outcome of an Invoke or InvokeFunction call into a
// *FunctionError where one applies: a failed Result, or one of the API
// errors InvokeFunction uses for request-level failures.
func invokeError(action, function, qualifier string, res *Result, requestID string, err error) error {
	if err != nil {
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			return err
		}
		status := 0
		switch {
		case apiErr.Code == CodeQuota:
			status = StatusResourceLimitReached
		case apiErr.Code == CodeQualifierNotFound:
			status = StatusQualifierNotFound
		default:
			return err
		}
		return &FunctionError{
			Action: action, FunctionName: function, Qualifier: qualifier,
			StatusCode: status, Name: StatusName(status), Message: apiErr.Message,
			RequestId: apiErr.RequestId, API: apiErr,
		}
	}
	ferr := res.Err()
	if ferr == nil {
		return nil
	}
	fe := ferr.(*FunctionError)
	fe.Action, fe.FunctionName, fe.Qualifier, fe.RequestId = action, function, qualifier, requestID
	return fe
}
