package tc3

import (
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
			a.SignedHeaders = strings.Split(value, ";")
			var hasHost, hasType bool
			for _, h := range a.SignedHeaders {
				if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, " \t:") {
					return a, invalidAuth("SignedHeaders must be lower-case header names joined by ';'")
				}
				hasHost = hasHost || h == "host"
				hasType = hasType || h == "content-type"
			}
			if !hasHost || !hasType {
				return a, invalidAuth("SignedHeaders must include content-type and host")
			}
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
