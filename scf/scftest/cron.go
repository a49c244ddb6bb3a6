package scftest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronExpr is a 7-field cron expression of scheduled provisioning:
// second minute hour day month weekday year, in China Standard Time. Each
// field is *, ? (any), a number, a range a-b, a list a,b,c or a step */n,
// a/n or a-b/n. Weekdays are 0–6 from Sunday (7 is Sunday too). When both
// day and weekday are restricted, both must match.
type cronExpr struct {
	sec, min, hour, day, month, dow []bool
	year                            []bool // index: year − 1970
	dayAny, dowAny                  bool
}

const cronFirstYear, cronLastYear = 1970, 2199

func parseCron(expr string) (*cronExpr, error) {
	f := strings.Fields(expr)
	if len(f) != 7 {
		return nil, fmt.Errorf("%q must have 7 space-separated fields (second minute hour day month weekday year)", expr)
	}
	c := &cronExpr{}
	var err error
	specs := []struct {
		name     string
		field    string
		lo, hi   int
		dst      *[]bool
		anyFlag  *bool
		sundayIs bool
	}{
		{"second", f[0], 0, 59, &c.sec, nil, false},
		{"minute", f[1], 0, 59, &c.min, nil, false},
		{"hour", f[2], 0, 23, &c.hour, nil, false},
		{"day", f[3], 1, 31, &c.day, &c.dayAny, false},
		{"month", f[4], 1, 12, &c.month, nil, false},
		{"weekday", f[5], 0, 7, &c.dow, &c.dowAny, true},
		{"year", f[6], cronFirstYear, cronLastYear, &c.year, nil, false},
	}
	for _, sp := range specs {
		var set []bool
		var isAny bool
		if set, isAny, err = parseCronField(sp.field, sp.lo, sp.hi); err != nil {
			return nil, fmt.Errorf("%s field %q: %w", sp.name, sp.field, err)
		}
		if sp.sundayIs && set[7-sp.lo] {
			set[0] = true
		}
		if sp.lo > 0 && sp.name != "year" {
			set = append(make([]bool, sp.lo), set...) // index by value
		}
		*sp.dst = set
		if sp.anyFlag != nil {
			*sp.anyFlag = isAny
		}
	}
	return c, nil
}

// parseCronField returns the values of [lo,hi] the field allows (indexed
// from lo) and whether it is unrestricted.
func parseCronField(field string, lo, hi int) ([]bool, bool, error) {
	set := make([]bool, hi-lo+1)
	if field == "*" || field == "?" {
		for i := range set {
			set[i] = true
		}
		return set, true, nil
	}
	for _, part := range strings.Split(field, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return nil, false, fmt.Errorf("step %q must be a positive number", stepText)
			}
			step = n
		}
		from, to := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err1, err2 error
			from, err1 = strconv.Atoi(a)
			to, err2 = strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return nil, false, fmt.Errorf("range %q must be two numbers", rng)
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				return nil, false, fmt.Errorf("%q is not a number", rng)
			}
			from = n
			if !hasStep {
				to = n
			}
		}
		if from < lo || to > hi || from > to {
			return nil, false, fmt.Errorf("%d-%d is outside %d-%d", from, to, lo, hi)
		}
		for v := from; v <= to; v += step {
			set[v-lo] = true
		}
	}
	return set, false, nil
}

// next returns the first time strictly after t that the expression
// matches, within five years, in China Standard Time.
func (c *cronExpr) next(t time.Time) (time.Time, bool) {
	loc := cst()
	t = t.In(loc).Truncate(time.Second).Add(time.Second)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for i := 0; i < 5*366; i++ {
		d := day.AddDate(0, 0, i)
		if !c.dayMatches(d) {
			continue
		}
		h0, m0, s0 := 0, 0, 0
		if i == 0 {
			h0, m0, s0 = t.Hour(), t.Minute(), t.Second()
		}
		for h := h0; h < 24; h++ {
			if !c.hour[h] {
				continue
			}
			mStart := 0
			if h == h0 {
				mStart = m0
			}
			for m := mStart; m < 60; m++ {
				if !c.min[m] {
					continue
				}
				sStart := 0
				if h == h0 && m == m0 {
					sStart = s0
				}
				for s := sStart; s < 60; s++ {
					if c.sec[s] {
						return time.Date(d.Year(), d.Month(), d.Day(), h, m, s, 0, loc), true
					}
				}
			}
		}
	}
	return time.Time{}, false
}

func (c *cronExpr) dayMatches(d time.Time) bool {
	y := d.Year() - cronFirstYear
	if y < 0 || y >= len(c.year) || !c.year[y] || !c.month[int(d.Month())] {
		return false
	}
	dayOK, dowOK := c.day[d.Day()], c.dow[int(d.Weekday())]
	switch {
	case c.dayAny && c.dowAny:
		return true
	case c.dayAny:
		return dowOK
	case c.dowAny:
		return dayOK
	}
	return dayOK && dowOK
}
