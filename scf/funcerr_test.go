package scf

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseErrorBody(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want errorBody
	}{
		{`{"errorCode":1,"errorMessage":"Resource limit exceed for function [dingdong]","requestId":"1a04","statusCode":432}`, true,
			errorBody{StatusCode: 432, ErrorCode: 1, Message: "Resource limit exceed for function [dingdong]", RequestID: "1a04"}},
		{` {"errorCode":-1,"errorMessage":"Invoking task timed out after 3 seconds","statusCode":433} `, true,
			errorBody{StatusCode: 433, ErrorCode: -1, Message: "Invoking task timed out after 3 seconds"}},
		{`{"statusCode":"434","errorMessage":{"detail":"oom"}}`, true, errorBody{StatusCode: 434, Message: `{"detail":"oom"}`}},
		{`{"statusCode":4320,"errorMessage":"x"}`, true, errorBody{Message: "x"}}, // out of range: absent
		{`{"statusCode":432.0}`, true, errorBody{StatusCode: 432}},
		{`{"statusCode":432.5}`, true, errorBody{}},
		{`{"errorCode":null,"errorMessage":null}`, true, errorBody{}},
		{`{"result":"fine"}`, false, errorBody{}},
		{`Traceback (most recent call last)`, false, errorBody{}},
		{`["statusCode",432]`, false, errorBody{}},
		{`{"statusCode":432`, false, errorBody{}},
		{``, false, errorBody{}},
	} {
		got, ok := parseErrorBody(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%q: %+v %v, want %+v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestResultErr(t *testing.T) {
	body := `{"errorCode":1,"errorMessage":"Function [f] concurrency exceeded reserved quota 0 MB","requestId":"fr-1","statusCode":432}`
	for _, tc := range []struct {
		name   string
		r      Result
		status int // -1: no error
		msg    string
	}{
		{"success", Result{RetMsg: "hello", FunctionRequestId: "fr"}, -1, ""},
		{"async accepted", Result{FunctionRequestId: "fr"}, -1, ""},
		{"ErrMsg body", Result{ErrMsg: body, InvokeResult: -1}, 432, "Function [f] concurrency exceeded reserved quota 0 MB"},
		{"ErrMsg text", Result{ErrMsg: "ZeroDivisionError: division by zero"}, 0, "ZeroDivisionError: division by zero"},
		{"RetMsg body flagged", Result{RetMsg: body, InvokeResult: 1}, 432, "Function [f] concurrency exceeded reserved quota 0 MB"},
		{"RetMsg body not flagged", Result{RetMsg: body}, -1, ""},
		{"RetMsg text flagged", Result{RetMsg: "just a value", InvokeResult: 1}, -1, ""},
	} {
		err := tc.r.Err()
		if tc.status == -1 {
			if err != nil {
				t.Errorf("%s: %v, want nil", tc.name, err)
			}
			continue
		}
		var fe *FunctionError
		if !errors.As(err, &fe) || fe.StatusCode != tc.status || fe.Message != tc.msg || fe.Result == nil {
			t.Errorf("%s: %#v", tc.name, err)
			continue
		}
		if tc.status == 432 && (fe.Name != "ResourceLimitReached" || fe.FunctionRequestId != "fr-1" || fe.Class() != ClassOverrun) {
			t.Errorf("%s: %+v", tc.name, fe)
		}
	}
	var nilResult *Result
	if nilResult.Err() != nil {
		t.Error("nil Result has an error")
	}
}

func TestFunctionErrorText(t *testing.T) {
	api := &APIError{Service: "scf", Action: "InvokeFunction", Code: CodeQuota, Message: "m", RequestId: "r"}
	fe := &FunctionError{Action: "InvokeFunction", FunctionName: "f", Qualifier: "2", StatusCode: 432, Name: "ResourceLimitReached",
		Message: "quota", RequestId: "r", API: api}
	want := "scf InvokeFunction f:2: function failed with status 432 ResourceLimitReached: quota (API error LimitExceeded.Quota, request id r)"
	if fe.Error() != want {
		t.Fatalf("%q\nwant %q", fe.Error(), want)
	}
	var got *APIError
	if !errors.As(error(fe), &got) || got != api || !HasCode(fe, CodeQuota) {
		t.Fatal("the API error is not in the chain")
	}
	if FunctionStatus(fe) != 432 || FunctionStatus(errors.New("x")) != 0 {
		t.Fatal("FunctionStatus")
	}
}

func TestClasses(t *testing.T) {
	for code, want := range map[int]ErrorClass{
		429: ClassOverrun, 432: ClassOverrun, 430: ClassExecution, 433: ClassExecution, 434: ClassExecution,
		439: ClassExecution, 443: ClassExecution, 0: ClassExecution, 500: ClassSystem, 442: ClassRequest, 406: ClassRequest,
	} {
		if got := ClassOf(code); got != want {
			t.Errorf("%d: %v, want %v", code, got, want)
		}
	}
	if StatusName(433) != "TimeLimitReached" || StatusName(498) != "Status498" {
		t.Error("StatusName")
	}
}

// FuzzParseErrorBody: ErrMsg and RetMsg come from the network. Parsing
// never panics; a status code is in 100–599; the message is valid UTF-8
// when the input is; and Result.Err agrees with the parser.
func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"errorCode":1,"errorMessage":"Resource limit exceed for function [x]","requestId":"id","statusCode":432}`,
		`{"errorCode":-1,"errorMessage":"Invoking task timed out after 3 seconds","statusCode":433}`,
		`{"statusCode":"434"}`, `{"statusCode":1e3}`, `{"errorMessage":[1,2]}`, `null`, `{`, `plain text`,
	} {
		f.Add(s, int64(0))
		f.Add(s, int64(-1))
	}
	f.Fuzz(func(t *testing.T, s string, invokeResult int64) {
		b, ok := parseErrorBody(s)
		if b.StatusCode != 0 && (b.StatusCode < 100 || b.StatusCode > 599) {
			t.Fatalf("status %d", b.StatusCode)
		}
		if !ok && b != (errorBody{}) {
			t.Fatalf("not a body but %+v", b)
		}
		if utf8.ValidString(s) && !utf8.ValidString(b.Message) {
			t.Fatalf("message %q is not UTF-8", b.Message)
		}
		for _, r := range []Result{{ErrMsg: s}, {RetMsg: s, InvokeResult: invokeResult}} {
			err := r.Err()
			var fe *FunctionError
			switch {
			case r.ErrMsg != "":
				if !errors.As(err, &fe) {
					t.Fatalf("ErrMsg %q gave no FunctionError", s)
				}
				if ok && fe.StatusCode != b.StatusCode {
					t.Fatalf("ErrMsg %q: status %d, parser %d", s, fe.StatusCode, b.StatusCode)
				}
				if !strings.Contains(fe.Error(), fe.Message) || !utf8.ValidString(fe.Message) {
					t.Fatalf("error text %q, message %q", fe.Error(), fe.Message)
				}
			case r.InvokeResult == 0 || r.RetMsg == "":
				if err != nil {
					t.Fatalf("RetMsg %q without a failure flag gave %v", s, err)
				}
			default:
				if (err != nil) != (ok && b.StatusCode != 0) {
					t.Fatalf("RetMsg %q flagged: %v, parser %+v %v", s, err, b, ok)
				}
			}
		}
	})
}
