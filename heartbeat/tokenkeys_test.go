package heartbeat_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, heartbeat.MinTokenKeyLen) }

// Replicas given the same keys accept each other's tokens: a replica that
// does not know the session says "expired" (the token is genuine), where a
// server with another key says "invalid token".
func TestTokenKeysSharedByReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newEnv(t, heartbeat.WithTokenKeys(key(1)))
		b := newEnv(t, heartbeat.WithTokenKeys(key(2), key(1)))
		other := newEnv(t, heartbeat.WithTokenKeys(key(3)))
		tok := a.Open("u1")
		if code, reason := b.hello("u1", tok).closed(); code != heartbeat.CloseExpired {
			t.Errorf("replica with the key: %d %q, want %d (genuine token, unknown session)", code, reason, heartbeat.CloseExpired)
		}
		if code, reason := other.hello("u1", tok).closed(); code != heartbeat.CloseUnauthorized || reason != "invalid token" {
			t.Errorf("server with another key: %d %q, want %d \"invalid token\"", code, reason, heartbeat.CloseUnauthorized)
		}
		a.join("u1", tok) // still unused on a
	})
}

// Rotating the key while sessions are connected breaks none of them: the
// resume token minted with the old key still resumes, the next one is
// minted with the new key, and once the old key is retired its tokens are
// forgeries.
func TestTokenKeyRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, heartbeat.WithTokenKeys(key(1)))
		join := e.Open("u1")
		c, w := e.join("u1", join)

		if err := e.srv.SetTokenKeys(key(2), key(1)); err != nil {
			t.Fatal(err)
		}
		c.drop()
		time.Sleep(time.Second)
		c, w2 := e.join("u1", w.Token) // minted with key 1
		if !w2.Resumed {
			t.Errorf("resume with the old key's token: resumed=false")
		}

		if err := e.srv.SetTokenKeys(key(2)); err != nil { // key 1 retired
			t.Fatal(err)
		}
		c.drop()
		time.Sleep(time.Second)
		if _, w3 := e.join("u1", w2.Token); !w3.Resumed { // minted with key 2
			t.Errorf("resume with the new key's token: resumed=false")
		}
		if code, reason := e.hello("u1", join).closed(); code != heartbeat.CloseUnauthorized || reason != "invalid token" {
			t.Errorf("token of the retired key: %d %q, want \"invalid token\"", code, reason)
		}
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(connection lost) resume disconnect(connection lost) resume")
	})
}

func TestTokenKeysValidation(t *testing.T) {
	short := []byte("0123456789abcdef") // 16 bytes
	many := make([][]byte, heartbeat.MaxTokenKeys)
	for i := range many {
		many[i] = key(byte(i))
	}
	for _, c := range []struct {
		name string
		opt  heartbeat.ServerOption
		rule string
	}{
		{"short current", heartbeat.WithTokenKeys(short), "the current key must be at least 32 bytes, got 16"},
		{"nil current", heartbeat.WithTokenKeys(nil), "the current key must be at least 32 bytes, got 0"},
		{"short older", heartbeat.WithTokenKeys(key(1), key(2), short), "older key 2 must be at least 32 bytes, got 16"},
		{"too many", heartbeat.WithTokenKeys(key(9), many...), "at most 8 keys in all, got 9"},
	} {
		_, err := heartbeat.NewServer(c.opt)
		var ve *heartbeat.ValidationError
		if !errors.As(err, &ve) || ve.Field != "WithTokenKeys" || ve.Rule != c.rule {
			t.Errorf("%s: %v, want a ValidationError for WithTokenKeys: %s", c.name, err, c.rule)
		}
		if err != nil && strings.Contains(err.Error(), string(short)) {
			t.Errorf("%s: the error reveals the key", c.name)
		}
	}

	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, heartbeat.WithTokenKeys(key(1)))
		tok := e.Open("u1")
		var ve *heartbeat.ValidationError
		if err := e.srv.SetTokenKeys(short); !errors.As(err, &ve) || ve.Field != "SetTokenKeys" {
			t.Errorf("SetTokenKeys(short) = %v, want a ValidationError", err)
		}
		e.join("u1", tok) // the keys did not change
	})
}
