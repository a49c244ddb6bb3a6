//go:build race

package apiserver

// raceEnabled: the attack tests measure latency and memory, which the race
// detector (and its one P, see onepunderrace) would only distort.
const raceEnabled = true
