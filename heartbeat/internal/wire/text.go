package wire

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxDuration bounds every configured duration, keeping deadline arithmetic
// far from overflow.
const MaxDuration = 30 * 24 * time.Hour

// DurationRule returns the rule d breaks as a configured duration, or "".
func DurationRule(d time.Duration) string {
	if d <= 0 || d > MaxDuration {
		return "must be positive and at most " + MaxDuration.String() + ", got " + d.String()
	}
	return ""
}

// TextRule returns the rule s breaks as peer-visible text (invalid UTF-8,
// control characters), or "".
func TextRule(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

// SessionIDRule returns the rule an application-chosen session id breaks,
// or "": 1 to maxLen bytes of text.
func SessionIDRule(id string, maxLen int) string {
	if id == "" || len(id) > maxLen {
		return "must be 1 to " + strconv.Itoa(maxLen) + " bytes long, got " + strconv.Itoa(len(id))
	}
	return TextRule(id)
}

// TruncateUTF8 cuts s to at most n bytes without splitting a UTF-8
// sequence.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// QuoteShort quotes peer-supplied text for a close reason, an error or a
// log line, keeping it short.
func QuoteShort(s string) string {
	return strconv.Quote(TruncateUTF8(s, 32))
}
