package credential

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables read by [Env].
const (
	EnvSecretID        = "TENCENTCLOUD_SECRET_ID"
	EnvSecretKey       = "TENCENTCLOUD_SECRET_KEY"
	EnvSessionToken    = "TENCENTCLOUD_SESSION_TOKEN"
	EnvCredentialsFile = "TENCENTCLOUD_CREDENTIALS_FILE"
)

// Static is a provider of one fixed credential.
type Static struct{ c Credential }

// NewStatic returns a provider of a permanent key pair.
func NewStatic(secretID, secretKey string) *Static {
	return &Static{Credential{SecretId: secretID, SecretKey: secretKey}}
}

// NewStaticToken returns a provider of a temporary key pair with its token.
func NewStaticToken(secretID, secretKey, token string) *Static {
	return &Static{Credential{SecretId: secretID, SecretKey: secretKey, Token: token}}
}

// Credential returns the credential, or an error if a part is empty.
func (s *Static) Credential(context.Context) (Credential, error) {
	if err := s.c.Validate(); err != nil {
		return Credential{}, fmt.Errorf("static %w", err)
	}
	return s.c, nil
}

func (s *Static) Format(f fmt.State, _ rune) { io.WriteString(f, "credential.Static"+s.c.redacted()) }
func (s *Static) LogValue() slog.Value       { return s.c.LogValue() }

// Env reads TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY and, if set,
// TENCENTCLOUD_SESSION_TOKEN at every call.
type Env struct {
	// Getenv replaces os.Getenv, for tests; nil means os.Getenv.
	Getenv func(string) string
}

// Credential returns ErrNotFound when neither variable is set, and an error
// naming the missing variable when only one is.
func (e *Env) Credential(context.Context) (Credential, error) {
	get := os.Getenv
	if e != nil && e.Getenv != nil {
		get = e.Getenv
	}
	c := Credential{SecretId: get(EnvSecretID), SecretKey: get(EnvSecretKey), Token: get(EnvSessionToken)}
	switch {
	case c.SecretId == "" && c.SecretKey == "":
		return Credential{}, fmt.Errorf("environment: %s and %s are not set: %w", EnvSecretID, EnvSecretKey, ErrNotFound)
	case c.SecretId == "":
		return Credential{}, fmt.Errorf("environment: %s is set but %s is empty", EnvSecretKey, EnvSecretID)
	case c.SecretKey == "":
		return Credential{}, fmt.Errorf("environment: %s is set but %s is empty", EnvSecretID, EnvSecretKey)
	}
	return c, nil
}

func (e *Env) Format(f fmt.State, _ rune) { io.WriteString(f, "credential.Env") }

// Profile reads the INI credentials file: section [default] (or Section),
// keys secret_id and secret_key (and token, if present). The path is Path,
// else $TENCENTCLOUD_CREDENTIALS_FILE, else ~/.tencentcloud/credentials.
// The file is read at every call.
type Profile struct {
	Path    string
	Section string
	// Getenv and HomeDir replace os.Getenv and os.UserHomeDir, for tests.
	Getenv  func(string) string
	HomeDir func() (string, error)
}

// Credential returns ErrNotFound when the file or the section does not
// exist, and a descriptive error when the file is malformed or a key is
// missing.
func (p *Profile) Credential(context.Context) (Credential, error) {
	path, err := p.path()
	if err != nil {
		return Credential{}, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Credential{}, fmt.Errorf("profile file %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("profile file: %w", err)
	}
	sections, err := ParseINI(data)
	if err != nil {
		return Credential{}, fmt.Errorf("profile file %s: %w", path, err)
	}
	name := p.Section
	if name == "" {
		name = "default"
	}
	sec, ok := sections[name]
	if !ok {
		return Credential{}, fmt.Errorf("profile file %s: no section [%s]: %w", path, name, ErrNotFound)
	}
	c := Credential{SecretId: sec["secret_id"], SecretKey: sec["secret_key"], Token: sec["token"]}
	switch {
	case c.SecretId == "":
		return Credential{}, fmt.Errorf("profile file %s: section [%s] has no secret_id", path, name)
	case c.SecretKey == "":
		return Credential{}, fmt.Errorf("profile file %s: section [%s] has no secret_key", path, name)
	}
	return c, nil
}

func (p *Profile) path() (string, error) {
	if p.Path != "" {
		return p.Path, nil
	}
	get := os.Getenv
	if p.Getenv != nil {
		get = p.Getenv
	}
	if path := get(EnvCredentialsFile); path != "" {
		return path, nil
	}
	home := os.UserHomeDir
	if p.HomeDir != nil {
		home = p.HomeDir
	}
	dir, err := home()
	if err != nil {
		return "", fmt.Errorf("profile file: no home directory (%v): %w", err, ErrNotFound)
	}
	return filepath.Join(dir, ".tencentcloud", "credentials"), nil
}

func (p *Profile) Format(f fmt.State, _ rune) {
	io.WriteString(f, "credential.Profile{Path: "+p.Path+", Section: "+p.Section+"}")
}

// Chain asks each provider in turn and returns the first credential found.
// A provider that answers ErrNotFound is skipped; any other error stops the
// chain, so a malformed profile file is reported instead of silently using
// another key.
type Chain []Provider

// Credential returns the first credential found, or an error listing why
// each provider had none.
func (c Chain) Credential(ctx context.Context) (Credential, error) {
	var reasons []string
	for _, p := range c {
		cred, err := p.Credential(ctx)
		if err == nil {
			return cred, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Credential{}, err
		}
		reasons = append(reasons, err.Error())
	}
	return Credential{}, fmt.Errorf("no credential in the chain (%s): %w", strings.Join(reasons, "; "), ErrNotFound)
}

// Default is the chain environment → profile file.
func Default() Chain { return Chain{&Env{}, &Profile{}} }

// ParseINI parses the subset of INI the credentials file uses: [section]
// headers, key = value lines, and comments starting with ';' or '#'. Keys
// and values are trimmed. A line that is none of these is an error naming
// the line number.
func ParseINI(data []byte) (map[string]map[string]string, error) {
	sections := make(map[string]map[string]string)
	var current map[string]string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("line %d: a section header must be [name]", i+1)
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			if sections[name] == nil {
				sections[name] = make(map[string]string)
			}
			current = sections[name]
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: expected key = value", i+1)
			}
			if current == nil {
				return nil, fmt.Errorf("line %d: key outside any [section]", i+1)
			}
			key = strings.TrimSpace(key)
			if key == "" {
				return nil, fmt.Errorf("line %d: empty key", i+1)
			}
			current[key] = strings.TrimSpace(value)
		}
	}
	return sections, nil
}
