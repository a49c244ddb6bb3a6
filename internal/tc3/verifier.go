package tc3

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"net"
	"net/http"
	"net/textproto"
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
	writers  sync.Pool // *canonicalWriter: its buffer and hash state would escape to the heap on every request
}

// Verify checks the signature of r, whose body has been read into body: it
// is [Verifier.Authenticate] and then [Pending.Check]. A failure is an
// *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (Identity, error) {
	p, err := v.Authenticate(r)
	if err != nil {
		return Identity{}, err
	}
	return p.Check(body)
}

// Pending is a request whose Authorization header, timestamp, SecretId and
// token have been checked: what is left is the signature, which covers the
// body. It holds the request's signed header values, so the request's
// headers may be dropped once it is made.
type Pending struct {
	v         *Verifier           // for its pool of writers; nil allocates one
	auth      ParsedAuthorization // SignedHeaders nil when Authenticate made it: see signedNames
	names     [MaxSignedHeaders]string
	signed    int // how many of names
	method    string
	query     string
	hosts     [2]string // as sent, and without its port ("" when it has none)
	values    [MaxSignedHeaders]string
	unsigned  bool // X-TC-Content-SHA256: UNSIGNED-PAYLOAD
	timestamp int64
	signing   [32]byte
	want      [32]byte
}

// Authenticate checks everything about r that does not need its body, in
// this order: the Authorization header (at most MaxSignedHeaders names,
// none twice, each of a header the request carries), X-TC-Timestamp within
// MaxSkew of the server's clock, the SecretId, the X-TC-Token and the
// credential scope date. A server calls it before it reads the body, so
// that an anonymous client cannot make it read one; [Pending.Check] then
// checks the signature. A failure is an *Error.
func (v *Verifier) Authenticate(r *http.Request) (Pending, error) {
	var p Pending
	raw := HeaderValue(r, "Authorization")
	if raw == "" {
		return p, &Error{CodeInvalidAuthorization, "the Authorization header is missing"}
	}
	auth, signed, err := parseAuthorization(raw, &p.names)
	if err != nil {
		return p, err
	}
	for i, name := range p.names[:signed] {
		if name == "host" {
			continue
		}
		values, ok := r.Header[canonicalKey(name)]
		if !ok {
			return p, invalidAuth("SignedHeaders names " + quoteShort(name) + ", which the request does not carry")
		}
		if len(values) > 0 {
			p.values[i] = values[0]
		}
	}
	ts := HeaderValue(r, "X-Tc-Timestamp")
	if ts == "" {
		return p, &Error{CodeMissingParameter, "the X-TC-Timestamp header is missing"}
	}
	timestamp, perr := strconv.ParseInt(ts, 10, 64)
	if perr != nil {
		return p, &Error{CodeInvalidParameter, "X-TC-Timestamp must be a Unix time in seconds"}
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	// Whole seconds both ways: the timestamp has no fraction, so the
	// server's clock is cut to its second too. 300 s either way is in,
	// 301 s is out, whatever the sub-second part of the server's time.
	const maxSkew = int64(MaxSkew / time.Second)
	if sec := now().Unix(); timestamp < sec-maxSkew || timestamp > sec+maxSkew {
		return p, &Error{CodeSignatureExpire, "Timestamp and server time cannot differ by more than five minutes"}
	}
	secret, ok := v.Lookup(auth.SecretID)
	if !ok {
		return p, &Error{CodeSecretIDNotFound, "the SecretId is not found: it may be deleted, disabled or mistyped"}
	}
	token := HeaderValue(r, "X-Tc-Token")
	if secret.Token != "" || token != "" {
		if subtle.ConstantTimeCompare([]byte(token), []byte(secret.Token)) != 1 {
			return p, &Error{CodeTokenFailure, "the X-TC-Token does not belong to this SecretId"}
		}
	}
	var date [10]byte
	if string(appendDate(date[:0], timestamp)) != auth.Date {
		return p, &Error{CodeSignatureFailure, "the credential scope date is not the UTC date of X-TC-Timestamp"}
	}
	if _, err := hex.Decode(p.want[:], []byte(auth.Signature)); err != nil {
		return p, &Error{CodeInvalidAuthorization, "the Authorization header is malformed: Signature is not hex"}
	}
	p.v, p.auth, p.signed = v, auth, signed
	p.method, p.query = r.Method, r.URL.RawQuery
	p.hosts[0] = r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil && h != "" {
		p.hosts[1] = h
	}
	p.unsigned = HeaderValue(r, "X-Tc-Content-Sha256") == UnsignedPayload
	p.timestamp = timestamp
	p.signing = v.signingKey(secret.Key, auth.Date, auth.Service)
	return p, nil
}

// Check verifies the signature over body, the request's whole body. It
// tries the forms a legitimate client may have signed: values lower-cased
// and trimmed (the documented rule) or as sent (what the Go SDK does), and
// Host as sent or without its port (what the Node SDK signs). The
// documented form with Host as sent comes first. Each form's canonical
// request is written into SHA-256 as a stream, never built whole, and the
// signatures are compared in constant time. A failure is an *Error.
func (p *Pending) Check(body []byte) (Identity, error) {
	var w *canonicalWriter
	if p.v != nil {
		w, _ = p.v.writers.Get().(*canonicalWriter)
	}
	if w == nil {
		w = &canonicalWriter{h: sha256.New()}
	}
	if p.v != nil {
		defer p.v.writers.Put(w)
	}
	var payload [32]byte
	switch {
	case p.unsigned:
		payload = sha256.Sum256([]byte(UnsignedPayload))
	case len(body) <= hashChunk:
		payload = sha256.Sum256(body)
	default:
		// In chunks: the hash's assembly cannot be preempted, and a
		// 10 MB body in one call would hold a P for tens of milliseconds
		// while small requests wait for it.
		w.h.Reset()
		for len(body) > 0 {
			n := min(len(body), hashChunk)
			w.h.Write(body[:n])
			body = body[n:]
		}
		w.h.Sum(w.out[:0])
		payload = w.out
	}
	var payloadHex [64]byte
	hex.Encode(payloadHex[:], payload[:])
	for _, host := range p.hosts {
		if host == "" {
			continue
		}
		for _, documented := range [2]bool{true, false} {
			if p.matches(w, host, documented, payloadHex[:]) {
				return Identity{SecretID: p.auth.SecretID, Service: p.auth.Service, Date: p.auth.Date}, nil
			}
		}
	}
	return Identity{}, &Error{CodeSignatureFailure, "the request signature does not match: check the SecretKey and the signing steps"}
}

// matches hashes one canonical form, signs it and compares the signature
// with the one sent, in constant time.
func (p *Pending) matches(w *canonicalWriter, host string, documented bool, payloadHex []byte) bool {
	canonical := p.canonicalSum(w, host, documented, payloadHex)
	var buf [256]byte
	b := append(buf[:0], Algorithm+"\n"...)
	b = strconv.AppendInt(b, p.timestamp, 10)
	b = append(b, '\n')
	b = append(b, p.auth.Date...)
	b = append(b, '/')
	b = append(b, p.auth.Service...)
	b = append(b, "/"+Terminator+"\n"...)
	b = hex.AppendEncode(b, canonical[:])
	sig := hmacSHA256(p.signing[:], b)
	return subtle.ConstantTimeCompare(sig[:], p.want[:]) == 1
}

// signedNames returns the SignedHeaders names, in their declared order:
// Authenticate keeps them in names, not in a slice of their own.
func (p *Pending) signedNames() []string {
	if p.auth.SignedHeaders != nil {
		return p.auth.SignedHeaders
	}
	return p.names[:p.signed]
}

// canonicalSum is the SHA-256 of one canonical form of the request,
// written into the hash piece by piece.
func (p *Pending) canonicalSum(w *canonicalWriter, host string, documented bool, payloadHex []byte) [32]byte {
	w.reset()
	w.writeString(p.method)
	w.writeString("\n/\n")
	w.writeString(p.query)
	w.writeByte('\n')
	for i, name := range p.signedNames() {
		value := p.values[i]
		if name == "host" {
			value = host
		}
		w.writeString(name)
		w.writeByte(':')
		if documented {
			w.writeLowerTrimmed(value)
		} else {
			w.writeString(value)
		}
		w.writeByte('\n')
	}
	w.writeByte('\n')
	for i, name := range p.signedNames() {
		if i > 0 {
			w.writeByte(';')
		}
		w.writeString(name)
	}
	w.writeByte('\n')
	w.write(payloadHex)
	return w.sum()
}

// hashChunk is how much of a body is hashed per call.
const hashChunk = 64 << 10

// canonicalWriter feeds a canonical request into a hash through a small
// buffer, lower-casing where asked: memory stays at the buffer's size
// whatever the length of the request.
type canonicalWriter struct {
	h   hash.Hash
	buf [512]byte
	n   int
	out [sha256.Size]byte
}

func (w *canonicalWriter) reset() { w.h.Reset(); w.n = 0 }

func (w *canonicalWriter) flush() {
	w.h.Write(w.buf[:w.n])
	w.n = 0
}

func (w *canonicalWriter) writeByte(c byte) {
	if w.n == len(w.buf) {
		w.flush()
	}
	w.buf[w.n] = c
	w.n++
}

func (w *canonicalWriter) writeString(s string) {
	for len(s) > 0 {
		if w.n == len(w.buf) {
			w.flush()
		}
		k := copy(w.buf[w.n:], s)
		w.n += k
		s = s[k:]
	}
}

func (w *canonicalWriter) write(b []byte) {
	for len(b) > 0 {
		if w.n == len(w.buf) {
			w.flush()
		}
		k := copy(w.buf[w.n:], b)
		w.n += k
		b = b[k:]
	}
}

// writeLowerTrimmed writes s without surrounding spaces, ASCII upper case
// lowered (the documented canonical value).
func (w *canonicalWriter) writeLowerTrimmed(s string) {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		w.writeByte(c)
	}
}

func (w *canonicalWriter) sum() [32]byte {
	w.flush()
	w.h.Sum(w.out[:0])
	return w.out
}

// canonicalKey is the http.Header key of a lower-case header name, without
// allocating for the names clients sign.
func canonicalKey(name string) string {
	switch name {
	case "content-type":
		return "Content-Type"
	case "x-tc-action":
		return "X-Tc-Action"
	case "x-tc-timestamp":
		return "X-Tc-Timestamp"
	case "x-tc-version":
		return "X-Tc-Version"
	case "x-tc-region":
		return "X-Tc-Region"
	case "x-tc-token":
		return "X-Tc-Token"
	case "x-tc-content-sha256":
		return "X-Tc-Content-Sha256"
	}
	return textproto.CanonicalMIMEHeaderKey(name)
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
