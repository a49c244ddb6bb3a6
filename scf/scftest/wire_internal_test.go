package scftest

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

func TestInvokeOutAppendJSONMatchesMarshal(t *testing.T) {
	for _, r := range []resultOut{
		{},
		{FunctionRequestId: "3f2b8f1e-5a7c-4c1e-9d1e-4b7a0e6f1a2b", Duration: 0.012, BillDuration: 1, MemUsage: 3207168, RetMsg: `"ok"`},
		{FunctionRequestId: "x", Duration: 300000, BillDuration: 300000, ErrMsg: `{"errorCode":-1,"errorMessage":"Invoking task timed out after 3 seconds"}`, Log: "line <1>\nline & 2\n", InvokeResult: -1},
		{RetMsg: "中文 \u2028", Duration: 1e-7, MemUsage: -5},
	} {
		checkInvokeOut(t, r)
	}
	if _, err := (invokeOut{Result: resultOut{Duration: math.NaN()}}).AppendJSON(nil); err == nil {
		t.Error("a NaN Duration: no error, json.Marshal has one")
	}
}

func FuzzInvokeOutAppendJSON(f *testing.F) {
	f.Add("id", 1.5, int64(2), int64(3), `"ok"`, "", "log\n", int64(0))
	f.Fuzz(func(t *testing.T, id string, d float64, billed, mem int64, ret, errMsg, log string, res int64) {
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return
		}
		checkInvokeOut(t, resultOut{id, d, billed, mem, ret, errMsg, log, res})
	})
}

func checkInvokeOut(t *testing.T, r resultOut) {
	t.Helper()
	o := invokeOut{Result: r}
	want, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := o.AppendJSON([]byte("x"))
	if err != nil || !bytes.Equal(got, append([]byte("x"), want...)) {
		t.Errorf("AppendJSON(%+v) = %s, %v; json.Marshal: %s", r, got, err, want)
	}
}
