package tc3

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"time"
)

// Signer signs POST requests the way the official Go SDK does: signed headers
// "content-type;host", canonical URI "/", empty query. It caches the derived
// signing key for the current date and secret key. A Signer is safe for
// concurrent use; the zero value is not usable, set Service.
type Signer struct {
	Service string

	key atomic.Pointer[cachedKey]
}

type cachedKey struct {
	secretKey string
	date      [10]byte
	signing   [32]byte
}

// NewSigner returns a signer for a service ("car", "scf").
func NewSigner(service string) *Signer { return &Signer{Service: service} }

// Sign returns the Authorization header value for a POST of payload with the
// given Content-Type and Host, at the Unix timestamp. The Host must be the
// value sent on the wire (with its port, if the URL has one).
func (s *Signer) Sign(secretID, secretKey string, timestamp int64, contentType, host string, payload []byte) string {
	var out [256]byte
	return string(s.AppendSign(out[:0], secretID, secretKey, timestamp, contentType, host, payload))
}

// AppendSign appends what Sign returns to dst, so that a caller can build
// the header value in a buffer of its own (with other values beside it, in
// one allocation).
func (s *Signer) AppendSign(dst []byte, secretID, secretKey string, timestamp int64, contentType, host string, payload []byte) []byte {
	var date [10]byte
	appendDate(date[:0], timestamp)
	signing := s.signingKey(secretKey, date)

	var buf [512]byte
	payloadSum := sha256.Sum256(payload)
	b := append(buf[:0], "POST\n/\n\ncontent-type:"...)
	b = append(b, contentType...)
	b = append(b, "\nhost:"...)
	b = append(b, host...)
	b = append(b, "\n\ncontent-type;host\n"...)
	b = hex.AppendEncode(b, payloadSum[:])
	canonicalSum := sha256.Sum256(b)

	b = append(buf[:0], Algorithm...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, timestamp, 10)
	b = append(b, '\n')
	scopeStart := len(b)
	b = append(b, date[:]...)
	b = append(b, '/')
	b = append(b, s.Service...)
	b = append(b, "/"+Terminator+"\n"...)
	scopeEnd := len(b) - 1
	b = hex.AppendEncode(b, canonicalSum[:])
	sig := hmacSHA256(signing[:], b)

	a := append(dst, Algorithm+" Credential="...)
	a = append(a, secretID...)
	a = append(a, '/')
	a = append(a, b[scopeStart:scopeEnd]...)
	a = append(a, ", SignedHeaders=content-type;host, Signature="...)
	return hex.AppendEncode(a, sig[:])
}

func (s *Signer) signingKey(secretKey string, date [10]byte) [32]byte {
	if k := s.key.Load(); k != nil && k.date == date && k.secretKey == secretKey {
		return k.signing
	}
	k := &cachedKey{secretKey: secretKey, date: date}
	k.signing = DeriveKeys(secretKey, string(date[:]), s.Service).Signing
	s.key.Store(k)
	return k.signing
}

// appendDate appends the UTC YYYY-MM-DD of a Unix timestamp without
// allocating.
func appendDate(b []byte, timestamp int64) []byte {
	y, m, d := time.Unix(timestamp, 0).UTC().Date()
	b = appendPadded(b, y, 4)
	b = append(b, '-')
	b = appendPadded(b, int(m), 2)
	b = append(b, '-')
	return appendPadded(b, d, 2)
}

func appendPadded(b []byte, v, width int) []byte {
	var digits [8]byte
	i := len(digits)
	for ; v > 0 || i > len(digits)-width; v /= 10 {
		i--
		digits[i] = byte('0' + v%10)
	}
	return append(b, digits[i:]...)
}
