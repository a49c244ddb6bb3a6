//go:build race

package onepunderrace

// Enabled reports whether the binary was built with the race detector.
const Enabled = true
