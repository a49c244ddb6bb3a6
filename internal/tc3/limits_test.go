package tc3

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signedWith signs r by hand (the reference builder, CanonicalRequest) over
// the given signed header names, taking their values from r as sent.
func signedWith(r *http.Request, names []string, ts int64, body string) {
	var headers []Header
	for _, n := range names {
		v := r.Host
		if n != "host" {
			v = r.Header.Get(n)
		}
		headers = append(headers, Header{n, v})
	}
	date := Date(ts)
	canonical := CanonicalRequest("POST", "/", "", headers, HashPayload([]byte(body)))
	sts := StringToSign(ts, Scope(date, "car"), HashPayload([]byte(canonical)))
	sig := Signature(DeriveKeys(testKey, date, "car").Signing, sts)
	r.Header.Set("Authorization", Authorization(testID, Scope(date, "car"), strings.Join(names, ";"), sig))
}

func wantCode(t *testing.T, err error, code, mention string) {
	t.Helper()
	var ve *Error
	if !errors.As(err, &ve) || ve.Code != code || !strings.Contains(ve.Message, mention) {
		t.Fatalf("err = %v, want %s mentioning %q", err, code, mention)
	}
}

func TestSignedHeadersLimits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := testVerifier(now)
	body := `{}`
	base := func() *http.Request {
		r := signedRequest(t, testID, testKey, now.Unix(), "h", body)
		for i := range 40 {
			r.Header.Set("X-Tc-H"+strconv.Itoa(i), "v")
		}
		return r
	}
	names := func(n int) []string {
		out := []string{"content-type", "host"}
		for i := range n {
			out = append(out, "x-tc-h"+strconv.Itoa(i))
		}
		return out
	}

	t.Run("the official shape and a few x-tc headers are accepted", func(t *testing.T) {
		r := base()
		signedWith(r, names(MaxSignedHeaders-2), now.Unix(), body)
		if _, err := v.Verify(r, []byte(body)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("one name more than the cap", func(t *testing.T) {
		r := base()
		signedWith(r, names(MaxSignedHeaders-1), now.Unix(), body)
		_, err := v.Verify(r, []byte(body))
		wantCode(t, err, CodeInvalidAuthorization, "more than 32")
	})
	t.Run("longer than the cap", func(t *testing.T) {
		r := base()
		long := "x-" + strings.Repeat("a", MaxSignedHeadersBytes)
		r.Header.Set(long, "v")
		signedWith(r, []string{"content-type", "host", long}, now.Unix(), body)
		_, err := v.Verify(r, []byte(body))
		wantCode(t, err, CodeInvalidAuthorization, "longer than 1024")
	})
	t.Run("a name twice", func(t *testing.T) {
		r := base()
		signedWith(r, []string{"content-type", "host", "x-tc-h1", "x-tc-h1"}, now.Unix(), body)
		_, err := v.Verify(r, []byte(body))
		wantCode(t, err, CodeInvalidAuthorization, `"x-tc-h1" twice`)
	})
	t.Run("host twice", func(t *testing.T) {
		r := base()
		signedWith(r, []string{"content-type", "host", "host"}, now.Unix(), body)
		_, err := v.Verify(r, []byte(body))
		wantCode(t, err, CodeInvalidAuthorization, "twice")
	})
	t.Run("a header the request does not carry", func(t *testing.T) {
		r := base()
		signedWith(r, []string{"content-type", "host", "x-tc-absent"}, now.Unix(), body)
		_, err := v.Verify(r, []byte(body))
		wantCode(t, err, CodeInvalidAuthorization, `"x-tc-absent", which the request does not carry`)
	})
	t.Run("the amplification request is refused at the parse", func(t *testing.T) {
		// One header listed thousands of times plus one large header,
		// signed with the public SecretId only: before the caps, the
		// verifier built 4 × 5,000 × 500 KB in memory.
		r := base()
		r.Header.Set("X-A", strings.Repeat("a", 500<<10))
		list := "content-type;host" + strings.Repeat(";x-a", 5000)
		r.Header.Set("Authorization", Authorization(testID, Scope(Date(now.Unix()), "car"), list, strings.Repeat("0", 64)))
		_, err := v.Verify(r, []byte(body))
		wantCode(t, err, CodeInvalidAuthorization, "longer than")
	})
}

// TestSkewWholeSeconds: 300 s either way is accepted and 301 s refused,
// whatever the sub-second part of the server's clock.
func TestSkewWholeSeconds(t *testing.T) {
	const sec = 1_700_000_000
	body := `{}`
	for _, frac := range []time.Duration{0, time.Millisecond, 500 * time.Millisecond, 999_999_999} {
		v := testVerifier(time.Unix(sec, 0).Add(frac))
		for _, c := range []struct {
			offset int64
			ok     bool
		}{{-300, true}, {300, true}, {-301, false}, {301, false}, {0, true}} {
			r := signedRequest(t, testID, testKey, sec+c.offset, "h", body)
			_, err := v.Verify(r, []byte(body))
			if c.ok && err != nil {
				t.Errorf("clock +%v, timestamp %+d s: %v", frac, c.offset, err)
			}
			if !c.ok {
				var ve *Error
				if !errors.As(err, &ve) || ve.Code != CodeSignatureExpire {
					t.Errorf("clock +%v, timestamp %+d s: err %v, want %s", frac, c.offset, err, CodeSignatureExpire)
				}
			}
		}
	}
	v := testVerifier(time.Unix(sec, 0))
	for _, ts := range []string{"-9223372036854775808", "9223372036854775807"} {
		r := signedRequest(t, testID, testKey, sec, "h", body)
		r.Header.Set("X-TC-Timestamp", ts)
		_, err := v.Verify(r, []byte(body))
		wantCode(t, err, CodeSignatureExpire, "five minutes")
	}
}

// TestAuthenticateNeedsNoBody: everything but the signature is checked
// from the headers alone.
func TestAuthenticateNeedsNoBody(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := testVerifier(now)
	r := signedRequest(t, "AKIDnobody", testKey, now.Unix(), "h", "{}")
	if _, err := v.Authenticate(r); err == nil {
		t.Fatal("an unknown SecretId passed Authenticate")
	}
	r = signedRequest(t, testID, testKey, now.Unix(), "h", "{}")
	p, err := v.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Del("Content-Type") // the values were taken at Authenticate
	if _, err := p.Check([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Check([]byte("{ }")); err == nil {
		t.Fatal("Check accepted another body")
	}
}

func TestCheckAllocations(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := testVerifier(now)
	body := []byte(`{"UserId":"u1"}`)
	r := signedRequest(t, testID, testKey, now.Unix(), "127.0.0.1:8080", string(body))
	v.Verify(r, body) // caches the signing key
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	})
	// the parsed SignedHeaders
	if allocs > 1 {
		t.Fatalf("Verify allocates %v times", allocs)
	}
}

// FuzzCanonicalStream: the streamed canonical request hashes to the same
// value as the one the reference builder (CanonicalRequest) makes, for
// both forms the verifier tries, and a request signed by hand over it is
// accepted.
func FuzzCanonicalStream(f *testing.F) {
	f.Add("POST", "", "application/json", "Host.Example:80", "a", " B c ", strings.Repeat("x", 700), []byte("{}"))
	f.Add("POST", "a=b&c", "", "h", "", "\t", "ÄÖ", []byte{0xff})
	f.Fuzz(func(t *testing.T, method, query, contentType, host, v1, v2, v3 string, body []byte) {
		p := Pending{method: method, query: query}
		p.auth.SignedHeaders = []string{"content-type", "host", "x-tc-a", "x-tc-b", "x-tc-c"}
		p.values = [MaxSignedHeaders]string{contentType, "", v1, v2, v3}
		payload := HashPayload(body)
		w := &canonicalWriter{h: sha256.New()}
		for _, documented := range []bool{true, false} {
			form := func(s string) string {
				if documented {
					b := []byte(strings.TrimSpace(s))
					for i, c := range b { // ASCII only, byte by byte, as documented
						if 'A' <= c && c <= 'Z' {
							b[i] = c + 'a' - 'A'
						}
					}
					return string(b)
				}
				return s
			}
			want := sha256.Sum256([]byte(CanonicalRequest(method, "/", query, []Header{
				{"content-type", form(contentType)}, {"host", form(host)},
				{"x-tc-a", form(v1)}, {"x-tc-b", form(v2)}, {"x-tc-c", form(v3)},
			}, payload)))
			if got := p.canonicalSum(w, host, documented, []byte(payload)); got != want {
				t.Fatalf("documented=%v: streamed %x, built %x", documented, got, want)
			}
		}
		// End to end, where the values can be sent as HTTP headers.
		for _, s := range []string{contentType, host, v1, v2, v3} {
			if !validHeaderValue(s) || s == "" {
				return
			}
		}
		if strings.ContainsAny(host, "/?#@ ") || method != "POST" {
			return
		}
		now := time.Unix(1_700_000_000, 0)
		r, err := http.NewRequest("POST", "http://placeholder/", nil)
		if err != nil {
			return
		}
		r.Host = host
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("X-Tc-A", v1)
		r.Header.Set("X-Tc-B", v2)
		r.Header.Set("X-Tc-C", v3)
		r.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix(), 10))
		names := []string{"content-type", "host", "x-tc-a", "x-tc-b", "x-tc-c"}
		signedWith(r, names, now.Unix(), string(body))
		if _, err := testVerifier(now).Verify(r, body); err != nil {
			t.Fatalf("a hand-signed request was refused: %v", err)
		}
		slices.Reverse(names) // any declared order is accepted
		signedWith(r, names, now.Unix(), string(body))
		if _, err := testVerifier(now).Verify(r, body); err != nil {
			t.Fatalf("a hand-signed request in another order was refused: %v", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	v := testVerifier(now)
	body := []byte(`{"ProjectId":"cap-12345678","UserId":"u1"}`)
	r := signedRequest(&testing.T{}, testID, testKey, now.Unix(), "127.0.0.1:8080", string(body))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLargeBodyHashedInChunks: a body hashed in chunks verifies as one
// hashed whole, and a change in its last chunk is caught.
func TestLargeBodyHashedInChunks(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := testVerifier(now)
	body := strings.Repeat("0123456789", 3*hashChunk/10+7)
	r := signedRequest(t, testID, testKey, now.Unix(), "h", body)
	if _, err := v.Verify(r, []byte(body)); err != nil {
		t.Fatal(err)
	}
	changed := []byte(body)
	changed[len(changed)-1] = 'x'
	if _, err := v.Verify(r, changed); err == nil {
		t.Fatal("a change in the last chunk was not caught")
	}
}
