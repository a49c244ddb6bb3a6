package retry

import (
	"testing"
	"time"
)

func TestCeilingGrowsToMax(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 30 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := b.Ceiling(i + 1); got != w {
			t.Errorf("Ceiling(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := b.Ceiling(10_000); got != 30*time.Second {
		t.Errorf("Ceiling(10000) = %v, want the maximum", got)
	}
}

func TestJitterStaysInRange(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 8 * time.Second, Jitter: 0.5}
	for attempt := 1; attempt < 8; attempt++ {
		hi := b.Ceiling(attempt)
		for range 200 {
			d := b.Delay(attempt)
			if d > hi || d < hi/2 {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
}
