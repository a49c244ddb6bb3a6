//go:build race

package heartbeat_test

const raceEnabled = true
