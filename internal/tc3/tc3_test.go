package tc3

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The published vectors (official-sdk.md §1.4): CVM DescribeInstances,
// timestamp 1551113065, body byte-exact with literal \u escapes.
const (
	vectorBody      = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	vectorTimestamp = 1551113065
	vectorType      = "application/json; charset=utf-8"
	vectorHost      = "cvm.tencentcloudapi.com"
	vectorPayload   = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)

func hexOf(k [32]byte) string { return hex.EncodeToString(k[:]) }

func TestVectorA(t *testing.T) {
	const id, key = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
	if got := HashPayload([]byte(vectorBody)); got != vectorPayload {
		t.Fatalf("HashedRequestPayload = %s", got)
	}
	headers := []Header{{"content-type", vectorType}, {"host", vectorHost}}
	canonical := CanonicalRequest("POST", "/", "", headers, vectorPayload)
	wantCanonical := "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n" + vectorPayload
	if canonical != wantCanonical {
		t.Fatalf("CanonicalRequest =\n%q\nwant\n%q", canonical, wantCanonical)
	}
	hashed := HashPayload([]byte(canonical))
	if hashed != "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031" {
		t.Fatalf("HashedCanonicalRequest = %s", hashed)
	}
	date := Date(vectorTimestamp)
	if date != "2019-02-25" {
		t.Fatalf("scope date = %s, want the UTC date 2019-02-25", date)
	}
	sts := StringToSign(vectorTimestamp, Scope(date, "cvm"), hashed)
	if sts != "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"+hashed {
		t.Fatalf("StringToSign = %q", sts)
	}
	keys := DeriveKeys(key, date, "cvm")
	for _, c := range []struct{ name, got, want string }{
		{"kDate", hexOf(keys.Date), "d1308c81fe71cfd4e06437bbc067b2b8a3d2d8c0e375d547f15c41d5214b395a"},
		{"kService", hexOf(keys.Service), "3c7cb7c7795393edc14fd2e0e6434a518564b4504b88e94f5d11bf59ba3e7050"},
		{"kSigning", hexOf(keys.Signing), "ac658d5dde49e9bfdd14e04e062f66b05d9f637d44b8a8d845327d4a77f666b1"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	sig := Signature(keys.Signing, sts)
	const wantSig = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	if sig != wantSig {
		t.Fatalf("Signature = %s", sig)
	}
	wantAuth := "TC3-HMAC-SHA256 Credential=" + id + "/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=" + wantSig
	if got := Authorization(id, Scope(date, "cvm"), SignedHeaders(headers), sig); got != wantAuth {
		t.Fatalf("Authorization = %s", got)
	}
	// The fast path gives the same header.
	if got := NewSigner("cvm").Sign(id, key, vectorTimestamp, vectorType, vectorHost, []byte(vectorBody)); got != wantAuth {
		t.Fatalf("Signer.Sign = %s", got)
	}
}

func TestVectorB(t *testing.T) {
	key := strings.Repeat("*", 32)
	headers := []Header{{"content-type", vectorType}, {"host", vectorHost}, {"x-tc-action", "describeinstances"}}
	if got := SignedHeaders(headers); got != "content-type;host;x-tc-action" {
		t.Fatalf("SignedHeaders = %s", got)
	}
	hashed := HashPayload([]byte(CanonicalRequest("POST", "/", "", headers, vectorPayload)))
	if hashed != "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84" {
		t.Fatalf("HashedCanonicalRequest = %s", hashed)
	}
	keys := DeriveKeys(key, "2019-02-25", "cvm")
	for _, c := range []struct{ name, got, want string }{
		{"kDate", hexOf(keys.Date), "da98fb70dcf6b112dc21038d1eeeb3a95c74b4dcb12c1131f864f6066bd02be0"},
		{"kService", hexOf(keys.Service), "8d70cbefb03939f929db64d32dc2ba89b1095620119fe3e050e2b18c5bd2752f"},
		{"kSigning", hexOf(keys.Signing), "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	sig := Signature(keys.Signing, StringToSign(vectorTimestamp, Scope("2019-02-25", "cvm"), hashed))
	if sig != "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f" {
		t.Fatalf("Signature = %s", sig)
	}
}

func TestEscapingChangesPayloadHash(t *testing.T) {
	decoded := strings.Replace(vectorBody, `\u672a\u547d\u540d`, "未命名", 1)
	got := HashPayload([]byte(decoded))
	if !strings.HasPrefix(got, "1e07682a") || !strings.HasSuffix(got, "a716") {
		t.Fatalf("hash of the UTF-8 body = %s, want 1e07682a…a716", got)
	}
}

func TestAppendDate(t *testing.T) {
	for _, ts := range []int64{0, 1551113065, 951782400 /* 2000-02-29 */, 4102444799, 253402300799} {
		if got, want := string(appendDate(nil, ts)), Date(ts); got != want {
			t.Errorf("appendDate(%d) = %s, want %s", ts, got, want)
		}
	}
}

func TestHMACLongKey(t *testing.T) {
	// RFC 4231 test case 6: a 131-byte key is hashed first.
	key := bytes.Repeat([]byte{0xaa}, 131)
	sum := hmacSHA256(key, []byte("Test Using Larger Than Block-Size Key - Hash Key First"))
	if got := hexOf(sum); got != "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" {
		t.Fatalf("HMAC = %s", got)
	}
	long := []byte(strings.Repeat("x", 1000)) // longer than the stack buffer
	if hmacSHA256([]byte("k"), long) == hmacSHA256([]byte("k"), long[:999]) {
		t.Fatal("long messages are truncated")
	}
}

// --- Verifier ---

const (
	testID    = "AKIDtest"
	testKey   = "secret-key-for-tests"
	tempID    = "AKIDtemp"
	tempKey   = "temp-key"
	tempToken = "session-token"
)

func testVerifier(now time.Time) *Verifier {
	return &Verifier{
		Lookup: func(id string) (Secret, bool) {
			switch id {
			case testID:
				return Secret{Key: testKey}, true
			case tempID:
				return Secret{Key: tempKey, Token: tempToken}, true
			}
			return Secret{}, false
		},
		Now: func() time.Time { return now },
	}
}

// signedRequest builds a POST signed by the fast-path signer, as our client
// and the official Go SDK send it.
func signedRequest(t *testing.T, id, key string, ts int64, host string, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest("POST", "http://"+host+"/", strings.NewReader(body))
	r.Host = host
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
	r.Header.Set("Authorization", NewSigner("car").Sign(id, key, ts, "application/json", host, []byte(body)))
	return r
}

func TestVerifyAccepts(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := testVerifier(now)
	body := `{"UserId":"u1"}`

	t.Run("go sdk shape, host with port", func(t *testing.T) {
		r := signedRequest(t, testID, testKey, now.Unix(), "127.0.0.1:8080", body)
		id, err := v.Verify(r, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if id.SecretID != testID || id.Service != "car" {
			t.Fatalf("identity = %+v", id)
		}
	})
	t.Run("node sdk shape, host signed without port", func(t *testing.T) {
		r := signedRequest(t, testID, testKey, now.Unix(), "car.localhost", body)
		r.Host = "car.localhost:9000" // sent with the port, signed without
		if _, err := v.Verify(r, []byte(body)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("declared signed headers and any content type", func(t *testing.T) {
		ts := now.Unix()
		headers := []Header{{"content-type", "application/json; charset=utf-8"}, {"host", "example.test"}, {"x-tc-action", "applyconcurrent"}}
		date := Date(ts)
		canonical := CanonicalRequest("POST", "/", "", headers, HashPayload([]byte(body)))
		sig := Signature(DeriveKeys(testKey, date, "car").Signing, StringToSign(ts, Scope(date, "car"), HashPayload([]byte(canonical))))
		r := httptest.NewRequest("POST", "http://example.test/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json; charset=UTF-8") // lower-cased when signed
		r.Header.Set("X-TC-Action", "ApplyConcurrent")
		r.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
		r.Header.Set("Authorization", Authorization(testID, Scope(date, "car"), SignedHeaders(headers), sig))
		if _, err := v.Verify(r, []byte(body)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("temporary credential with its token", func(t *testing.T) {
		r := signedRequest(t, tempID, tempKey, now.Unix(), "h", body)
		r.Header.Set("X-TC-Token", tempToken)
		if _, err := v.Verify(r, []byte(body)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("skew just under five minutes", func(t *testing.T) {
		r := signedRequest(t, testID, testKey, now.Add(-MaxSkew).Unix(), "h", body)
		if _, err := v.Verify(r, []byte(body)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestVerifyRejects(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v := testVerifier(now)
	body := `{"UserId":"u1"}`
	ok := func() *http.Request { return signedRequest(t, testID, testKey, now.Unix(), "h", body) }

	cases := []struct {
		name   string
		req    func() *http.Request
		body   string
		code   string
		reason string
	}{
		{"wrong secret", func() *http.Request { return signedRequest(t, testID, "wrong", now.Unix(), "h", body) }, body, CodeSignatureFailure, "signature"},
		{"tampered body", ok, `{"UserId":"u2"}`, CodeSignatureFailure, "signature"},
		{"old timestamp", func() *http.Request {
			return signedRequest(t, testID, testKey, now.Add(-MaxSkew-time.Second).Unix(), "h", body)
		}, body, CodeSignatureExpire, "five minutes"},
		{"future timestamp", func() *http.Request {
			return signedRequest(t, testID, testKey, now.Add(MaxSkew+time.Second).Unix(), "h", body)
		}, body, CodeSignatureExpire, "five minutes"},
		{"unknown secret id", func() *http.Request { return signedRequest(t, "AKIDnobody", testKey, now.Unix(), "h", body) }, body, CodeSecretIDNotFound, "SecretId"},
		{"missing authorization", func() *http.Request { r := ok(); r.Header.Del("Authorization"); return r }, body, CodeInvalidAuthorization, "missing"},
		{"malformed authorization", func() *http.Request {
			r := ok()
			r.Header.Set("Authorization", "TC3-HMAC-SHA256 Credential=x")
			return r
		}, body, CodeInvalidAuthorization, "Credential"},
		{"token missing for temporary key", func() *http.Request { return signedRequest(t, tempID, tempKey, now.Unix(), "h", body) }, body, CodeTokenFailure, "X-TC-Token"},
		{"wrong token", func() *http.Request {
			r := signedRequest(t, tempID, tempKey, now.Unix(), "h", body)
			r.Header.Set("X-TC-Token", "forged")
			return r
		}, body, CodeTokenFailure, "X-TC-Token"},
		{"token on a permanent key", func() *http.Request { r := ok(); r.Header.Set("X-TC-Token", "x"); return r }, body, CodeTokenFailure, "X-TC-Token"},
		{"missing timestamp", func() *http.Request { r := ok(); r.Header.Del("X-TC-Timestamp"); return r }, body, CodeMissingParameter, "X-TC-Timestamp"},
		{"scope date not the UTC date", func() *http.Request {
			r := ok()
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), Date(now.Unix()), "2000-01-01", 1))
			return r
		}, body, CodeSignatureFailure, "UTC date"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(c.req(), []byte(c.body))
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ve.Code != c.code || !strings.Contains(ve.Message, c.reason) {
				t.Fatalf("got %s %q, want %s mentioning %q", ve.Code, ve.Message, c.code, c.reason)
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), tempToken) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	good := "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=" + strings.Repeat("a", 64)
	a, err := ParseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.SecretID != "AKID" || a.Date != "2019-02-25" || a.Service != "cvm" || len(a.SignedHeaders) != 2 {
		t.Fatalf("parsed %+v", a)
	}
	if a.String() != good {
		t.Fatalf("String() = %s", a.String())
	}
	compact := strings.ReplaceAll(good, ", ", ",")
	if _, err := ParseAuthorization(compact); err != nil {
		t.Fatalf("no spaces after commas: %v", err)
	}
	bad := map[string]string{
		"wrong algorithm":     strings.Replace(good, "TC3-HMAC-SHA256", "HMAC", 1),
		"short signature":     strings.Replace(good, strings.Repeat("a", 64), "abc", 1),
		"upper-case hex":      strings.Replace(good, strings.Repeat("a", 64), strings.Repeat("A", 64), 1),
		"no host signed":      strings.Replace(good, "content-type;host", "content-type", 1),
		"bad date":            strings.Replace(good, "2019-02-25", "2019/02/25", 1),
		"bad terminator":      strings.Replace(good, "tc3_request", "tc4_request", 1),
		"unknown part":        good + ", Extra=1",
		"duplicate signature": good + ", Signature=" + strings.Repeat("b", 64),
		"empty":               "",
	}
	for name, s := range bad {
		if _, err := ParseAuthorization(s); err == nil {
			t.Errorf("%s: accepted %q", name, s)
		}
	}
}

// FuzzParseAuthorization: the parser never panics, and whatever it accepts
// formats back to a header it parses to the same value.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=" + strings.Repeat("a", 64))
	f.Add("TC3-HMAC-SHA256 Credential=a/b/c/d,SignedHeaders=host,Signature=x")
	f.Add("TC3-HMAC-SHA256 ,,,=")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAuthorization(s)
		if err != nil {
			var ve *Error
			if !errors.As(err, &ve) || ve.Code != CodeInvalidAuthorization {
				t.Fatalf("error %v is not InvalidAuthorization", err)
			}
			return
		}
		b, err := ParseAuthorization(a.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", a.String(), err)
		}
		if b.String() != a.String() {
			t.Fatalf("round trip changed %q to %q", a.String(), b.String())
		}
	})
}

// FuzzSignVerify: for any body, host and content type, what the signer
// signs the verifier accepts, and a changed body is rejected. This covers
// the canonicalizer on both sides.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte(vectorBody), "car.tencentcloudapi.com", "application/json", int64(0))
	f.Add([]byte{}, "127.0.0.1:8080", "application/json; charset=utf-8", int64(59))
	f.Add([]byte("\x00\xff"), "[::1]:1", "text/plain", int64(-59))
	now := time.Unix(1_700_000_000, 0)
	v := testVerifier(now)
	f.Fuzz(func(t *testing.T, body []byte, host, contentType string, offset int64) {
		if host == "" || strings.ContainsAny(host, "/?#@ \t\r\n") || !validHeaderValue(contentType) || !validHeaderValue(host) {
			t.Skip()
		}
		ts := now.Unix() + offset%int64(MaxSkew/time.Second)
		r, err := http.NewRequest("POST", "http://placeholder/", bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		r.Host = host
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
		r.Header.Set("Authorization", NewSigner("car").Sign(testID, testKey, ts, contentType, host, body))
		if _, err := v.Verify(r, body); err != nil {
			t.Fatalf("verify rejected a signed request: %v", err)
		}
		if _, err := v.Verify(r, append(body, '!')); err == nil {
			t.Fatal("verify accepted a changed body")
		}
	})
}

func validHeaderValue(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return strings.TrimSpace(s) == s
}

func BenchmarkSign(b *testing.B) {
	s := NewSigner("car")
	body := []byte(`{"ProjectId":"cap-12345678"}`)
	ts := time.Now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(testID, testKey, ts, "application/json", "car.tencentcloudapi.com", body)
	}
}
