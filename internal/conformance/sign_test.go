package conformance

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// handSign signs a POST the documented way, with the standard library
// only: the bare floor's signature, independent of the SDK under test.
func handSign(id, key string, ts int64, host string, payload []byte) string {
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	mac := func(k []byte, msg string) []byte {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	date := time.Unix(ts, 0).UTC().Format(time.DateOnly)
	canonical := "POST\n/\n\ncontent-type:application/json\nhost:" + host + "\n\ncontent-type;host\n" + sum(payload)
	scope := date + "/car/tc3_request"
	toSign := "TC3-HMAC-SHA256\n" + itoa(ts) + "\n" + scope + "\n" + sum([]byte(canonical))
	k := mac(mac(mac([]byte("TC3"+key), date), "car"), "tc3_request")
	return "TC3-HMAC-SHA256 Credential=" + id + "/" + scope + ", SignedHeaders=content-type;host, Signature=" + hex.EncodeToString(mac(k, toSign))
}

func itoa(v int64) string {
	var b [20]byte
	i := len(b)
	for ; v > 0; v /= 10 {
		i--
		b[i] = byte('0' + v%10)
	}
	return string(b[i:])
}
