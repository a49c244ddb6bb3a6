package tc3

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
)

// Error codes the verifier returns; they are Tencent Cloud's own.
const (
	CodeInvalidAuthorization = apierr.CodeInvalidAuthorization
	CodeSignatureExpire      = apierr.CodeSignatureExpire
	CodeSignatureFailure     = apierr.CodeSignatureFailure
	CodeSecretIDNotFound     = apierr.CodeSecretIDNotFound
	CodeTokenFailure         = apierr.CodeTokenFailure
	CodeMissingParameter     = apierr.CodeMissingParameter
	CodeInvalidParameter     = "InvalidParameter"
)

// MaxSkew is how far a request's timestamp may be from the server's clock.
const MaxSkew = 5 * time.Minute

// Error is a verification failure with the code a Tencent Cloud API returns.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Secret is what the server knows of a SecretId. Token is set for temporary
// credentials: such requests must carry it in X-TC-Token.
type Secret struct {
	Key   string
	Token string
}

// Identity is what a verified request proves.
type Identity struct {
	SecretID string
	Service  string
	Date     string
}

// Verifier checks TC3-HMAC-SHA256 signatures on incoming requests.
type Verifier struct {
	// Lookup returns the secret of a SecretId.
	Lookup func(secretID string) (Secret, bool)
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time

	keys     sync.Map // derivedKeyID → [32]byte
	keyCount atomic.Int64
}

// Verify checks the signature of r, whose body has been read into body. It
// accepts whatever SignedHeaders list the client declares (it must contain
// content-type and host), the Host header with or without its port (the Go
// and Node official SDKs differ), and the Content-Type exactly as sent.
// Signatures are compared in constant time. A failure is an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (Identity, error) {
	raw := r.Header.Get("Authorization")
	if raw == "" {
		return Identity{}, &Error{CodeInvalidAuthorization, "the Authorization header is missing"}
	}
	auth, err := ParseAuthorization(raw)
	if err != nil {
		return Identity{}, err
	}
	ts := HeaderValue(r, "X-Tc-Timestamp")
	if ts == "" {
		return Identity{}, &Error{CodeMissingParameter, "the X-TC-Timestamp header is missing"}
	}
	timestamp, perr := strconv.ParseInt(ts, 10, 64)
	if perr != nil {
		return Identity{}, &Error{CodeInvalidParameter, "X-TC-Timestamp must be a Unix time in seconds"}
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if skew := now().Sub(time.Unix(timestamp, 0)); skew > MaxSkew || skew < -MaxSkew {
		return Identity{}, &Error{CodeSignatureExpire, "Timestamp and server time cannot differ by more than five minutes"}
	}
	secret, ok := v.Lookup(auth.SecretID)
	if !ok {
		return Identity{}, &Error{CodeSecretIDNotFound, "the SecretId is not found: it may be deleted, disabled or mistyped"}
	}
	token := HeaderValue(r, "X-Tc-Token")
	if secret.Token != "" || token != "" {
		if subtle.ConstantTimeCompare([]byte(token), []byte(secret.Token)) != 1 {
			return Identity{}, &Error{CodeTokenFailure, "the X-TC-Token does not belong to this SecretId"}
		}
	}
	var date [10]byte
	if string(appendDate(date[:0], timestamp)) != auth.Date {
		return Identity{}, &Error{CodeSignatureFailure, "the credential scope date is not the UTC date of X-TC-Timestamp"}
	}

	var payload [32]byte
	if HeaderValue(r, "X-Tc-Content-Sha256") == UnsignedPayload {
		payload = sha256.Sum256([]byte(UnsignedPayload))
	} else {
		payload = sha256.Sum256(body)
	}
	var payloadHex [64]byte
	hex.Encode(payloadHex[:], payload[:])
	signing := v.signingKey(secret.Key, auth.Date, auth.Service)
	var want [32]byte
	if _, err := hex.Decode(want[:], []byte(auth.Signature)); err != nil {
		return Identity{}, &Error{CodeInvalidAuthorization, "the Authorization header is malformed: Signature is not hex"}
	}
	// The forms a legitimate client may have signed: values lower-cased
	// and trimmed (the documented rule) or as sent (what the Go SDK does),
	// and Host as sent or without its port (what the Node SDK signs). The
	// documented form with Host as sent comes first.
	bare := ""
	if h, _, err := net.SplitHostPort(r.Host); err == nil && h != "" {
		bare = h
	}
	for _, host := range [2]string{r.Host, bare} {
		if host == "" {
			continue
		}
		for _, documented := range [2]bool{true, false} {
			if matches(r, &auth, host, documented, payloadHex[:], timestamp, signing, want[:]) {
				return Identity{SecretID: auth.SecretID, Service: auth.Service, Date: auth.Date}, nil
			}
		}
	}
	return Identity{}, &Error{CodeSignatureFailure, "the request signature does not match: check the SecretKey and the signing steps"}
}

// matches computes the signature of one canonical form in stack buffers and
// compares it with want in constant time.
func matches(r *http.Request, auth *ParsedAuthorization, host string, documented bool, payloadHex []byte, timestamp int64, signing [32]byte, want []byte) bool {
	var buf [1024]byte
	b := append(buf[:0], r.Method...)
	b = append(b, "\n/\n"...)
	b = append(b, r.URL.RawQuery...)
	b = append(b, '\n')
	for _, name := range auth.SignedHeaders {
		value := host
		if name != "host" {
			value = r.Header.Get(name)
		}
		b = append(b, name...)
		b = append(b, ':')
		if documented {
			b = appendLowerTrimmed(b, value)
		} else {
			b = append(b, value...)
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, name := range auth.SignedHeaders {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, name...)
	}
	b = append(b, '\n')
	b = append(b, payloadHex...)
	canonical := sha256.Sum256(b)

	b = append(buf[:0], Algorithm+"\n"...)
	b = strconv.AppendInt(b, timestamp, 10)
	b = append(b, '\n')
	b = append(b, auth.Date...)
	b = append(b, '/')
	b = append(b, auth.Service...)
	b = append(b, "/"+Terminator+"\n"...)
	b = hex.AppendEncode(b, canonical[:])
	sig := hmacSHA256(signing[:], b)
	return subtle.ConstantTimeCompare(sig[:], want) == 1
}

func appendLowerTrimmed(b []byte, s string) []byte {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// signingKey derives, or finds in the cache, the signing key of a secret
// key for a date and service: it changes once a day.
func (v *Verifier) signingKey(secretKey, date, service string) [32]byte {
	k := derivedKeyID{secretKey, date, service}
	if cached, ok := v.keys.Load(k); ok {
		return cached.([32]byte)
	}
	signing := DeriveKeys(secretKey, date, service).Signing
	if v.keyCount.Add(1) > maxCachedKeys { // dates roll over: start afresh
		v.keys.Clear()
		v.keyCount.Store(1)
	}
	v.keys.Store(k, signing)
	return signing
}

// maxCachedKeys bounds the derived-key cache.
const maxCachedKeys = 1024

type derivedKeyID struct{ secretKey, date, service string }

// HeaderValue reads a header by its canonical key: Header.Get would
// canonicalise "X-TC-…" again, allocating, on every request.
func HeaderValue(r *http.Request, canonicalKey string) string {
	if v := r.Header[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}
