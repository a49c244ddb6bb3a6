package retry

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
)

// Class is what a failed attempt says about trying again.
type Class uint8

const (
	// Answered: the API answered the request with an error of its own
	// domain (ResourceNotFound.NoIdle, FailedOperation.*, a 4xx status…).
	// A call's own attempts stop; a loop that knows the answer can change
	// (a queue waiting for a free concurrency) decides for itself.
	Answered Class = iota
	// Refused: the request, the credentials or the endpoint were refused
	// (a *ValidationError raised before sending, AuthFailure*,
	// UnauthorizedOperation*, InvalidParameter*, MissingParameter,
	// UnknownParameter, InvalidAction, NoSuchVersion, NoSuchProduct,
	// UnsupportedProtocol, UnsupportedRegion, ActionOffline). Trying again
	// cannot succeed: no loop retries it.
	Refused
	// Throttled: the API turned the call away before acting
	// (RequestLimitExceeded and its sub-codes, HTTP 429). Every call may be
	// retried.
	Throttled
	// Unsent: the request never reached the server (the dial failed).
	// Every call may be retried.
	Unsent
	// Transient: the server failed or the answer was lost (HTTP 5xx but
	// 501, HTTP 408, a connection lost after sending, an unreadable or unparseable
	// reply, a timeout or a cancelled context). The API may have acted:
	// only a call that is safe to repeat is retried.
	Transient
	// Internal: the API answered InternalError (or a sub-code) in an HTTP
	// 200 envelope. It may have acted. A call's own attempts stop there (the
	// API answered), and the loops above them treat it as Transient.
	Internal
)

var classNames = [...]string{"answered", "refused", "throttled", "unsent", "transient", "internal"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// MayHaveActed reports a failure after which the API may have carried the
// call out: Transient and Internal.
func (c Class) MayHaveActed() bool { return c == Transient || c == Internal }

// Fault reports a fault of the network or the server rather than an answer
// about the request: Unsent, Transient and Internal. A loop that may repeat
// its call (an idempotent invocation, a Start's rounds) retries these.
func (c Class) Fault() bool { return c == Unsent || c == Transient || c == Internal }

// RetryAttempt reports whether a call's next attempt may follow a failure
// of this class: Throttled and Unsent always, Transient when the call is
// safe to repeat (idempotent).
func (c Class) RetryAttempt(idempotent bool) bool {
	return c == Throttled || c == Unsent || (c == Transient && idempotent)
}

// refusedCodes are the common API codes, besides the AuthFailure,
// UnauthorizedOperation and input families, that no retry can cure.
var refusedCodes = [...]string{"NoSuchProduct", "UnsupportedProtocol", "UnsupportedRegion", "ActionOffline"}

// Classify sorts a failure: an *apierr.Error by its code and HTTP status,
// an *apierr.ValidationError as Refused, a failed dial as Unsent, and
// every other error (network, timeouts, contexts) as Transient. A nil
// error is Answered.
func Classify(err error) Class {
	if err == nil {
		return Answered
	}
	var ve *apierr.ValidationError
	if errors.As(err, &ve) {
		return Refused
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		if IsUnsent(err) {
			return Unsent
		}
		return Transient
	}
	switch {
	case e.Throttled():
		return Throttled
	case e.Auth(), e.InvalidInput():
		return Refused
	case ClassifyStatus(e.HTTPStatus) == Transient:
		return Transient
	case e.Code == apierr.CodeParseJSON:
		return Transient
	case e.Code == "InternalError" || strings.HasPrefix(e.Code, "InternalError."):
		return Internal
	}
	for _, code := range refusedCodes {
		if apierr.HasCode(e, code) {
			return Refused
		}
	}
	return Answered
}

// ClassifyStatus sorts an HTTP status, for an answer that carries no API
// error (an API reply without an error envelope, a WebSocket handshake):
// 429 is Throttled; 408 and 5xx but 501 are Transient; any other status is
// Answered, the server's final word on the request.
func ClassifyStatus(status int) Class {
	switch {
	case status == 429:
		return Throttled
	case status == 408, status >= 500 && status < 600 && status != 501:
		return Transient
	}
	return Answered
}

// IsUnsent reports a failure to connect: the request never left.
func IsUnsent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// IsTimeout reports a failure that took a timeout to find (an attempt's
// deadline, a network timeout): it costs the budget more, as it held a
// connection and the server's attention for that long.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
