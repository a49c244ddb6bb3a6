package heartbeat

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"sync/atomic"
)

// A token is base64url(nonce ‖ mac) with
//
//	nonce = 16 random bytes (crypto/rand, 128 bits)
//	mac   = HMAC-SHA256(key, Subprotocol ‖ 0 ‖ session id ‖ 0 ‖ nonce)[:16]
//
// The MAC binds a token to its session and to the key that minted it, so a
// forged or foreign token is refused without a session lookup, and a genuine
// token whose session is gone can be told apart ("expired") without keeping
// tombstones. Single use comes from the session remembering which nonces are
// currently valid (one join nonce from Open, one resume nonce from the last
// welcome); a successful hello consumes the one it used.
const (
	nonceLen    = 16
	macLen      = 16
	tokenLen    = nonceLen + macLen
	tokenStrLen = (tokenLen*8 + 5) / 6 // unpadded base64
)

// tokenEncoding is strict so that each token has exactly one spelling.
var tokenEncoding = base64.RawURLEncoding.Strict()

type nonce [nonceLen]byte

func newNonce() nonce {
	var n nonce
	rand.Read(n[:]) // never fails (Go ≥ 1.24 crashes the program instead)
	return n
}

// Token key rings (WithTokenKeys, Server.SetTokenKeys).
const (
	// MinTokenKeyLen is the shortest token key, in bytes.
	MinTokenKeyLen = 32
	// MaxTokenKeys is the most keys a ring may hold, current included.
	MaxTokenKeys = 8
)

// keyRing is an immutable set of token keys: keys[0] mints, every key
// verifies.
type keyRing struct {
	keys [][]byte
}

// newKeyRing validates and copies the keys. Errors name the field and the
// rule, never the key.
func newKeyRing(field string, current []byte, older [][]byte) (*keyRing, error) {
	if 1+len(older) > MaxTokenKeys {
		return nil, &ValidationError{Field: field, Rule: "at most " + strconv.Itoa(MaxTokenKeys) + " keys in all, got " + strconv.Itoa(1+len(older))}
	}
	r := &keyRing{}
	for i, k := range append([][]byte{current}, older...) {
		if len(k) < MinTokenKeyLen {
			which := "the current key"
			if i > 0 {
				which = "older key " + strconv.Itoa(i)
			}
			return nil, &ValidationError{Field: field, Rule: which + " must be at least " + strconv.Itoa(MinTokenKeyLen) + " bytes, got " + strconv.Itoa(len(k))}
		}
		r.keys = append(r.keys, bytes.Clone(k))
	}
	return r, nil
}

// minter mints and verifies tokens with a Server's key ring, which may be
// replaced at any time (Server.SetTokenKeys).
type minter struct {
	ring atomic.Pointer[keyRing]
}

// newMinter returns a minter with ring, or with a fresh random key if ring
// is nil.
func newMinter(ring ...*keyRing) *minter {
	m := &minter{}
	if len(ring) > 0 && ring[0] != nil {
		m.ring.Store(ring[0])
	} else {
		key := make([]byte, MinTokenKeyLen)
		rand.Read(key)
		m.ring.Store(&keyRing{keys: [][]byte{key}})
	}
	return m
}

func mac(key []byte, sessionID string, n nonce) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(Subprotocol))
	h.Write([]byte{0})
	h.Write([]byte(sessionID))
	h.Write([]byte{0})
	h.Write(n[:])
	return h.Sum(nil)[:macLen]
}

func (m *minter) mint(sessionID string, n nonce) string {
	var raw [tokenLen]byte
	copy(raw[:], n[:])
	copy(raw[nonceLen:], mac(m.ring.Load().keys[0], sessionID, n))
	return tokenEncoding.EncodeToString(raw[:])
}

// verify reports whether token was minted for sessionID with any key of the
// ring, and returns its nonce. Each MAC comparison is constant time.
func (m *minter) verify(sessionID, token string) (nonce, bool) {
	var n nonce
	if len(token) != tokenStrLen {
		return n, false
	}
	var raw [tokenLen]byte
	if k, err := tokenEncoding.Decode(raw[:], []byte(token)); err != nil || k != tokenLen {
		return n, false
	}
	copy(n[:], raw[:nonceLen])
	for _, key := range m.ring.Load().keys {
		if hmac.Equal(raw[nonceLen:], mac(key, sessionID, n)) {
			return n, true
		}
	}
	return n, false
}
