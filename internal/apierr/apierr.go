// Package apierr defines the error a Tencent Cloud API call returns, shared
// by the car and scf packages (which expose it as a type alias), and the
// client-side validation error.
package apierr

import (
	"errors"
	"strconv"
	"strings"
)

// Client-side codes, named as the official SDK names them, for failures that
// have no API error envelope.
const (
	// CodeHTTPStatus: the server answered with a non-200 status and no
	// error envelope.
	CodeHTTPStatus = "ClientError.HttpStatusCodeError"
	// CodeParseJSON: a 200 response whose body is not the expected JSON.
	CodeParseJSON = "ClientError.ParseJsonError"
)

// Codes common to every Tencent Cloud API. car and scf re-export them.
const (
	CodeRequestLimitExceeded = "RequestLimitExceeded"
	CodeMissingParameter     = "MissingParameter"
	CodeUnknownParameter     = "UnknownParameter"
	CodeInvalidAction        = "InvalidAction"
	CodeNoSuchVersion        = "NoSuchVersion"
	CodeSignatureFailure     = "AuthFailure.SignatureFailure"
	CodeSignatureExpire      = "AuthFailure.SignatureExpire"
	CodeSecretIDNotFound     = "AuthFailure.SecretIdNotFound"
	CodeInvalidAuthorization = "AuthFailure.InvalidAuthorization"
	CodeTokenFailure         = "AuthFailure.TokenFailure"
)

// Error is an error returned by a Tencent Cloud API, or a transport failure
// with an HTTP status. Find it with errors.As from both car and scf:
//
//	var apiErr *car.APIError
//	if errors.As(err, &apiErr) && apiErr.Code == car.CodeNoIdle { … }
type Error struct {
	Service    string // "car", "scf"
	Action     string // "ApplyConcurrent"
	Code       string // "ResourceNotFound.NoIdle"
	Message    string
	RequestId  string //nolint:revive // the API's own spelling
	HTTPStatus int    // 200 for API errors, which arrive in a 200 envelope
	Attempts   int    // attempts made, retries included
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Service)
	b.WriteByte(' ')
	b.WriteString(e.Action)
	b.WriteString(": ")
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	sep := " ("
	if e.RequestId != "" {
		b.WriteString(sep + "request id " + e.RequestId)
		sep = ", "
	}
	if e.HTTPStatus != 0 && e.HTTPStatus != 200 {
		b.WriteString(sep + "HTTP " + strconv.Itoa(e.HTTPStatus))
		sep = ", "
	}
	if e.Attempts > 1 {
		b.WriteString(sep + strconv.Itoa(e.Attempts) + " attempts")
		sep = ", "
	}
	if sep == ", " {
		b.WriteByte(')')
	}
	return b.String()
}

// Throttled reports a rate limit: RequestLimitExceeded and its sub-codes, or
// HTTP 429.
func (e *Error) Throttled() bool {
	return hasFamily(e.Code, CodeRequestLimitExceeded) || e.HTTPStatus == 429
}

// NotFound reports a ResourceNotFound code.
func (e *Error) NotFound() bool { return hasFamily(e.Code, "ResourceNotFound") }

// Auth reports an authentication or authorisation failure.
func (e *Error) Auth() bool {
	return hasFamily(e.Code, "AuthFailure") || hasFamily(e.Code, "UnauthorizedOperation")
}

// InvalidInput reports a request the server rejected as malformed.
func (e *Error) InvalidInput() bool {
	for _, f := range []string{"InvalidParameter", "InvalidParameterValue", "MissingParameter", "UnknownParameter", "InvalidAction", "NoSuchVersion"} {
		if hasFamily(e.Code, f) {
			return true
		}
	}
	return false
}

// hasFamily reports code == family or code starts with family + ".".
func hasFamily(code, family string) bool {
	rest, ok := strings.CutPrefix(code, family)
	return ok && (rest == "" || rest[0] == '.')
}

// ValidationError is a request rejected before it was sent: a required field
// is empty or a value breaks a documented rule. Nothing was sent.
type ValidationError struct {
	Service string
	Action  string
	Field   string // the API's field name, e.g. "UserId"
	Rule    string // e.g. "is required", "must be between 40s and 1h"
}

func (e *ValidationError) Error() string {
	return e.Service + " " + e.Action + ": " + e.Field + " " + e.Rule
}

// IsThrottled reports whether err is, or wraps, a throttling API error.
func IsThrottled(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Throttled()
}

// IsNotFound reports whether err is, or wraps, a ResourceNotFound API error.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.NotFound()
}

// IsAuth reports whether err is, or wraps, an authentication API error.
func IsAuth(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Auth()
}

// IsInvalidInput reports whether err is, or wraps, an input error: one the
// server returned, or a *ValidationError raised before sending.
func IsInvalidInput(err error) bool {
	var e *Error
	var v *ValidationError
	return errors.As(err, &v) || (errors.As(err, &e) && e.InvalidInput())
}

// HasCode reports whether err is, or wraps, an API error with this code or a
// sub-code of it ("ResourceNotFound" matches "ResourceNotFound.NoIdle").
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && hasFamily(e.Code, code)
}
