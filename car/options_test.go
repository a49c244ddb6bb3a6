package car_test

import (
	"strings"
	"testing"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// TestBadCallOptionSendsNothing: an invalid per-call retry policy fails the
// call, naming the option and the field, before anything is sent; a nil
// CallOption changes nothing.
func TestBadCallOptionSendsNothing(t *testing.T) {
	srv := cartest.Start(t)
	c := srv.Client()
	in := &car.ApplyConcurrentInput{UserId: "u1", UserIp: "203.0.113.7", ProjectId: cartest.DefaultProjectId}
	_, err := c.ApplyConcurrent(t.Context(), in, car.WithCallRetry(car.RetryPolicy{MaxAttempts: -1}))
	if err == nil || !strings.Contains(err.Error(), "WithCallRetry") || !strings.Contains(err.Error(), "MaxAttempts") {
		t.Fatalf("err = %v, want WithCallRetry and MaxAttempts named", err)
	}
	err = c.Call(t.Context(), "DescribeConcurrentCount", struct{}{}, nil, car.WithCallRetry(car.RetryPolicy{MinWait: 2, MaxWait: 1}))
	if err == nil || !strings.Contains(err.Error(), "MinWait") {
		t.Fatalf("Call: err = %v, want MinWait named", err)
	}
	for _, ev := range srv.Events() {
		if ev.Kind == cartest.EventCall {
			t.Fatalf("a call was sent: %+v", ev)
		}
	}
	if _, err := c.ApplyConcurrent(t.Context(), in, nil, car.WithCallRetry(car.RetryPolicy{MaxAttempts: 1})); err != nil {
		t.Fatalf("a nil CallOption and a valid one: %v", err)
	}
}

// TestNilOptionRefused: NewClient names a nil Option instead of panicking.
func TestNilOptionRefused(t *testing.T) {
	_, err := car.NewClient(car.WithRegion("ap-guangzhou"), nil)
	if err == nil || !strings.Contains(err.Error(), "Option must not be nil") {
		t.Fatalf("err = %v", err)
	}
}
