package main

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/asyncrt/asyncrt/runtime/status"
)

func TestPanicBecomesInternalError(t *testing.T) {
	var err error
	func() {
		defer func() { err = panicError("asyncrt_x", recover()) }()
		panic("deliberate")
	}()
	var se *status.Error
	if !errors.As(err, &se) || se.Code != status.EINTERNAL || !strings.Contains(se.Message, "deliberate") ||
		!strings.Contains(se.Message, "asyncrt_x") {
		t.Errorf("err = %v, want EINTERNAL naming the panic and the function", err)
	}
	if strings.Contains(se.Message, "task") {
		t.Errorf("err = %v names a task, but no task was polled", err)
	}
}

// Every export must defer guard first, so no panic can reach C.
func TestEveryExportDefersGuard(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "exports.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	exports := 0
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Doc == nil || !hasExportDirective(fn) {
			continue
		}
		exports++
		guarded := false
		for _, st := range fn.Body.List[:min(2, len(fn.Body.List))] {
			if d, ok := st.(*ast.DeferStmt); ok {
				if id, ok := d.Call.Fun.(*ast.Ident); ok && id.Name == "guard" {
					guarded = true
				}
			}
		}
		if !guarded {
			t.Errorf("export %s does not defer guard in its first statements", fn.Name.Name)
		}
	}
	if exports == 0 {
		t.Error("found no exports: the test is not looking at the right file")
	}
}

func hasExportDirective(fn *ast.FuncDecl) bool {
	for _, c := range fn.Doc.List {
		if c.Text == "//export "+fn.Name.Name {
			return true
		}
	}
	return false
}
