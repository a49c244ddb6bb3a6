//go:build race

package onepunderrace

import "runtime"

func init() { runtime.GOMAXPROCS(1) }
