package facade

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestFacadesMatchTemplate fails while car/shared.go or scf/shared.go is
// not what the template makes: edited by hand, or the template edited
// without go generate ./car ./scf.
func TestFacadesMatchTemplate(t *testing.T) {
	for _, s := range Services() {
		want, err := Render(s)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", s.Pkg, "shared.go")
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what internal/facade/shared.go.tmpl makes: edit the template, not the file, and run go generate ./car ./scf", path)
		}
	}
}

// TestFacadesDiffer: each facade speaks of its own service, so a template
// that dropped the per-service fields would be caught.
func TestFacadesDiffer(t *testing.T) {
	car, err := Render(Services()[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"package car\n", "the CAR API", "scf.APIError", "CAR needs none"} {
		if !bytes.Contains(car, []byte(want)) {
			t.Errorf("car's facade has no %q", want)
		}
	}
}
