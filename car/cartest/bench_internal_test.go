package cartest

import "testing"

// The ServerSession fast path of CreateSession (sessionEncoder, cut from
// BenchmarkLifecycle's profile) answers exactly what ServerSession.Encode
// does, for every Host, including one that changes between calls and one
// that JSON escapes.
func TestSessionEncoderMatchesEncode(t *testing.T) {
	var e sessionEncoder
	for _, host := range []string{"127.0.0.1:41234", "car", "127.0.0.1:41234", "[::1]:80", "a<b>&c", "car"} {
		for _, id := range []string{"pack-cartest1-1", "load_2.x-1000"} {
			token := newToken()
			want := ServerSession{Version: ServerSessionVersion, StreamURL: "ws://" + host + "/car/stream", Token: token, ConcurrencyId: id}.Encode()
			if got := e.encode(host, "/car/stream", token, id); got != want {
				t.Fatalf("host %q: encode = %s, Encode = %s", host, got, want)
			}
		}
	}
}
