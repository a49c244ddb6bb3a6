package car

import (
	"fmt"
	"strconv"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// SetTokenKeys replaces the token key ring of the manager's heartbeat
// server while it runs (see heartbeat.Server.SetTokenKeys): the tokens
// of the leases issued from now on, and the resume tokens of the
// welcomes from now on, are signed with current, and a hello is accepted
// if any of current and older signed its token. It follows the rules of
// heartbeat.WithTokenKeys, which sets the keys the manager starts with
// (car.WithHeartbeat(heartbeat.WithTokenKeys(...))): each key at least
// heartbeat.MinTokenKeyLen (32) bytes, at most heartbeat.MaxTokenKeys in
// all. The keys are copied; they are secrets and never logged or put in
// an error. Invalid keys change nothing and return a *ValidationError
// naming the key and the rule.
//
// No connection is closed by a rotation. Across several replicas, rotate
// in two phases so that every replica accepts every token at every step:
// see "Several replicas" in the package documentation.
func (m *SessionManager) SetTokenKeys(current []byte, older ...[]byte) error {
	if n := 1 + len(older); n > heartbeat.MaxTokenKeys {
		return &ValidationError{Service: Service, Action: "SetTokenKeys", Field: "keys",
			Rule: "must be at most " + strconv.Itoa(heartbeat.MaxTokenKeys) + " in all (current and older), got " + strconv.Itoa(n)}
	}
	for i, k := range append([][]byte{current}, older...) {
		if len(k) < heartbeat.MinTokenKeyLen {
			field := "current key"
			if i > 0 {
				field = "older key " + strconv.Itoa(i)
			}
			return &ValidationError{Service: Service, Action: "SetTokenKeys", Field: field,
				Rule: "must be at least " + strconv.Itoa(heartbeat.MinTokenKeyLen) + " bytes, got " + strconv.Itoa(len(k))}
		}
	}
	if err := m.hb.SetTokenKeys(current, older...); err != nil {
		return fmt.Errorf("car: SetTokenKeys: %w", err)
	}
	return nil
}
