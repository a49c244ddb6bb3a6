// Package tc3 implements Tencent Cloud's TC3-HMAC-SHA256 request signature
// (API 3.0 "signature v3"), for clients ([Signer]) and for servers
// ([Verifier]).
//
// A signature covers six things: the HTTP method, the canonical URI ("/"),
// the query string, a list of headers (at least content-type and host), the
// SHA-256 of the body, and a scope of UTC date, service and "tc3_request".
// The signing key is derived from the secret key by an HMAC chain over the
// date, the service and "tc3_request", so it changes once a day per service;
// [Signer] caches it.
//
// The hot path allocates only the two strings it returns: hashing and HMAC
// work in stack buffers.
package tc3

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Algorithm is the name of the signature method, as it starts the
// Authorization header.
const Algorithm = "TC3-HMAC-SHA256"

// Terminator ends every credential scope.
const Terminator = "tc3_request"

// UnsignedPayload is sent in X-TC-Content-SHA256 by clients that do not hash
// the body; the literal string is then hashed in its place.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// Header is one signed header: a lower-case name and its value as it goes
// into the canonical request.
type Header struct {
	Name  string
	Value string
}

// Date returns the scope date (UTC, YYYY-MM-DD) of a Unix timestamp.
func Date(timestamp int64) string {
	return time.Unix(timestamp, 0).UTC().Format(time.DateOnly)
}

// Scope returns "<date>/<service>/tc3_request".
func Scope(date, service string) string {
	return date + "/" + service + "/" + Terminator
}

// HashPayload returns the lower-case hex SHA-256 of a request body.
func HashPayload(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// CanonicalRequest builds the canonical request text. Headers must already be
// in canonical form (lower-case names, sorted by name, values trimmed as they
// are to be signed).
func CanonicalRequest(method, uri, query string, headers []Header, payloadHash string) string {
	return string(appendCanonicalRequest(nil, method, uri, query, headers, payloadHash))
}

func appendCanonicalRequest(b []byte, method, uri, query string, headers []Header, payloadHash string) []byte {
	b = append(b, method...)
	b = append(b, '\n')
	b = append(b, uri...)
	b = append(b, '\n')
	b = append(b, query...)
	b = append(b, '\n')
	for _, h := range headers {
		b = append(b, h.Name...)
		b = append(b, ':')
		b = append(b, h.Value...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = appendSignedHeaders(b, headers)
	b = append(b, '\n')
	b = append(b, payloadHash...)
	return b
}

func appendSignedHeaders(b []byte, headers []Header) []byte {
	for i, h := range headers {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, h.Name...)
	}
	return b
}

// SignedHeaders returns the ";"-joined header names.
func SignedHeaders(headers []Header) string {
	return string(appendSignedHeaders(nil, headers))
}

// StringToSign builds the string that is signed with the derived key.
func StringToSign(timestamp int64, scope, hashedCanonicalRequest string) string {
	return string(appendStringToSign(nil, timestamp, scope, hashedCanonicalRequest))
}

func appendStringToSign(b []byte, timestamp int64, scope, hashedCanonicalRequest string) []byte {
	b = append(b, Algorithm...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, timestamp, 10)
	b = append(b, '\n')
	b = append(b, scope...)
	b = append(b, '\n')
	b = append(b, hashedCanonicalRequest...)
	return b
}

// DerivedKeys holds the three steps of the signing-key derivation.
type DerivedKeys struct {
	Date, Service, Signing [32]byte
}

// DeriveKeys runs the key chain: kDate = HMAC("TC3"+secretKey, date),
// kService = HMAC(kDate, service), kSigning = HMAC(kService, "tc3_request").
func DeriveKeys(secretKey, date, service string) DerivedKeys {
	var k DerivedKeys
	var key [128]byte
	kb := append(append(key[:0], "TC3"...), secretKey...)
	k.Date = hmacSHA256(kb, []byte(date))
	k.Service = hmacSHA256(k.Date[:], []byte(service))
	k.Signing = hmacSHA256(k.Service[:], []byte(Terminator))
	return k
}

// Signature returns the lower-case hex HMAC-SHA256 of stringToSign under the
// signing key.
func Signature(signingKey [32]byte, stringToSign string) string {
	sum := hmacSHA256(signingKey[:], []byte(stringToSign))
	return hex.EncodeToString(sum[:])
}

// Authorization formats the Authorization header value.
func Authorization(secretID, scope, signedHeaders, signature string) string {
	return Algorithm + " Credential=" + secretID + "/" + scope + ", SignedHeaders=" + signedHeaders + ", Signature=" + signature
}

const blockSize = 64 // SHA-256 block size

// hmacSHA256 computes HMAC-SHA256 (RFC 2104) without allocating when the
// message fits the stack buffer, which every signing input does.
func hmacSHA256(key, msg []byte) [32]byte {
	var k [blockSize]byte
	if len(key) > blockSize {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	var stack [blockSize + 256]byte
	inner := stack[:0]
	if len(msg) > len(stack)-blockSize {
		inner = make([]byte, 0, blockSize+len(msg))
	}
	for _, c := range k {
		inner = append(inner, c^0x36)
	}
	inner = append(inner, msg...)
	innerSum := sha256.Sum256(inner)

	var outer [blockSize + sha256.Size]byte
	for i, c := range k {
		outer[i] = c ^ 0x5c
	}
	copy(outer[blockSize:], innerSum[:])
	return sha256.Sum256(outer[:])
}
