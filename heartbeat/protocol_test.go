package heartbeat

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

func TestDecodeClientFrame(t *testing.T) {
	cases := []struct {
		in     string
		typ    string // decoded type when valid
		reason string // substring of the error reason when invalid
	}{
		{in: `{"type":"hello","v":1,"session":"u1","token":"t"}`, typ: "hello"},
		{in: `{"type":"hello","v":7,"session":"u1","token":"t","extra":true}`, typ: "hello"}, // version is checked later; unknown fields are ignored
		{in: `{"type":"activity"}`, typ: "activity"},
		{in: ` {"type":"activity","at":123} `, typ: "activity"},
		{in: `{"type":"hello","session":"u1","token":"t"}`, reason: `"v" is required`},
		{in: `{"type":"hello","v":1,"token":"t"}`, reason: `"session" is required`},
		{in: `{"type":"hello","v":1,"session":"u1"}`, reason: `"token" is required`},
		{in: `{"type":"hello","v":"1","session":"u1","token":"t"}`, reason: "not a valid JSON object"},
		{in: `{"v":1}`, reason: `"type" is required`},
		{in: `null`, reason: `"type" is required`},
		{in: `[]`, reason: "not a valid JSON object"},
		{in: `{"type":"activity"} {}`, reason: "not a valid JSON object"},
		{in: ``, reason: "not a valid JSON object"},
		{in: `{"type":"ping"}`, reason: `unknown frame type "ping"`},
		{in: `{"type":"stream","state":"lost","code":-3}`, typ: "stream"},
		{in: `{"type":"stream","state":"connected"}`, typ: "stream"},
		{in: `{"type":"stream","state":"Lost"}`, reason: `stream: unknown state "Lost"`},
		{in: `{"type":"stream","code":2}`, reason: `stream: field "state" is required`},
		{in: `{"type":"stream","state":"lost","code":2147483648}`, reason: `"code" must be a 32-bit integer`},
		{in: `{"type":"stream","state":"lost","code":1.5}`, reason: "not a valid JSON object"},
		{in: `{"type":"` + strings.Repeat("z", 100) + `"}`, reason: `unknown frame type "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"`},
	}
	for _, c := range cases {
		f, err := decodeClientFrame(websocket.TextMessage, []byte(c.in))
		if c.reason == "" {
			if err != nil || f.Type != c.typ {
				t.Errorf("decode(%s) = %+v, %v; want type %q", c.in, f.Type, err, c.typ)
			}
			continue
		}
		var fe *frameError
		if !errors.As(err, &fe) || fe.code != CloseProtocolError || !strings.Contains(fe.reason, c.reason) {
			t.Errorf("decode(%s) error = %v; want a protocol error containing %q", c.in, err, c.reason)
		}
	}
	if _, err := decodeClientFrame(websocket.BinaryMessage, []byte(`{"type":"activity"}`)); err == nil {
		t.Errorf("binary frame accepted")
	}
}

func FuzzDecodeClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"hello","v":1,"session":"user-1","token":"c2VjcmV0LXRva2VuLWZvci10ZXN0aW5nLW9ubHktMDEy"}`,
		`{"type":"activity"}`,
		`{"type":"hello","v":2,"session":"u","token":"t"}`,
		`{"type":"hello","v":1,"session":"\u0000","token":"x"}`,
		`{"type":"pong"}`,
		`{"type":null}`,
		`{"type":"hello","v":1e400}`,
		`{"type":"activity","type":"hello"}`,
		`{"type":"stream","state":"lost","code":-3}`,
		`{"type":"stream","state":"disconnected","code":2}`,
		`{"type":"stream","state":"gone","code":0}`,
		`{"type":"stream","state":"connected","code":-2147483649}`,
		`{"type":"stream","state":"` + "\u00e9" + `"}`,
		`"hello"`,
		`{`,
		"\xff\xfe",
	} {
		f.Add(seed)
	}
	m := newMinter()
	f.Fuzz(func(t *testing.T, in string) {
		fr, err := decodeClientFrame(websocket.TextMessage, []byte(in))
		if err != nil {
			var fe *frameError
			if !errors.As(err, &fe) || fe.reason == "" {
				t.Fatalf("error %v is not a frame error with a reason", err)
			}
			if want := CloseProtocolError; !utf8.ValidString(in) {
				if fe.code != CloseInvalidPayload {
					t.Fatalf("invalid UTF-8 %q: code %d, want %d", in, fe.code, CloseInvalidPayload)
				}
			} else if fe.code != want {
				t.Fatalf("error %v: code %d, want %d", err, fe.code, want)
			}
			var raw struct{ Type, Token string }
			if json.Unmarshal([]byte(in), &raw) == nil && len(raw.Token) >= 4 &&
				!strings.Contains(raw.Type, raw.Token) && strings.Contains(fe.reason, raw.Token) {
				t.Fatalf("error reason %q reveals the token", fe.reason)
			}
			if len(closeMessage(fe.code, fe.reason)) > 125 {
				t.Fatalf("close frame for %q exceeds 125 bytes", fe.reason)
			}
			return
		}
		switch fr.Type {
		case frameActivity:
		case frameStream:
			if !validStreamState(StreamState(fr.State)) || int64(int32(fr.Code)) != fr.Code {
				t.Fatalf("stream frame accepted with state %q, code %d", fr.State, fr.Code)
			}
		case frameHello:
			if fr.V == 0 || fr.Session == "" || fr.Token == "" {
				t.Fatalf("hello accepted without v, session or token: %+v", fr)
			}
			again, err := decodeClientFrame(websocket.TextMessage, encode(helloFrame{Type: frameHello, V: fr.V, Session: fr.Session, Token: fr.Token}))
			if err != nil || again != fr {
				t.Fatalf("re-encoded hello decodes to %+v, %v; want %+v", again, err, fr)
			}
			if _, ok := m.verify(fr.Session, fr.Token); ok {
				t.Fatalf("fuzzed token verified")
			}
		default:
			t.Fatalf("accepted frame type %q", fr.Type)
		}
	})
}

func TestTokens(t *testing.T) {
	m := newMinter()
	n := newNonce()
	tok := m.mint("u1", n)
	if len(tok) != 43 {
		t.Errorf("token length %d, want 43 (32 bytes, base64url)", len(tok))
	}
	if got, ok := m.verify("u1", tok); !ok || got != n {
		t.Fatalf("verify(own token) = %v, %v", got, ok)
	}
	if _, ok := m.verify("u2", tok); ok {
		t.Errorf("token verified for another session")
	}
	if _, ok := newMinter().verify("u1", tok); ok {
		t.Errorf("token verified by another server")
	}
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 0x01
		if _, ok := m.verify("u1", string(b)); ok {
			t.Errorf("token with byte %d flipped verified", i)
		}
	}
	for _, bad := range []string{"", tok[:42], tok + "A", strings.Repeat("!", 43)} {
		if _, ok := m.verify("u1", bad); ok {
			t.Errorf("verify(%q) succeeded", bad)
		}
	}
	if m.mint("u1", newNonce()) == tok {
		t.Errorf("two tokens for the same session are equal")
	}
}

// The activity fast path decodes exactly as encoding/json would.
func TestActivityFastPath(t *testing.T) {
	var viaJSON clientFrame
	if err := json.Unmarshal([]byte(activityFrame), &viaJSON); err != nil {
		t.Fatal(err)
	}
	got, err := decodeClientFrame(websocket.TextMessage, []byte(activityFrame))
	if err != nil || got != viaJSON || got.Type != frameActivity {
		t.Fatalf("fast path %+v, %v; encoding/json %+v", got, err, viaJSON)
	}
	if sent := string(encode(map[string]string{"type": frameActivity})); sent != activityFrame {
		t.Fatalf("the canonical activity frame %s is not what json.Marshal writes (%s)", activityFrame, sent)
	}
}
