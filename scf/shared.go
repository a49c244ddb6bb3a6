package scf

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
	"github.com/tcconcurrency/sdk-go/internal/credential"
	"github.com/tcconcurrency/sdk-go/internal/transport"
)

// The types below are shared with package car: an *APIError from either is
// the same type, and a CredentialProvider serves both.

// APIError is an error returned by the SCF API; see its fields for the code,
// message, request id, HTTP status and attempts.
type APIError = apierr.Error

// ValidationError is a request rejected before it was sent; it names the
// field and the rule.
type ValidationError = apierr.ValidationError

// Credential is a SecretId, SecretKey and optional Token. It prints,
// logs and marshals without its secrets.
type Credential = credential.Credential

// CredentialProvider finds a credential before every signed attempt.
type CredentialProvider = credential.Provider

// ErrCredentialNotFound is wrapped by a provider that has no credential.
var ErrCredentialNotFound = credential.ErrNotFound

// StaticCredentials provides a permanent key pair.
func StaticCredentials(secretID, secretKey string) CredentialProvider {
	return credential.NewStatic(secretID, secretKey)
}

// TokenCredentials provides a temporary key pair and its session token.
func TokenCredentials(secretID, secretKey, token string) CredentialProvider {
	return credential.NewStaticToken(secretID, secretKey, token)
}

// EnvCredentials reads TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY and
// TENCENTCLOUD_SESSION_TOKEN.
func EnvCredentials() CredentialProvider { return &credential.Env{} }

// ProfileCredentials reads section [default] of the INI file at path; an
// empty path means $TENCENTCLOUD_CREDENTIALS_FILE, else
// ~/.tencentcloud/credentials.
func ProfileCredentials(path string) CredentialProvider { return &credential.Profile{Path: path} }

// ChainCredentials returns the first credential any provider has.
func ChainCredentials(providers ...CredentialProvider) CredentialProvider {
	return credential.Chain(providers)
}

// DefaultCredentials is the chain environment → profile file, the default.
func DefaultCredentials() CredentialProvider { return credential.Default() }

// Option configures a Client.
type Option = transport.Option

// RetryPolicy bounds retries: total attempts, first and longest wait.
type RetryPolicy = transport.RetryPolicy

// RetryBudget is the client's retry budget: a token bucket that the retries
// of all the client's calls draw on (Capacity, RetryCost, TimeoutCost,
// SuccessRefund; Disabled turns it off), so that during an outage retries
// do not multiply the load on the API. When it is empty, a failed attempt
// is not retried and the call returns its last error.
type RetryBudget = transport.RetryBudget

// CallOption adjusts one call.
type CallOption = transport.CallOption

// WithEndpoint sets the endpoint URL, e.g. a reference server's.
func WithEndpoint(endpoint string) Option { return transport.WithEndpoint(endpoint) }

// WithRegion sets X-TC-Region, e.g. "ap-guangzhou": SCF quotas and functions are per region.
func WithRegion(region string) Option { return transport.WithRegion(region) }

// WithCredentials sets the credential provider.
func WithCredentials(p CredentialProvider) Option { return transport.WithCredentials(p) }

// WithHTTPClient sets the HTTP client; its Timeout bounds each attempt.
func WithHTTPClient(c *http.Client) Option { return transport.WithHTTPClient(c) }

// WithLogger sets a logger; the default is silent. Secrets are never logged.
func WithLogger(l *slog.Logger) Option { return transport.WithLogger(l) }

// WithRetry sets the client's retry policy (default: 3 attempts, 500 ms
// first wait, 20 s longest wait).
func WithRetry(p RetryPolicy) Option { return transport.WithRetry(p) }

// WithRetryBudget sets the client's retry budget; RetryBudget{Disabled:
// true} turns it off. The default bucket holds 500 tokens; a retry takes
// 5, a retry after a timeout 10, and a call that succeeds at once gives 1
// back (one that succeeds after retries gives back what they took). So a
// client adds at most 100 retries to an outage.
func WithRetryBudget(b RetryBudget) Option { return transport.WithRetryBudget(b) }

// WithLanguage sets the language of error messages: "en-US" or "zh-CN".
func WithLanguage(lang string) Option { return transport.WithLanguage(lang) }

// WithCallRetry overrides the retry policy for one call.
func WithCallRetry(p RetryPolicy) CallOption { return transport.WithCallRetry(p) }

// IsThrottled reports a rate-limit error (RequestLimitExceeded*, HTTP 429).
func IsThrottled(err error) bool { return apierr.IsThrottled(err) }

// IsNotFound reports a ResourceNotFound.* error, such as CodeFunctionNotFound.
func IsNotFound(err error) bool { return apierr.IsNotFound(err) }

// IsAuth reports an AuthFailure.* or UnauthorizedOperation.* error.
func IsAuth(err error) bool { return apierr.IsAuth(err) }

// IsInvalidInput reports a rejected request: a *ValidationError, or an
// InvalidParameter*, MissingParameter or UnknownParameter error.
func IsInvalidInput(err error) bool { return apierr.IsInvalidInput(err) }

// HasCode reports an *APIError with this code or a sub-code of it.
func HasCode(err error, code string) bool { return apierr.HasCode(err, code) }

// Ptr returns a pointer to v, for optional fields where zero is meaningful.
func Ptr[T any](v T) *T { return &v }

// Clock is the time source of the waits this package makes itself: the
// Invoker's retry waits and the provisioned-concurrency waiter. The default
// is the host's clock. A reference server's model clock (scftest's
// Server.Clock) satisfies it, so a test or a time-scaled demo can drive
// those waits with the server's time.
type Clock interface {
	Now() time.Time
	// Sleep waits until the clock has moved d forward or ctx ends, and
	// then returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
}

// hostClock is the default Clock.
type hostClock struct{}

func (hostClock) Now() time.Time { return time.Now() }

func (hostClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
