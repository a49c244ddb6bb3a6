// Package facade writes what the public packages car and scf share from one
// template (shared.go.tmpl) into each of them as shared.go, so that both
// show every option, with its doc, in their own godoc while the code is
// written once. Run go generate ./car ./scf after editing the template; the
// package's test fails while a shared.go differs from what the template
// makes.
package facade

import (
	"bytes"
	_ "embed"
	"fmt"
	"go/format"
	"text/template"
)

//go:embed shared.go.tmpl
var source string

// Service is what differs between the two facades.
type Service struct {
	Pkg          string // package name: "car"
	Name         string // in prose: "CAR"
	Other        string // the other facade's package
	Action       string // an action, for examples
	NotFoundCode string // a ResourceNotFound code constant of the package
	RegionDoc    string // the end of WithRegion's first sentence
}

// Services returns the facades to write.
func Services() []Service {
	return []Service{
		{Pkg: "car", Name: "CAR", Other: "scf", Action: "ApplyConcurrent", NotFoundCode: "CodeNoIdle",
			RegionDoc: "; CAR needs none."},
		{Pkg: "scf", Name: "SCF", Other: "car", Action: "Invoke", NotFoundCode: "CodeFunctionNotFound",
			RegionDoc: `, e.g. "ap-guangzhou":
// SCF quotas and functions are per region.`},
	}
}

// Render returns the shared.go of s, gofmt-formatted.
func Render(s Service) ([]byte, error) {
	t, err := template.New("shared.go.tmpl").Option("missingkey=error").Parse(source)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, s); err != nil {
		return nil, err
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("facade %s: the template does not make valid Go: %w", s.Pkg, err)
	}
	return out, nil
}
