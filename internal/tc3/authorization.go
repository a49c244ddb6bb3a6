package tc3

import (
	"strconv"
	"strings"
)

// ParsedAuthorization is the content of a TC3 Authorization header.
type ParsedAuthorization struct {
	SecretID      string
	Date          string // YYYY-MM-DD
	Service       string
	SignedHeaders []string // lower-case, in the declared order
	Signature     string   // 64 lower-case hex digits
}

// String formats the header value back; Signature is included, so do not log
// it.
func (a ParsedAuthorization) String() string {
	return Authorization(a.SecretID, Scope(a.Date, a.Service), strings.Join(a.SignedHeaders, ";"), a.Signature)
}

// ParseAuthorization parses
//
//	TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=<a;b>, Signature=<hex>
//
// Spaces after the commas are optional. A malformed header is an *Error with
// code AuthFailure.InvalidAuthorization that names what is wrong.
func ParseAuthorization(s string) (ParsedAuthorization, error) {
	var a ParsedAuthorization
	rest, ok := strings.CutPrefix(s, Algorithm+" ")
	if !ok {
		return a, invalidAuth("it must start with " + Algorithm + " and a space")
	}
	var haveCred, haveHeaders, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			return a, invalidAuth("each part must be Key=Value, got " + quoteShort(part))
		}
		switch key {
		case "Credential":
			if haveCred {
				return a, invalidAuth("Credential appears twice")
			}
			haveCred = true
			id, rest, ok1 := strings.Cut(value, "/")
			date, rest, ok2 := strings.Cut(rest, "/")
			service, term, ok3 := strings.Cut(rest, "/")
			if !ok1 || !ok2 || !ok3 || term != Terminator {
				return a, invalidAuth("Credential must be <SecretId>/<date>/<service>/tc3_request")
			}
			if id == "" || service == "" {
				return a, invalidAuth("Credential has an empty SecretId or service")
			}
			if !isDate(date) {
				return a, invalidAuth("the Credential date must be YYYY-MM-DD")
			}
			a.SecretID, a.Date, a.Service = id, date, service
		case "SignedHeaders":
			if haveHeaders {
				return a, invalidAuth("SignedHeaders appears twice")
			}
			haveHeaders = true
			headers, err := parseSignedHeaders(value)
			if err != nil {
				return a, err
			}
			a.SignedHeaders = headers
		case "Signature":
			if haveSig {
				return a, invalidAuth("Signature appears twice")
			}
			haveSig = true
			if !isLowerHex(value, 64) {
				return a, invalidAuth("Signature must be 64 lower-case hex digits")
			}
			a.Signature = value
		default:
			return a, invalidAuth("unknown part " + quoteShort(key))
		}
	}
	switch {
	case !haveCred:
		return a, invalidAuth("Credential is missing")
	case !haveHeaders:
		return a, invalidAuth("SignedHeaders is missing")
	case !haveSig:
		return a, invalidAuth("Signature is missing")
	}
	return a, nil
}

// Limits of SignedHeaders. The official SDKs sign "content-type;host"; a
// client that also signs a few X-TC-* headers stays far below both. They
// bound what one request makes the verifier hash: every name is hashed
// with its value once per candidate form, so a long list would multiply
// the request's size.
const (
	// MaxSignedHeaders is how many names SignedHeaders may list.
	MaxSignedHeaders = 32
	// MaxSignedHeadersBytes is the longest SignedHeaders value.
	MaxSignedHeadersBytes = 1024
)

// parseSignedHeaders splits and checks a SignedHeaders value: lower-case
// names joined by ';', at most MaxSignedHeaders of them in at most
// MaxSignedHeadersBytes, none twice, content-type and host among them. The
// length is checked before anything is split.
func parseSignedHeaders(value string) ([]string, error) {
	if len(value) > MaxSignedHeadersBytes {
		return nil, invalidAuth("SignedHeaders is longer than " + strconv.Itoa(MaxSignedHeadersBytes) + " bytes")
	}
	if n := strings.Count(value, ";") + 1; n > MaxSignedHeaders {
		return nil, invalidAuth("SignedHeaders lists more than " + strconv.Itoa(MaxSignedHeaders) + " headers")
	}
	headers := strings.Split(value, ";")
	var hasHost, hasType bool
	for i, h := range headers {
		if h == "" || !isLowerToken(h) {
			return nil, invalidAuth("SignedHeaders must be lower-case header names joined by ';'")
		}
		for _, prev := range headers[:i] { // at most 32 names: quadratic is cheap
			if prev == h {
				return nil, invalidAuth("SignedHeaders lists " + quoteShort(h) + " twice")
			}
		}
		hasHost = hasHost || h == "host"
		hasType = hasType || h == "content-type"
	}
	if !hasHost || !hasType {
		return nil, invalidAuth("SignedHeaders must include content-type and host")
	}
	return headers, nil
}

// isLowerToken reports whether s is an HTTP header name (an RFC 9110
// token) with no upper-case letter.
func isLowerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func invalidAuth(why string) error {
	return &Error{CodeInvalidAuthorization, "the Authorization header is malformed: " + why}
}

func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return "\"" + strings.ToValidUTF8(s, "?") + "\""
}

func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for i, c := range []byte(s) {
		if i != 4 && i != 7 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
