package apiserver

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

func TestAppendJSONStringMatchesMarshal(t *testing.T) {
	for _, s := range []string{"", "ok", `"ok"`, `{"k":1}`, "a\\b", "tab\there", "nl\ncr\r", "\b\f\x00\x01\x1f\x7f", "<script>&amp;</script>",
		"中文", "\u2028\u2029", "bad \xff utf-8", "mixed \"é\" \n"} {
		checkString(t, s)
	}
}

func TestAppendJSONFloatMatchesMarshal(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 0.001, 1.5e-7, 1e-6, 999999.999, 1e20, 1e21, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, -2.5e-9} {
		checkFloat(t, f)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := AppendJSONFloat(nil, f); err == nil {
			t.Errorf("AppendJSONFloat(%v): no error, json.Marshal has one", f)
		}
	}
}

func FuzzAppendJSONMatchesMarshal(f *testing.F) {
	f.Add("ok", 0.25)
	f.Add(`{"a":"<b>"}`+"\n", 1e-7)
	f.Add("\xe2\x80\xa8\x00", 3e21)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		checkString(t, s)
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			checkFloat(t, x)
		}
	})
}

func checkString(t *testing.T, s string) {
	t.Helper()
	want, _ := json.Marshal(s)
	if got := AppendJSONString([]byte("x"), s); !bytes.Equal(got, append([]byte("x"), want...)) {
		t.Errorf("AppendJSONString(%q) = %s; json.Marshal: %s", s, got[1:], want)
	}
}

func checkFloat(t *testing.T, f float64) {
	t.Helper()
	want, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendJSONFloat([]byte("x"), f)
	if err != nil || !bytes.Equal(got, append([]byte("x"), want...)) {
		t.Errorf("AppendJSONFloat(%v) = %s, %v; json.Marshal: %s", f, got, err, want)
	}
}
