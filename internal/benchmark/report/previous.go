package main

import (
	"strings"
)

// previous is the report a run replaces, for the parts the run did not
// measure (.ci/bench's PARTS): those are carried over as they were,
// under a line saying so.
type previous struct {
	sections map[string]string // "## Title" → the section's lines, title included
	targets  []string          // the rows of its Targets table
	names    map[string]string // a target row's first cell → the row
}

// parsePrevious splits a report into its "## " sections and the rows of
// its Targets table.
func parsePrevious(doc string) *previous {
	p := &previous{sections: map[string]string{}, names: map[string]string{}}
	var title string
	var b strings.Builder
	flush := func() {
		if title != "" {
			p.sections[title] = strings.TrimRight(b.String(), "\n")
		}
		b.Reset()
	}
	for line := range strings.SplitSeq(doc, "\n") {
		if strings.HasPrefix(line, "## ") {
			flush()
			title = line
		}
		if title == "## Targets" && strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| target |") {
			p.targets = append(p.targets, line)
			if name, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |"); ok {
				p.names[name] = line
			}
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	flush()
	return p
}

// carry writes a section of the previous report as it was, with a line
// saying it was not measured again; it reports whether there was one.
func (r *report) carry(prev *previous, title, why string) bool {
	if prev == nil {
		return false
	}
	sec, ok := prev.sections[title]
	if !ok {
		return false
	}
	head, body, _ := strings.Cut(sec, "\n")
	// A section carried over before says so already: say it once.
	body = strings.TrimLeft(body, "\n")
	if line, rest, ok := strings.Cut(body, "\n"); ok && strings.HasPrefix(line, "*Not measured by this run") {
		body = rest
	}
	r.p("%s", head)
	r.p("")
	r.p("*Not measured by this run (%s): carried over from the previous BENCHMARKS.md, with its targets.*", why)
	r.p("%s", strings.TrimRight(body, "\n"))
	r.p("")
	return true
}
