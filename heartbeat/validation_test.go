package heartbeat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/hbtest"
)

// wantInvalid checks that err is a *ValidationError naming field.
func wantInvalid(t *testing.T, what string, err error, field string) {
	t.Helper()
	var ve *heartbeat.ValidationError
	if !errors.As(err, &ve) || ve.Field != field || ve.Rule == "" || !strings.Contains(err.Error(), field) {
		t.Errorf("%s: error %v, want a ValidationError for %q", what, err, field)
	}
}

func TestNewServerRejectsBadOptions(t *testing.T) {
	cases := []struct {
		opt   heartbeat.ServerOption
		field string
	}{
		{heartbeat.WithPingInterval(0), "WithPingInterval"},
		{heartbeat.WithPingTimeout(-time.Second), "WithPingTimeout"},
		{heartbeat.WithPingTimeout(10 * time.Second), "WithPingTimeout"}, // not longer than the 10 s interval
		{heartbeat.WithReconnectWindow(0), "WithReconnectWindow"},
		{heartbeat.WithReloadGrace(0), "WithReloadGrace"},
		{heartbeat.WithReloadGrace(61 * time.Second), "WithReloadGrace"}, // longer than the 60 s reconnect window
		{heartbeat.WithFrameRateLimit(0, 10), "WithFrameRateLimit"},
		{heartbeat.WithFrameRateLimit(10, 0), "WithFrameRateLimit"},
		{heartbeat.WithIdleThreshold(0), "WithIdleThreshold"},
		{heartbeat.WithReconnectWindow(365 * 24 * time.Hour), "WithReconnectWindow"},
		{heartbeat.WithWriteTimeout(0), "WithWriteTimeout"},
		{heartbeat.WithMaxMessageSize(100), "WithMaxMessageSize"},
		{heartbeat.WithAllowedOrigins(), "WithAllowedOrigins"},
		{heartbeat.WithAllowedOrigins("example.com"), "WithAllowedOrigins"},
		{heartbeat.WithAllowedOrigins("https://example.com/path"), "WithAllowedOrigins"},
		{heartbeat.WithAllowedOrigins("ftp://example.com"), "WithAllowedOrigins"},
		{heartbeat.WithAuthorize(nil), "WithAuthorize"},
		{heartbeat.WithLogger(nil), "WithLogger"},
		{heartbeat.OnConnect(nil), "OnConnect"},
		{heartbeat.OnIdle(nil), "OnIdle"},
		{heartbeat.OnExpire(nil), "OnExpire"},
		{nil, "ServerOption"},
	}
	for _, c := range cases {
		srv, err := heartbeat.NewServer(c.opt)
		if srv != nil {
			t.Errorf("NewServer(%s) returned a server", c.field)
		}
		wantInvalid(t, "NewServer", err, c.field)
	}
	if _, err := heartbeat.NewServer(heartbeat.WithPingInterval(10*time.Second), heartbeat.WithPingTimeout(20*time.Second)); err != nil {
		t.Errorf("valid interval/timeout pair refused: %v", err)
	}
}

func TestServerRejectsBadArguments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		for _, id := range []string{"", strings.Repeat("x", 129), "bad\nid", "\xff"} {
			_, err := e.srv.Open(context.Background(), id)
			wantInvalid(t, fmt.Sprintf("Open(%q)", id), err, "session id")
		}
		e.Open("u1")
		notices := []struct {
			n     heartbeat.Notice
			field string
		}{
			{heartbeat.Notice{Kind: "dance"}, "Notice.Kind"},
			{heartbeat.Notice{Kind: heartbeat.NoticeIdle, Times: 1}, "Notice.Kind"},
			{heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: -1}, "Notice.Position"},
			{heartbeat.Notice{Kind: heartbeat.NoticeReady, Data: json.RawMessage(`{oops`)}, "Notice.Data"},
			{heartbeat.Notice{Kind: heartbeat.NoticeReady, Data: json.RawMessage(`"` + strings.Repeat("x", heartbeat.MaxNoticeDataSize) + `"`)}, "Notice.Data"},
			{heartbeat.Notice{Kind: heartbeat.NoticeCustom}, "Notice.Name"},
		}
		for _, c := range notices {
			wantInvalid(t, fmt.Sprintf("Send(%+v)", c.n.Kind), e.srv.Send(context.Background(), "u1", c.n), c.field)
		}
		wantInvalid(t, "Release(long reason)", e.srv.Release(context.Background(), "u1", strings.Repeat("x", heartbeat.MaxReleaseReasonLen+1)), "reason")
		wantInvalid(t, "Release(control character)", e.srv.Release(context.Background(), "u1", "a\x00b"), "reason")
		for i := range 16 { // 16 distinct undelivered notices fit
			if err := e.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeCustom, Name: fmt.Sprint(i)}); err != nil {
				t.Fatalf("Send custom #%d: %v", i, err)
			}
		}
		if err := e.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeCustom, Name: "one too many"}); !errors.Is(err, heartbeat.ErrTooManyNotices) {
			t.Errorf("17th undelivered notice: %v, want ErrTooManyNotices", err)
		}
		if err := e.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeCustom, Name: "3"}); err != nil {
			t.Errorf("replacing an undelivered notice when full: %v", err)
		}
	})
}

func TestConnectRejectsBadArguments(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		url, id, token string
		opts           []hbclient.Option
		field          string
	}{
		{"http://example.com/", "u1", "t", nil, "url"},
		{"ws://", "u1", "t", nil, "url"},
		{"ws://example.com/", "", "t", nil, "session id"},
		{"ws://example.com/", "u1", "", nil, "token"},
		{"ws://example.com/", "u1", "t", []hbclient.Option{hbclient.WithDialer(nil)}, "WithDialer"},
		{"ws://example.com/", "u1", "t", []hbclient.Option{hbclient.WithActivityInterval(0)}, "WithActivityInterval"},
		{"ws://example.com/", "u1", "t", []hbclient.Option{hbclient.WithReconnectDelay(nil)}, "WithReconnectDelay"},
		{"ws://example.com/", "u1", "t", []hbclient.Option{hbclient.OnStateChange(nil)}, "OnStateChange"},
		{"ws://example.com/", "u1", "t", []hbclient.Option{hbclient.OnNotice(nil)}, "OnNotice"},
		{"ws://example.com/", "u1", "t", []hbclient.Option{hbclient.WithResumeWindow(-1)}, "WithResumeWindow"},
	}
	for _, c := range cases {
		s, err := hbclient.Connect(ctx, c.url, c.id, c.token, c.opts...)
		if s != nil {
			s.Close()
			t.Errorf("Connect(%s) returned a session", c.field)
		}
		wantInvalid(t, "Connect", err, c.field)
	}
}

// Tokens never show up in logs, errors, or the %v forms of Server and
// Session.
func TestTokensStayOutOfLogsAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		e := newEnv(t, heartbeat.WithLogger(logger))
		d := &hbtest.SwitchDialer{L: e.l}

		var secrets []string
		tok := e.Open("u1")
		secrets = append(secrets, tok)
		s := e.Connect("u1", tok, hbclient.WithLogger(logger), hbclient.WithDialer(d.Dialer()))
		d.Cut() // resume with the resume token
		e.SleepUntil(30 * time.Second)

		var errs []error
		_, err := hbclient.Connect(context.Background(), wsURL, "u1", tok, hbclient.WithDialer(e.Dialer()), hbclient.WithLogger(logger))
		errs = append(errs, err) // reused
		tok2 := e.Open("u2")
		secrets = append(secrets, tok2)
		_, err = hbclient.Connect(context.Background(), wsURL, "u1", tok2, hbclient.WithDialer(e.Dialer()), hbclient.WithLogger(logger))
		errs = append(errs, err) // token of another session
		_, w := e.join("u2", tok2)
		secrets = append(secrets, w.Token)
		e.hello("u2", w.Token+"x").closed()
		e.srv.Release(context.Background(), "u1", "done")
		<-s.Done()
		errs = append(errs, s.Err())

		var out strings.Builder
		fmt.Fprintf(&out, "%v %+v %#v %s %v %+v %#v %s\n", e.srv, e.srv, e.srv, e.srv, s, s, s, s)
		for _, err := range errs {
			if err == nil {
				t.Fatalf("expected errors, got nil")
			}
			out.WriteString(err.Error() + "\n")
		}
		out.WriteString(logs.String())
		for _, secret := range secrets {
			if strings.Contains(out.String(), secret) {
				t.Errorf("a token appears in logs, errors or %%v output:\n%s", out.String())
			}
		}
		if !strings.Contains(logs.String(), "session resumed") {
			t.Errorf("debug log has no resume line; did the scenario run?\n%s", logs.String())
		}
	})
}
