package tc3

import (
	"slices"
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
	var names [MaxSignedHeaders]string
	a, n, err := parseAuthorization(s, &names)
	if err != nil {
		return a, err
	}
	a.SignedHeaders = slices.Clone(names[:n])
	return a, nil
}

// parseAuthorization is ParseAuthorization with the SignedHeaders names
// put in names (the first n of it) rather than in a new slice, which the
// verifier would make on every request: a.SignedHeaders is nil.
func parseAuthorization(s string, names *[MaxSignedHeaders]string) (a ParsedAuthorization, n int, err error) {
	rest, ok := strings.CutPrefix(s, Algorithm+" ")
	if !ok {
		return a, 0, invalidAuth("it must start with " + Algorithm + " and a space")
	}
	var haveCred, haveHeaders, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			return a, 0, invalidAuth("each part must be Key=Value, got " + quoteShort(part))
		}
		switch key {
		case "Credential":
			if haveCred {
				return a, 0, invalidAuth("Credential appears twice")
			}
			haveCred = true
			id, rest, ok1 := strings.Cut(value, "/")
			date, rest, ok2 := strings.Cut(rest, "/")
			service, term, ok3 := strings.Cut(rest, "/")
			if !ok1 || !ok2 || !ok3 || term != Terminator {
				return a, 0, invalidAuth("Credential must be <SecretId>/<date>/<service>/tc3_request")
			}
			if id == "" || service == "" {
				return a, 0, invalidAuth("Credential has an empty SecretId or service")
			}
			if !isDate(date) {
				return a, 0, invalidAuth("the Credential date must be YYYY-MM-DD")
			}
			a.SecretID, a.Date, a.Service = id, date, service
		case "SignedHeaders":
			if haveHeaders {
				return a, 0, invalidAuth("SignedHeaders appears twice")
			}
			haveHeaders = true
			if n, err = parseSignedHeaders(value, names); err != nil {
				return a, 0, err
			}
		case "Signature":
			if haveSig {
				return a, 0, invalidAuth("Signature appears twice")
			}
			haveSig = true
			if !isLowerHex(value, 64) {
				return a, 0, invalidAuth("Signature must be 64 lower-case hex digits")
			}
			a.Signature = value
		default:
			return a, 0, invalidAuth("unknown part " + quoteShort(key))
		}
	}
	switch {
	case !haveCred:
		return a, 0, invalidAuth("Credential is missing")
	case !haveHeaders:
		return a, 0, invalidAuth("SignedHeaders is missing")
	case !haveSig:
		return a, 0, invalidAuth("Signature is missing")
	}
	return a, n, nil
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

// parseSignedHeaders splits and checks a SignedHeaders value into names
// and returns how many there are: lower-case names joined by ';', at most
// MaxSignedHeaders of them in at most MaxSignedHeadersBytes, none twice,
// content-type and host among them. The length is checked before anything
// is split.
func parseSignedHeaders(value string, names *[MaxSignedHeaders]string) (int, error) {
	if len(value) > MaxSignedHeadersBytes {
		return 0, invalidAuth("SignedHeaders is longer than " + strconv.Itoa(MaxSignedHeadersBytes) + " bytes")
	}
	count := strings.Count(value, ";") + 1
	if count > MaxSignedHeaders {
		return 0, invalidAuth("SignedHeaders lists more than " + strconv.Itoa(MaxSignedHeaders) + " headers")
	}
	rest := value
	for i := range count {
		names[i], rest, _ = strings.Cut(rest, ";")
	}
	headers := names[:count]
	var hasHost, hasType bool
	for i, h := range headers {
		if h == "" || !isLowerToken(h) {
			return 0, invalidAuth("SignedHeaders must be lower-case header names joined by ';'")
		}
		for _, prev := range headers[:i] { // at most 32 names: quadratic is cheap
			if prev == h {
				return 0, invalidAuth("SignedHeaders lists " + quoteShort(h) + " twice")
			}
		}
		hasHost = hasHost || h == "host"
		hasType = hasType || h == "content-type"
	}
	if !hasHost || !hasType {
		return 0, invalidAuth("SignedHeaders must include content-type and host")
	}
	return count, nil
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
