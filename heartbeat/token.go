package heartbeat

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// A token is base64url(nonce ‖ mac) with
//
//	nonce = 16 random bytes (crypto/rand, 128 bits)
//	mac   = HMAC-SHA256(server key, Subprotocol ‖ 0 ‖ session id ‖ 0 ‖ nonce)[:16]
//
// The MAC binds a token to its session and to the Server that minted it, so a
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

// minter mints and verifies tokens with one Server's key.
type minter struct {
	key [32]byte
}

func newMinter() *minter {
	m := &minter{}
	rand.Read(m.key[:])
	return m
}

func (m *minter) mac(sessionID string, n nonce) []byte {
	h := hmac.New(sha256.New, m.key[:])
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
	copy(raw[nonceLen:], m.mac(sessionID, n))
	return tokenEncoding.EncodeToString(raw[:])
}

// verify reports whether token was minted by m for sessionID, and returns its
// nonce. The MAC comparison is constant time.
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
	return n, hmac.Equal(raw[nonceLen:], m.mac(sessionID, n))
}

// sameNonce compares nonces in constant time.
func sameNonce(a, b nonce) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
