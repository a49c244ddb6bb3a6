package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// signature is what one attempt's signing produces.
type signature struct {
	timestamp, authorization, token string
}

// set writes the signature's headers into h, their values in vals (room
// for 3), so that they take no allocation of their own.
func (s signature) set(h http.Header, vals []string) {
	vals = append(vals[:0], s.timestamp, s.authorization, s.token)
	h["X-Tc-Timestamp"] = vals[0:1:1]
	h["Authorization"] = vals[1:2:2]
	if s.token != "" {
		h["X-Tc-Token"] = vals[2:3:3]
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
	// The timestamp and the Authorization value in one string: one
	// allocation for both.
	var buf [320]byte
	b := strconv.AppendInt(buf[:0], ts, 10)
	n := len(b)
	both := string(c.signer.AppendSign(b, cred.SecretId, cred.SecretKey, ts, "application/json", c.host, a.payload))
	return signature{timestamp: both[:n], authorization: both[n:], token: cred.Token}, nil
}

// checkRetry runs after every attempt. It reads the body once, sorts the
// failure with the SDK's one classification (retry.Classify), and decides
// whether to try again and after how long: the attempt limit, the
// context's deadline and the client's retry budget can each say no.
// A non-nil error ends the call with it (the context ended).
func (a *attempt) checkRetry(ctx context.Context, resp *http.Response, err error) (time.Duration, bool, error) {
	a.attempts++
	if ctxErr := ctx.Err(); ctxErr != nil {
		return 0, false, ctxErr
	}
	var failure error
	var why string
	var envelope *apierr.Error
	if err != nil {
		a.body, a.status = nil, 0
		failure, why = err, "network error"
	} else {
		a.status = resp.StatusCode
		a.readBody(resp)
		switch {
		case a.readErr != nil:
			failure, why = a.readErr, "reading the response"
		case resp.StatusCode != http.StatusOK:
			// The status decides, whatever the body says.
			failure, why = a.apiError(apierr.CodeHTTPStatus, "", ""), "HTTP "+strconv.Itoa(resp.StatusCode)
		default:
			if envelope = a.envelopeError(); envelope != nil {
				failure, why = envelope, envelope.Code
			}
		}
	}
	if failure == nil || !retry.Classify(failure).RetryAttempt(a.settings.idempotent) ||
		a.attempts >= a.settings.retry.MaxAttempts {
		return 0, false, nil
	}
	if envelope != nil {
		a.lastAPIErr = envelope
	}
	var hint time.Duration
	if resp != nil {
		hint, _ = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	wait := a.settings.retry.backoff().After(a.attempts, hint)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
		return 0, false, nil // the deadline would pass during the wait: stop now
	}
	logger := a.client.logger
	cost, ok := a.client.budget.Spend(retry.IsTimeout(failure))
	if !ok {
		if logger.Enabled(ctx, slog.LevelInfo) {
			logger.LogAttrs(ctx, slog.LevelInfo, "tencentcloud call not retried: the client's retry budget is empty",
				slog.String("service", a.client.service), slog.String("action", a.action),
				slog.Int("attempt", a.attempts), slog.String("reason", why))
		}
		return 0, false, nil
	}
	a.spent += cost
	if logger.Enabled(ctx, slog.LevelInfo) {
		attrs := []slog.Attr{
			slog.String("service", a.client.service), slog.String("action", a.action),
			slog.Int("attempt", a.attempts), slog.String("reason", why), slog.Duration("wait", wait),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		logger.LogAttrs(ctx, slog.LevelInfo, "tencentcloud call retrying", attrs...)
	}
	return wait, true, nil
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
	a.limited = io.LimitedReader{R: resp.Body, N: MaxResponseBytes + 1}
	_, err := a.buf.ReadFrom(&a.limited)
	a.limited.R = nil
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
		inner = inner[:len(inner)-1]
		// A flat answer into a flat output type skips encoding/json
		// (flat.go); it gives the same result or leaves out untouched.
		if rv := reflect.ValueOf(out); rv.Kind() == reflect.Pointer && !rv.IsNil() {
			if pl := a.client.flat.plan(rv.Type().Elem()); pl != nil && decodeFlat(inner, pl, rv.Elem()) {
				return nil
			}
		}
		if json.Unmarshal(inner, out) == nil {
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
