package tc3

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes the verifier returns; they are Tencent Cloud's own.
const (
	CodeInvalidAuthorization = "AuthFailure.InvalidAuthorization"
	CodeSignatureExpire      = "AuthFailure.SignatureExpire"
	CodeSignatureFailure     = "AuthFailure.SignatureFailure"
	CodeSecretIDNotFound     = "AuthFailure.SecretIdNotFound"
	CodeTokenFailure         = "AuthFailure.TokenFailure"
	CodeMissingParameter     = "MissingParameter"
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
	ts := r.Header.Get("X-TC-Timestamp")
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
	token := r.Header.Get("X-TC-Token")
	if secret.Token != "" || token != "" {
		if subtle.ConstantTimeCompare([]byte(token), []byte(secret.Token)) != 1 {
			return Identity{}, &Error{CodeTokenFailure, "the X-TC-Token does not belong to this SecretId"}
		}
	}
	if auth.Date != Date(timestamp) {
		return Identity{}, &Error{CodeSignatureFailure, "the credential scope date is not the UTC date of X-TC-Timestamp"}
	}

	payloadHash := ""
	if r.Header.Get("X-TC-Content-SHA256") == UnsignedPayload {
		payloadHash = HashPayload([]byte(UnsignedPayload))
	} else {
		payloadHash = HashPayload(body)
	}
	signing := DeriveKeys(secret.Key, auth.Date, auth.Service).Signing
	scope := Scope(auth.Date, auth.Service)
	for _, headers := range candidateHeaders(r, auth.SignedHeaders) {
		canonical := CanonicalRequest(r.Method, "/", r.URL.RawQuery, headers, payloadHash)
		want := Signature(signing, StringToSign(timestamp, scope, HashPayload([]byte(canonical))))
		if subtle.ConstantTimeCompare([]byte(want), []byte(auth.Signature)) == 1 {
			return Identity{SecretID: auth.SecretID, Service: auth.Service, Date: auth.Date}, nil
		}
	}
	return Identity{}, &Error{CodeSignatureFailure, "the request signature does not match: check the SecretKey and the signing steps"}
}

// candidateHeaders lists the canonical header sets a legitimate client may
// have signed: values lower-cased and trimmed (the documented rule) or as
// sent (what the Go SDK does), and Host with or without its port (what the
// Node SDK does). The documented form comes first.
func candidateHeaders(r *http.Request, names []string) [][]Header {
	hosts := []string{r.Host}
	if h, _, err := net.SplitHostPort(r.Host); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	var sets [][]Header
	seen := make(map[string]bool)
	for _, host := range hosts {
		for _, documented := range []bool{true, false} {
			hs := make([]Header, len(names))
			var key strings.Builder
			for i, name := range names {
				value := r.Header.Get(name)
				if name == "host" {
					value = host
				}
				if documented {
					value = strings.ToLower(strings.TrimSpace(value))
				}
				hs[i] = Header{Name: name, Value: value}
				key.WriteString(value)
				key.WriteByte('\n')
			}
			if !seen[key.String()] {
				seen[key.String()] = true
				sets = append(sets, hs)
			}
		}
	}
	return sets
}
