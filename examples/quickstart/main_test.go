package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestEmbeddedTimeline: the quickstart's output is the README's, every
// time: the manual clock makes it instant and deterministic.
func TestEmbeddedTimeline(t *testing.T) {
	var out bytes.Buffer
	if err := runEmbedded(t.Context(), &out, "alice", "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	want := `CAR session of alice on the embedded reference server (project cap-cartest1, reconnect wait 1m30s)

   +0s  user starts   ApplyConcurrent  a concurrency is locked for alice              running 1 of 3
   +0s                CreateSession    the ServerSession goes to the client           running 1 of 3
   +2s                client connects  streaming from pack-cartest1-1                 running 1 of 3
  +60s  network lost  client drops     CAR keeps pack-cartest1-1 for 1m30s            running 1 of 3
 +120s  user is back  ApplyConcurrent  alice still holds pack-cartest1-1              running 1 of 3
 +120s                CreateSession    the ServerSession goes to the client           running 1 of 3
 +122s                client connects  streaming from pack-cartest1-1                 running 1 of 3
                                       (the same concurrency: the app kept its state)
 +180s  user quits    DestroySession   the client is disconnected; cleanup runs       running 1 of 3
 +190s                cleanup done     the concurrency is idle again                  running 0 of 3
`
	if got := out.String(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestLiveNeedsProject(t *testing.T) {
	err := runLive(t.Context(), new(bytes.Buffer), "", "alice", "203.0.113.7")
	if err == nil || !strings.Contains(err.Error(), "-live needs -project") {
		t.Fatalf("got %v", err)
	}
}
