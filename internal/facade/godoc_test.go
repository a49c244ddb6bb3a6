package facade

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestOptionsDocumentedInTheirPackage: in the godoc of car and scf every
// option type is the package's own (not an alias into an internal
// package), and every function that makes an option has a doc comment.
func TestOptionsDocumentedInTheirPackage(t *testing.T) {
	for _, s := range Services() {
		dir := filepath.Join("..", "..", s.Pkg)
		fset := token.NewFileSet()
		files, err := parseDir(fset, dir)
		if err != nil {
			t.Fatal(err)
		}
		p, err := doc.NewFromFiles(fset, files, "github.com/tcconcurrency/sdk-go/"+s.Pkg)
		if err != nil {
			t.Fatal(err)
		}
		options := 0
		for _, typ := range p.Types {
			if !strings.HasSuffix(typ.Name, "Option") && typ.Name != "RetryPolicy" && typ.Name != "RetryBudget" {
				continue
			}
			for _, spec := range typ.Decl.Specs {
				if ts := spec.(*ast.TypeSpec); ts.Assign.IsValid() {
					t.Errorf("%s.%s is an alias: godoc sends readers elsewhere", s.Pkg, typ.Name)
				}
			}
			if strings.TrimSpace(typ.Doc) == "" {
				t.Errorf("%s.%s has no doc", s.Pkg, typ.Name)
			}
			for _, f := range typ.Funcs {
				options++
				if strings.TrimSpace(f.Doc) == "" {
					t.Errorf("%s.%s (a %s) has no doc", s.Pkg, f.Name, typ.Name)
				}
			}
		}
		if options < 8 {
			t.Errorf("%s: found %d option functions; is the package parsed?", s.Pkg, options)
		}
	}
}

// parseDir parses the non-test Go files of dir.
func parseDir(fset *token.FileSet, dir string) ([]*ast.File, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}
