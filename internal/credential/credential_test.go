package credential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	id     = "AKIDabcdefghijkl"
	key    = "super-secret-key-value"
	token  = "temporary-session-token"
	masked = "AKID****ijkl"
)

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, key) || strings.Contains(s, token) || strings.Contains(s, id) {
		t.Errorf("%s leaks a secret or the full SecretId: %s", what, s)
	}
}

func TestNoSecretInFormatting(t *testing.T) {
	c := Credential{SecretId: id, SecretKey: key, Token: token}
	type holder struct {
		Cred     Credential
		Provider Provider
	}
	values := map[string]any{
		"Credential":   c,
		"*Credential":  &c,
		"Static":       NewStaticToken(id, key, token),
		"holder":       holder{Cred: c, Provider: NewStaticToken(id, key, token)},
		"Chain":        Chain{NewStaticToken(id, key, token), &Env{}},
		"wrapped text": fmt.Errorf("calling: %v", c),
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			assertNoSecret(t, name+" "+verb, fmt.Sprintf(verb, v))
		}
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("x", "v", v)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("x", "v", v)
		assertNoSecret(t, name+" slog text", text.String())
		assertNoSecret(t, name+" slog json", js.String())
		if b, err := json.Marshal(v); err == nil {
			assertNoSecret(t, name+" json", string(b))
		}
	}
	if got := c.String(); !strings.Contains(got, masked) {
		t.Errorf("String() = %s, want the masked id %s so keys can be told apart", got, masked)
	}
}

func TestStatic(t *testing.T) {
	got, err := NewStaticToken(id, key, token).Credential(context.Background())
	if err != nil || got.SecretKey != key || got.Token != token {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = NewStatic(id, "").Credential(context.Background())
	if err == nil || !strings.Contains(err.Error(), "SecretKey is empty") {
		t.Fatalf("empty key: err = %v", err)
	}
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestEnv(t *testing.T) {
	ctx := context.Background()
	c, err := (&Env{Getenv: envOf(map[string]string{EnvSecretID: id, EnvSecretKey: key, EnvSessionToken: token})}).Credential(ctx)
	if err != nil || c.SecretId != id || c.SecretKey != key || c.Token != token {
		t.Fatalf("got %v, %v", c, err)
	}
	_, err = (&Env{Getenv: envOf(nil)}).Credential(ctx)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unset: err = %v, want ErrNotFound", err)
	}
	_, err = (&Env{Getenv: envOf(map[string]string{EnvSecretID: id})}).Credential(ctx)
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), EnvSecretKey) {
		t.Fatalf("half set: err = %v, want an error naming %s", err, EnvSecretKey)
	}
	assertNoSecret(t, "env error", fmt.Sprint(err))
}

func TestEnvReal(t *testing.T) {
	t.Setenv(EnvSecretID, id)
	t.Setenv(EnvSecretKey, key)
	t.Setenv(EnvSessionToken, "")
	c, err := (&Env{}).Credential(context.Background())
	if err != nil || c.SecretKey != key || c.Token != "" {
		t.Fatalf("got %v, %v", c, err)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProfile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	content := "; comment\n[other]\nsecret_id = x\n\n[default]\r\nsecret_id = " + id + "\r\nsecret_key=" + key + "\n# done\n"

	t.Run("home directory", func(t *testing.T) {
		writeFile(t, dir, ".tencentcloud/credentials", content)
		p := &Profile{Getenv: envOf(nil), HomeDir: func() (string, error) { return dir, nil }}
		c, err := p.Credential(ctx)
		if err != nil || c.SecretId != id || c.SecretKey != key {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	t.Run("TENCENTCLOUD_CREDENTIALS_FILE overrides", func(t *testing.T) {
		path := writeFile(t, dir, "elsewhere.ini", "[default]\nsecret_id=other\nsecret_key=k2\n")
		p := &Profile{Getenv: envOf(map[string]string{EnvCredentialsFile: path}), HomeDir: func() (string, error) { return dir, nil }}
		c, err := p.Credential(ctx)
		if err != nil || c.SecretId != "other" {
			t.Fatalf("got %v, %v", c, err)
		}
	})
	t.Run("missing file is not found", func(t *testing.T) {
		_, err := (&Profile{Path: filepath.Join(dir, "nope")}).Credential(ctx)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing section is not found", func(t *testing.T) {
		path := writeFile(t, dir, "other.ini", "[other]\nsecret_id=a\nsecret_key=b\n")
		_, err := (&Profile{Path: path}).Credential(ctx)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("malformed file is an error, not a skip", func(t *testing.T) {
		path := writeFile(t, dir, "bad.ini", "[default]\nsecret_id "+key+"\n")
		_, err := (&Profile{Path: path}).Credential(ctx)
		if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "line 2") {
			t.Fatalf("err = %v, want a parse error naming line 2", err)
		}
		assertNoSecret(t, "parse error", err.Error())
	})
	t.Run("missing key names it", func(t *testing.T) {
		path := writeFile(t, dir, "nokey.ini", "[default]\nsecret_id=a\n")
		_, err := (&Profile{Path: path}).Credential(ctx)
		if err == nil || !strings.Contains(err.Error(), "secret_key") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestChain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := &Profile{Path: filepath.Join(dir, "none")}
	env := &Env{Getenv: envOf(nil)}

	c, err := Chain{env, missing, NewStatic(id, key)}.Credential(ctx)
	if err != nil || c.SecretId != id {
		t.Fatalf("got %v, %v: the chain should skip not-found providers", c, err)
	}
	_, err = Chain{env, missing}.Credential(ctx)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), EnvSecretID) {
		t.Fatalf("err = %v, want ErrNotFound with each reason", err)
	}
	bad := writeFile(t, dir, "bad.ini", "garbage\n")
	_, err = Chain{&Profile{Path: bad}, NewStatic(id, key)}.Credential(ctx)
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want the malformed file to stop the chain", err)
	}
}

// FuzzParseINI: the parser never panics, and every key it returns is
// trimmed and non-empty.
func FuzzParseINI(f *testing.F) {
	f.Add([]byte("[default]\nsecret_id = a\nsecret_key = b\n"))
	f.Add([]byte("[]\n=\n[x\n"))
	f.Add([]byte("; c\n# c\n[a]\r\nk=v=w\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sections, err := ParseINI(data)
		if err != nil {
			return
		}
		for _, sec := range sections {
			for k := range sec {
				if k == "" || strings.TrimSpace(k) != k {
					t.Fatalf("key %q is empty or untrimmed", k)
				}
			}
		}
	})
}

// Default reads the environment first, then the profile file that
// TENCENTCLOUD_CREDENTIALS_FILE names, and says ErrNotFound without either.
func TestDefault(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("HOME", dir) // no ~/.tencentcloud/credentials of the machine's
	t.Setenv(EnvSessionToken, "")
	file := writeFile(t, dir, "creds", "[default]\nsecret_id = AKIDfromprofile\nsecret_key = profile-key\n")

	t.Setenv(EnvSecretID, id)
	t.Setenv(EnvSecretKey, key)
	t.Setenv(EnvCredentialsFile, file)
	if c, err := Default().Credential(ctx); err != nil || c.SecretId != id {
		t.Fatalf("environment and file set: got %v, %v; want the environment's", c, err)
	}
	t.Setenv(EnvSecretID, "")
	t.Setenv(EnvSecretKey, "")
	if c, err := Default().Credential(ctx); err != nil || c.SecretId != "AKIDfromprofile" || c.SecretKey != "profile-key" {
		t.Fatalf("file only: got %v, %v", c, err)
	}
	t.Setenv(EnvCredentialsFile, filepath.Join(dir, "missing"))
	if _, err := Default().Credential(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("neither: err = %v, want ErrNotFound", err)
	}
}
