package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
)

// signature is what one attempt's signing produces.
type signature struct {
	timestamp, authorization, token string
}

func (s signature) set(h http.Header) {
	h["X-Tc-Timestamp"] = []string{s.timestamp}
	h["Authorization"] = []string{s.authorization}
	if s.token != "" {
		h["X-Tc-Token"] = []string{s.token}
	} else {
		delete(h, "X-Tc-Token")
	}
}

// signature asks the provider for the current credential and signs the
// payload at the current time.
func (a *attempt) signature() (signature, error) {
	c := a.client
	cred, err := c.creds.Credential(a.ctx)
	if err == nil {
		err = cred.Validate()
	}
	if err != nil {
		return signature{}, &credentialError{service: c.service, action: a.action, err: err}
	}
	ts := time.Now().Unix()
	return signature{
		timestamp:     strconv.FormatInt(ts, 10),
		authorization: c.signer.Sign(cred.SecretId, cred.SecretKey, ts, "application/json", c.host, a.payload),
		token:         cred.Token,
	}, nil
}

// resign is retryablehttp's PrepareRetry: a retry carries a new timestamp
// and signature. The header map is copied, since the previous attempt's
// request may still be referenced by the transport.
func (a *attempt) resign(req *http.Request) error {
	sig, err := a.signature()
	if err != nil {
		return err
	}
	req.Header = req.Header.Clone()
	sig.set(req.Header)
	return nil
}

// checkRetry is retryablehttp's CheckRetry. It runs after every attempt,
// reads the body once, and decides whether to try again and after how long.
func (a *attempt) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	a.attempts++
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	var retry bool
	var why string
	if err != nil {
		a.body, a.status = nil, 0
		retry = a.settings.idempotent || isDialError(err)
		why = "network error"
	} else {
		a.status = resp.StatusCode
		a.readBody(resp)
		switch {
		case a.readErr != nil:
			retry, why = a.settings.idempotent, "reading the response"
		case resp.StatusCode == http.StatusTooManyRequests:
			retry, why = true, "HTTP 429"
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
			retry, why = a.settings.idempotent, "HTTP "+strconv.Itoa(resp.StatusCode)
		case resp.StatusCode == http.StatusOK:
			if e := a.envelopeError(); e != nil && e.Throttled() {
				a.lastAPIErr = e
				retry, why = true, e.Code
			}
		}
	}
	if !retry || a.attempts >= a.settings.retry.MaxAttempts {
		return false, nil
	}
	a.nextWait = a.wait(resp)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= a.nextWait {
		return false, nil // the deadline would pass during the wait: stop now
	}
	if logger := a.client.logger; logger.Enabled(ctx, slog.LevelInfo) {
		attrs := []slog.Attr{
			slog.String("service", a.client.service), slog.String("action", a.action),
			slog.Int("attempt", a.attempts), slog.String("reason", why), slog.Duration("wait", a.nextWait),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		logger.LogAttrs(ctx, slog.LevelInfo, "tencentcloud call retrying", attrs...)
	}
	return true, nil
}

// backoff is retryablehttp's Backoff: the wait checkRetry chose.
func (a *attempt) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return a.nextWait
}

// wait draws the next exponential, jittered wait, raised to a Retry-After
// the server sent, and capped at MaxWait.
func (a *attempt) wait(resp *http.Response) time.Duration {
	p := a.settings.retry
	if a.bo == nil {
		a.bo = backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(p.MinWait),
			backoff.WithMaxInterval(p.MaxWait),
			backoff.WithMultiplier(2),
			backoff.WithRandomizationFactor(0.5),
			backoff.WithMaxElapsedTime(0),
		)
	}
	d := a.bo.NextBackOff()
	if resp != nil {
		if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && ra > d {
			d = ra
		}
	}
	return min(d, p.MaxWait)
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// isDialError reports a failure to connect: the request never left.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (a *attempt) readBody(resp *http.Response) {
	a.scanned = false
	if a.buf == nil {
		if b, ok := a.client.bufs.Get().(*bytes.Buffer); ok {
			a.buf = b
		} else {
			a.buf = new(bytes.Buffer)
		}
	}
	a.buf.Reset()
	if resp.ContentLength > 0 && resp.ContentLength <= MaxResponseBytes {
		a.buf.Grow(int(resp.ContentLength))
	}
	_, err := a.buf.ReadFrom(io.LimitReader(resp.Body, MaxResponseBytes+1))
	resp.Body.Close()
	resp.Body = http.NoBody
	a.readErr = err
	if err == nil && a.buf.Len() > MaxResponseBytes {
		a.readErr = errors.New("response body exceeds 16 MiB")
	}
	a.body = a.buf.Bytes()
}

// wireError is the error part of an API 3.0 envelope.
type wireError struct {
	Response struct {
		Error *struct {
			Code    string
			Message string
		}
		RequestId string
	}
}

// envelopeError returns the API error in the body, if there is one. The
// body is scanned once per response: the answer is kept for decode.
func (a *attempt) envelopeError() *apierr.Error {
	if a.scanned {
		return a.bodyErr
	}
	a.scanned, a.bodyErr = true, nil
	if !bytes.Contains(a.body, []byte(`"Error"`)) {
		return nil
	}
	var w wireError
	if json.Unmarshal(a.body, &w) != nil || w.Response.Error == nil || w.Response.Error.Code == "" {
		return nil
	}
	a.bodyErr = a.apiError(w.Response.Error.Code, w.Response.Error.Message, w.Response.RequestId)
	return a.bodyErr
}

// envelopePrefix starts every API 3.0 reply.
const envelopePrefix = `{"Response":`

func (a *attempt) apiError(code, message, requestID string) *apierr.Error {
	return &apierr.Error{
		Service: a.client.service, Action: a.action, Code: code, Message: message,
		RequestId: requestID, HTTPStatus: a.status, Attempts: a.attempts,
	}
}

// decode turns the final response into out or an *apierr.Error.
func (a *attempt) decode(out any) error {
	if e := a.envelopeError(); e != nil {
		return e
	}
	if a.status != http.StatusOK {
		return a.apiError(apierr.CodeHTTPStatus, http.StatusText(a.status)+": "+snippet(a.body), "")
	}
	if out == nil {
		out = &struct{}{}
	}
	// The reply is {"Response":{…}}: decoding the inner object straight into
	// out skips encoding/json's interface indirection (a third of the
	// decoding time). Any other shape takes the general path.
	body := bytes.TrimRight(a.body, " \t\r\n")
	if inner, ok := bytes.CutPrefix(body, []byte(envelopePrefix)); ok && len(inner) > 0 && inner[len(inner)-1] == '}' {
		if json.Unmarshal(inner[:len(inner)-1], out) == nil {
			return nil
		}
	}
	env := struct{ Response any }{Response: out}
	if err := json.Unmarshal(a.body, &env); err != nil {
		return a.apiError(apierr.CodeParseJSON, err.Error()+": "+snippet(a.body), "")
	}
	return nil
}

func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return strings.ToValidUTF8(string(b[:n]), "?") + "…"
	}
	return strings.ToValidUTF8(string(b), "?")
}
