package scftest

import (
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	loc := cst()
	at := func(s string) time.Time {
		v, err := time.ParseInLocation(timeLayout, s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct{ expr, from, want string }{
		{"0 30 9 * * * *", "2026-05-01 08:00:00", "2026-05-01 09:30:00"},
		{"0 30 9 * * * *", "2026-05-01 09:30:00", "2026-05-02 09:30:00"}, // strictly after
		{"29 45 12 29 05 * 2023", "2023-01-01 00:00:00", "2023-05-29 12:45:29"},
		{"0 0 8 ? * 1-5 *", "2026-05-01 09:00:00", "2026-05-04 08:00:00"}, // Friday → Monday
		{"*/15 * * * * * *", "2026-05-01 09:00:01", "2026-05-01 09:00:15"},
		{"0 0 0 * * 7 *", "2026-05-01 00:00:00", "2026-05-03 00:00:00"}, // 7 is Sunday
		{"0 0 12 31 2,4 * *", "2026-01-01 00:00:00", "2031-02-31 12:00:00"},
	} {
		c, err := parseCron(tc.expr)
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		got, ok := c.next(at(tc.from))
		if tc.expr == "0 0 12 31 2,4 * *" {
			if ok {
				t.Errorf("%q: Feb/Apr 31st found %v", tc.expr, got)
			}
			continue
		}
		if !ok || !got.Equal(at(tc.want)) {
			t.Errorf("%q from %s: %v %v, want %s", tc.expr, tc.from, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "* * * * * *", "60 * * * * * *", "* * 24 * * * *", "* * * 0 * * *", "* * * * 13 * *",
		"* * * * * 8 *", "* * * * * * 1969", "a * * * * * *", "*/0 * * * * * *", "5-1 * * * * * *", "1-2-3 * * * * * *"} {
		if _, err := parseCron(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// FuzzParseCron: TriggerCronConfig comes from the network. Parsing never
// panics, and a parsed expression's next time matches and is later.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 30 9 * * * *", "29 45 12 29 05 * 2023", "*/7 1-5,9 * ? * 0-6/2 2026-2030", "1,2,3 * * * * * *"} {
		f.Add(s)
	}
	from := time.Date(2026, 5, 1, 8, 0, 0, 0, cst())
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := parseCron(expr)
		if err != nil {
			return
		}
		next, ok := c.next(from)
		if !ok {
			return
		}
		if !next.After(from) || next.After(from.AddDate(5, 0, 1)) {
			t.Fatalf("%q: next %v from %v", expr, next, from)
		}
		if !c.sec[next.Second()] || !c.min[next.Minute()] || !c.hour[next.Hour()] || !c.dayMatches(next) {
			t.Fatalf("%q: %v does not match", expr, next)
		}
	})
}

// FuzzParseRange: an alias rule's range expression comes from the
// network. Parsing never panics and a parsed range is ordered.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"[1,100)", "(0, 5]", "[-3.5,1e3]", "[1,", "[]", "[a,b]"} {
		f.Add(s, "50")
	}
	f.Fuzz(func(t *testing.T, expr, value string) {
		lo, hi, _, _, ok := parseRange(expr)
		if ok && !(lo <= hi) {
			t.Fatalf("%q: %v > %v", expr, lo, hi)
		}
		matchRule(wireVersionMatch{Method: "range", Expression: expr}, value)
	})
}
