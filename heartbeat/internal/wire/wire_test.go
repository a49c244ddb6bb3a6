package wire

import (
	"strings"
	"testing"
)

func TestMailbox(t *testing.T) {
	var m Mailbox
	var ran []int
	if !m.Post(func() { ran = append(ran, 1) }) {
		t.Fatalf("first post did not ask for a goroutine")
	}
	if m.Post(func() { ran = append(ran, 2) }) {
		t.Fatalf("second post asked for another goroutine")
	}
	for fn, ok := m.next(); ok; fn, ok = m.next() {
		fn()
	}
	if len(ran) != 2 || ran[0] != 1 || ran[1] != 2 || m.running {
		t.Fatalf("ran %v (running=%v), want [1 2] and stopped", ran, m.running)
	}
	m.Post(func() { ran = append(ran, 3) })
	m.Drop()
	if _, ok := m.next(); ok || m.Post(func() {}) {
		t.Fatalf("dropped mailbox still runs or accepts calls")
	}
}

func TestTruncateUTF8(t *testing.T) {
	s := strings.Repeat("é", 100) // 200 bytes
	got := TruncateUTF8(s, 123)
	if len(got) != 122 || !strings.HasPrefix(s, got) {
		t.Errorf("TruncateUTF8 cut to %d bytes, want 122 on a rune boundary", len(got))
	}
}
