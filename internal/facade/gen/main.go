// Command gen writes shared.go of package car or scf from the template of
// internal/facade. It runs from go generate in the package's directory:
//
//	//go:generate go run ../internal/facade/gen car
package main

import (
	"fmt"
	"os"

	"github.com/tcconcurrency/sdk-go/internal/facade"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen car|scf (run in the package's directory)")
		os.Exit(2)
	}
	for _, s := range facade.Services() {
		if s.Pkg != os.Args[1] {
			continue
		}
		out, err := facade.Render(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile("shared.go", out, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "gen: no facade %q\n", os.Args[1])
	os.Exit(2)
}
